"""The statements that `status` and `show` send, and the table qualification every
statement gets, apart from the modules that run them with psycopg: the lean reads over
psycopg2 (reads.py) then send the very same SQL as PostgresStore. No driver is imported."""

from __future__ import annotations

import re
from functools import lru_cache

from queuectl.store.sql import ATTEMPT_COLUMNS, EVENT_COLUMNS, JOB_COLUMNS, WORKER_COLUMNS

SCHEMA = "queuectl"  # every table lives here, clear of the application's own tables
TABLES = (
    "jobs",
    "attempts",
    "workers",
    "config",
    "queues",
    "schedules",
    "job_dependencies",
    "queue_starts",
    "job_events",
    "queuectl_schema",
)
# A table named where a statement reads or writes it. Keywords are upper case in all of
# queuectl's SQL, which keeps this off string literals and off column names (workers has
# a column `queues`; extract(epoch FROM finished_at) names a column after FROM).
TABLE_REFERENCE = re.compile(rf"\b(FROM|JOIN|UPDATE|INTO|TABLE|COPY)\s+({'|'.join(TABLES)})\b")

# A job's hook and webhook deliveries, oldest first: job_events_job.
JOB_EVENTS = f"SELECT {EVENT_COLUMNS} FROM job_events WHERE job_id = %s ORDER BY seq"
# The config table, whole: it is small.
GET_CONFIG = "SELECT key, value FROM config"
# Processing jobs whose worker stopped or went silent, by the server's clock (hosts with
# skewed clocks agree): jobs_state, then the workers key.
STALE_JOBS = (
    f"SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'processing' AND NOT EXISTS ("
    " SELECT 1 FROM workers WHERE workers.id = jobs.locked_by"
    " AND workers.status <> 'stopped'"
    " AND workers.last_heartbeat >= now() - %s * interval '1 second')"
    " ORDER BY seq"
)
# Workers not stopped whose heartbeat is recent: the workers table is small.
ACTIVE_WORKERS = (
    f"SELECT {WORKER_COLUMNS} FROM workers WHERE status <> 'stopped'"
    " AND last_heartbeat >= now() - %s * interval '1 second' ORDER BY started_at, id"
)
# Jobs per state, of the jobs a WHERE clause (or "") picks: jobs_queue_state.
COUNT_BY_STATE = "SELECT state, count(*) FROM jobs {where} GROUP BY state"
# One job as stored: jobs.id (unique).
GET_JOB = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %s"
# A job's history in order: attempts_job.
LIST_ATTEMPTS = f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE job_id = %s ORDER BY seq"


@lru_cache(maxsize=512)
def qualify(sql: str) -> str:
    """`sql` with every queuectl table named with its schema, so that it needs no
    search_path. Cached: the store sends the same few statements over and over."""
    return TABLE_REFERENCE.sub(rf"\1 {SCHEMA}.\2", sql)
