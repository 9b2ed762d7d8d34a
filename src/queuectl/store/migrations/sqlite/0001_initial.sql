-- Times are REAL seconds since the Unix epoch (UTC), with sub-millisecond precision.
CREATE TABLE jobs (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,  -- enqueue order
    id           TEXT NOT NULL UNIQUE,
    command      TEXT NOT NULL,
    state        TEXT NOT NULL,
    queue        TEXT NOT NULL DEFAULT 'default',
    priority     INTEGER NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_retries  INTEGER NOT NULL,
    timeout      REAL NOT NULL,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    scheduled_at REAL,
    run_at       REAL NOT NULL,
    started_at   REAL,
    finished_at  REAL,
    exit_code    INTEGER,
    last_error   TEXT,
    output       TEXT NOT NULL DEFAULT '',
    locked_by    TEXT,
    locked_at    REAL
);
-- The claim reads this partial index in claim order and stops at the first due row.
CREATE INDEX jobs_claimable ON jobs (priority DESC, run_at, seq)
    WHERE state IN ('pending', 'failed');
CREATE INDEX jobs_state ON jobs (state, seq);
CREATE INDEX jobs_queue ON jobs (queue, seq);

CREATE TABLE attempts (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    worker_id   TEXT,
    started_at  REAL NOT NULL,
    finished_at REAL,
    exit_code   INTEGER,
    error       TEXT,
    output      TEXT
);
CREATE INDEX attempts_job ON attempts (job_id, seq);

CREATE TABLE workers (
    id             TEXT PRIMARY KEY,
    host           TEXT NOT NULL,
    pid            INTEGER NOT NULL,
    queues         TEXT,  -- comma-separated; NULL serves every queue
    status         TEXT NOT NULL,  -- running, stopping, stopped
    started_at     REAL NOT NULL,
    last_heartbeat REAL NOT NULL,
    current_job_id TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE config (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
