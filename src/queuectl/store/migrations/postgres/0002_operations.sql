-- Where a job runs and with which extra environment variables.
ALTER TABLE jobs ADD COLUMN cwd text;
-- env: a JSON object of strings, or NULL.
ALTER TABLE jobs ADD COLUMN env text;

-- Paused queues and per-queue concurrency limits; a queue without a row is neither.
CREATE TABLE queues (
    name        text PRIMARY KEY,
    paused      boolean NOT NULL DEFAULT false,
    max_running integer  -- NULL: no limit
);

-- Retention and `wait` look for finished jobs by age; throughput reads recent attempts.
CREATE INDEX jobs_state_updated ON jobs (state, updated_at);
CREATE INDEX attempts_finished ON attempts (finished_at);
-- Per-queue counts (`queue list`, the dashboard, metrics) read this index alone.
CREATE INDEX jobs_queue_state ON jobs (queue, state);
