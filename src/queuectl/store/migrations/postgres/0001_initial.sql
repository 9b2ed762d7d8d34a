-- Times are timestamptz and always come from the server's now(), never a client's clock,
-- so workers on machines with skewed clocks still agree on leases and run_at.

-- All tables live in the schema `queuectl` (the connection's search_path), apart from the
-- application's own. One row per applied migration; the schema version is max(version).
CREATE TABLE queuectl_schema (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE jobs (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- enqueue order
    id           text NOT NULL UNIQUE,
    command      text NOT NULL,
    state        text NOT NULL CHECK (state IN
                     ('pending', 'processing', 'completed', 'failed', 'dead', 'cancelled')),
    queue        text NOT NULL DEFAULT 'default',
    priority     integer NOT NULL DEFAULT 0,
    attempts     integer NOT NULL DEFAULT 0,
    max_retries  integer NOT NULL,
    timeout      double precision NOT NULL,  -- seconds
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    scheduled_at timestamptz,
    run_at       timestamptz NOT NULL,
    started_at   timestamptz,
    finished_at  timestamptz,
    exit_code    integer,
    last_error   text,
    output       text NOT NULL DEFAULT '',
    locked_by    text,
    locked_at    timestamptz
);
-- The claim walks this partial index in claim order and stops at the first due row it
-- can lock; finished jobs never enter it, so it stays small however long the history.
CREATE INDEX jobs_claimable ON jobs (priority DESC, run_at, seq)
    WHERE state IN ('pending', 'failed');
CREATE INDEX jobs_state ON jobs (state, seq);
CREATE INDEX jobs_queue ON jobs (queue, seq);

CREATE TABLE attempts (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      text NOT NULL,
    attempt     integer NOT NULL,
    worker_id   text,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    exit_code   integer,
    error       text,
    output      text
);
CREATE INDEX attempts_job ON attempts (job_id, seq);

CREATE TABLE workers (
    id             text PRIMARY KEY,
    host           text NOT NULL,
    pid            integer NOT NULL,
    queues         text[],  -- NULL serves every queue
    status         text NOT NULL,  -- running, stopping, stopped
    started_at     timestamptz NOT NULL,
    last_heartbeat timestamptz NOT NULL,
    current_job_id text,
    stop_requested boolean NOT NULL DEFAULT false
);

CREATE TABLE config (
    key   text PRIMARY KEY,
    value text NOT NULL
);
