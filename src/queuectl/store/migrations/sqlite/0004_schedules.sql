-- Recurring jobs. Each firing is enqueued as a job whose id is derived from the schedule
-- name and fire time, so workers racing on several hosts insert it once; the guarded
-- move of next_fire_at decides which of them does.
CREATE TABLE schedules (
    name          TEXT PRIMARY KEY,
    cron          TEXT NOT NULL,
    timezone      TEXT NOT NULL DEFAULT 'UTC',
    command       TEXT NOT NULL,
    queue         TEXT NOT NULL DEFAULT 'default',
    priority      INTEGER NOT NULL DEFAULT 0,
    max_retries   INTEGER NOT NULL,
    timeout       REAL NOT NULL,
    cwd           TEXT,
    env           TEXT,  -- a JSON object of strings, or NULL
    catch_up      INTEGER NOT NULL DEFAULT 0,
    paused        INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL,
    next_fire_at  REAL,  -- NULL while paused
    last_fired_at REAL
);
-- The workers' once-a-second look for due schedules reads this index alone.
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE NOT paused;
