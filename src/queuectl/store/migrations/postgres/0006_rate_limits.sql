-- Per-queue rate limits: at most rate_count job starts in any window of rate_period
-- seconds. Both NULL: no rate limit.
ALTER TABLE queues ADD COLUMN rate_count integer;
ALTER TABLE queues ADD COLUMN rate_period integer;

-- The starts of rate-limited queues' jobs; only those queues write here, and each claim
-- drops the starts that have left its queue's window, so the table stays small.
CREATE TABLE queue_starts (
    queue      text NOT NULL,
    started_at timestamptz NOT NULL
);
CREATE INDEX queue_starts_queue ON queue_starts (queue, started_at);
