-- Hooks and webhooks (docs/HOOKS.md).
-- hooks: a job's own hook commands, a JSON object such as {"on_dead": "notify-send ..."},
-- NULL for none; each one replaces the configured hook of its event for this job.
ALTER TABLE jobs ADD COLUMN hooks TEXT;
-- webhook_url: the queue's own webhook, used instead of the configured webhook-url.
ALTER TABLE queues ADD COLUMN webhook_url TEXT;

-- The outbox: one row per hook or webhook to deliver, written in the transaction of the
-- state change that causes it (only when one is configured), so that a crash after the
-- commit loses none. Workers claim due rows (claimed_by, claimed_at: a lease that another
-- worker takes over once it runs out), deliver them, and record how that went.
CREATE TABLE job_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,  -- the order of the events
    job_id          TEXT NOT NULL,
    event           TEXT NOT NULL,  -- complete, fail, dead, cancel
    channel         TEXT NOT NULL,  -- hook (a shell command) or webhook (a URL)
    target          TEXT NOT NULL,  -- the command or the URL, as configured at the event
    state           TEXT NOT NULL,  -- the job's facts at the event
    exit_code       INTEGER,
    attempt         INTEGER NOT NULL,
    queue           TEXT NOT NULL,
    command         TEXT NOT NULL,
    last_error      TEXT,
    output          TEXT NOT NULL DEFAULT '',  -- the end of the output
    created_at      REAL NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',  -- pending, delivered, failed
    tries           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    claimed_by      TEXT,
    claimed_at      REAL,
    finished_at     REAL,
    error           TEXT
);
CREATE INDEX job_events_due ON job_events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX job_events_job ON job_events (job_id);
CREATE INDEX job_events_finished ON job_events (finished_at) WHERE status <> 'pending';
