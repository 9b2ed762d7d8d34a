-- Hooks and webhooks (docs/HOOKS.md).
-- hooks: a job's own hook commands, a JSON object such as {"on_dead": "notify-send ..."},
-- NULL for none; each one replaces the configured hook of its event for this job.
ALTER TABLE jobs ADD COLUMN hooks text;
-- webhook_url: the queue's own webhook, used instead of the configured webhook-url.
ALTER TABLE queues ADD COLUMN webhook_url text;

-- The outbox: one row per hook or webhook to deliver, written in the transaction of the
-- state change that causes it (only when one is configured), so that a crash after the
-- commit loses none. Workers claim due rows (claimed_by, claimed_at: a lease that another
-- worker takes over once it runs out), deliver them, and record how that went.
CREATE TABLE job_events (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- the order of the events
    job_id          text NOT NULL,
    event           text NOT NULL,  -- complete, fail, dead, cancel
    channel         text NOT NULL,  -- hook (a shell command) or webhook (a URL)
    target          text NOT NULL,  -- the command or the URL, as configured at the event
    state           text NOT NULL,  -- the job's facts at the event
    exit_code       integer,
    attempt         integer NOT NULL,
    queue           text NOT NULL,
    command         text NOT NULL,
    last_error      text,
    output          text NOT NULL DEFAULT '',  -- the end of the output
    created_at      timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'pending',  -- pending, delivered, failed
    tries           integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    claimed_by      text,
    claimed_at      timestamptz,
    finished_at     timestamptz,
    error           text
);
CREATE INDEX job_events_due ON job_events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX job_events_job ON job_events (job_id);
CREATE INDEX job_events_finished ON job_events (finished_at) WHERE status <> 'pending';
