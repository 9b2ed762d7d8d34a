-- Recurring jobs. Each firing is enqueued as a job whose id is derived from the schedule
-- name and fire time, so workers racing on several hosts insert it once; the guarded
-- move of next_fire_at decides which of them does.
CREATE TABLE schedules (
    name          text PRIMARY KEY,
    cron          text NOT NULL,
    timezone      text NOT NULL DEFAULT 'UTC',
    command       text NOT NULL,
    queue         text NOT NULL DEFAULT 'default',
    priority      integer NOT NULL DEFAULT 0,
    max_retries   integer NOT NULL,
    timeout       double precision NOT NULL,  -- seconds
    cwd           text,
    env           text,  -- a JSON object of strings, or NULL
    catch_up      boolean NOT NULL DEFAULT false,
    paused        boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL,
    next_fire_at  timestamptz,  -- NULL while paused
    last_fired_at timestamptz
);
-- The workers' once-a-second look for due schedules reads this index alone.
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE NOT paused;
