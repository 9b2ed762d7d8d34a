"""SQL text both backends share: the column lists the row readers expect, and conditions
written the same in either dialect. Each backend keeps its own statements."""

from __future__ import annotations

# The columns of a job, in the order rows.job_from_row reads them.
JOB_COLUMNS = (
    "id, command, state, queue, priority, attempts, max_retries, timeout, created_at,"
    " updated_at, scheduled_at, run_at, started_at, finished_at, exit_code, last_error,"
    " output, locked_by, locked_at, cwd, env, retry_on_exit, fatal_on_exit, dedupe_key,"
    " depends_on, hooks"
)
# The columns of an attempt, in the order rows.attempt_from_row reads them.
ATTEMPT_COLUMNS = (
    "job_id, attempt, worker_id, started_at, finished_at, exit_code, error, outcome, signal"
)
# The columns of a schedule, in the order schedule_rows.schedule_from_row reads them.
SCHEDULE_COLUMNS = (
    "name, cron, timezone, command, queue, priority, max_retries, timeout, cwd, env,"
    " catch_up, paused, created_at, next_fire_at, last_fired_at"
)
# The columns of a worker, in the order each backend's worker reader reads them.
WORKER_COLUMNS = "id, host, pid, status, started_at, last_heartbeat, current_job_id, queues"
# Queues closed to claims: paused, running as many jobs as their limit, or (see
# closed_queues) out of starts for their rate. Counts through jobs_state (state, seq); the
# queues table stays small.
CLOSED_QUEUES = (
    "SELECT name FROM queues WHERE paused OR (max_running IS NOT NULL AND max_running <="
    " (SELECT count(*) FROM jobs AS running"
    "  WHERE running.state = 'processing' AND running.queue = queues.name))"
)


def closed_queues(window_start: str) -> str:
    """CLOSED_QUEUES, and queues whose rate limit's window holds as many starts as it
    allows. `window_start` is the backend's SQL for "now minus queues.rate_period": a start
    at that very moment still counts, so no closed window of that length holds more. A
    queue without a rate stops at `rate_count IS NOT NULL`; the count reads
    queue_starts_queue."""
    return (
        f"{CLOSED_QUEUES} OR (rate_count IS NOT NULL AND rate_count <="
        " (SELECT count(*) FROM queue_starts"
        f"  WHERE queue_starts.queue = queues.name AND queue_starts.started_at >= {window_start}))"
    )


# Rate-limited queues that are neither paused nor full and have a job waiting (pending or
# failed, no unfinished dependency): those whose rate may be all that keeps a worker idle.
# Reads jobs_queue_state; the queues table is small.
RATE_LIMITED_WITH_WORK = (
    "SELECT name, rate_count, rate_period FROM queues"
    f" WHERE rate_count IS NOT NULL AND name NOT IN ({CLOSED_QUEUES}) AND EXISTS ("
    "  SELECT 1 FROM jobs WHERE jobs.queue = queues.name"
    "  AND jobs.state IN ('pending', 'failed') AND jobs.waiting_on = 0)"
)


# The predicate of the unique index jobs_dedupe_key (migration 0003): an upsert names it to
# skip a job whose key is taken, and lookups use it to find the job that holds a key.
DEDUPE_HELD = "dedupe_key IS NOT NULL AND state IN ('pending', 'failed', 'processing')"


def dedupe_held(alias: str) -> str:
    """DEDUPE_HELD for the jobs table named `alias` in a query that joins it to itself."""
    return (
        f"{alias}.dedupe_key IS NOT NULL AND {alias}.state IN ('pending', 'failed', 'processing')"
    )


def schedule_marks(mark: str) -> str:
    """The placeholders for SCHEDULE_COLUMNS, in the backend's `mark` (? or %s)."""
    return ", ".join([mark] * len(SCHEDULE_COLUMNS.split(",")))


# The columns of an outbox row, in the order rows.hook_event_from_row reads them.
EVENT_COLUMNS = (
    "seq, job_id, event, channel, target, state, exit_code, attempt, queue, command,"
    " last_error, output, created_at, status, tries, next_attempt_at, finished_at, error"
)
EVENT_OUTPUT_CHARS = 8192  # the end of a job's output an outbox row keeps
# What a state change is called in hooks and webhooks, by the state it leads to.
EVENT_OF_STATE = {
    "completed": "complete",
    "failed": "fail",
    "dead": "dead",
    "cancelled": "cancel",
}


# A hook or webhook config value, NULL when it is unset (stored as `none`, or empty).
CONFIGURED = "nullif(nullif(value, ''), 'none')"


def record_events(source: str, *, event: str, hook: str, tail: str, now: str) -> str:
    """The statement that writes the outbox rows of one state change: for each job row of
    `source` (a FROM item aliased j, with the job's columns, and its WHERE), a hook row
    when a hook command is configured for `event` (the job's own, else the config's
    on-EVENT) and a webhook row when a URL is (the queue's own, else the config's
    webhook-url); nothing otherwise.
    `hook` is the backend's expression for the job's own command (`hooks` JSON, key on_ ||
    event), `tail` for the end of its output, `now` for the time."""
    target = (
        f"CASE c.channel WHEN 'hook' THEN coalesce({hook},"
        f" (SELECT {CONFIGURED} FROM config WHERE key = 'on-' || {event}))"
        " ELSE coalesce((SELECT nullif(webhook_url, '') FROM queues WHERE name = j.queue),"
        f" (SELECT {CONFIGURED} FROM config WHERE key = 'webhook-url')) END"
    )
    return (
        "INSERT INTO job_events (job_id, event, channel, target, state, exit_code, attempt,"
        " queue, command, last_error, output, created_at, next_attempt_at)"
        " SELECT * FROM (SELECT j.id, "
        f"{event} AS event, c.channel, {target} AS target, j.state, j.exit_code, j.attempts,"
        f" j.queue, j.command, j.last_error, {tail} AS tail, {now} AS created, {now} AS due"
        " FROM (SELECT 'hook' AS channel UNION ALL SELECT 'webhook') AS c"
        f" CROSS JOIN {source}) AS e"
        " WHERE e.target IS NOT NULL"
    )
