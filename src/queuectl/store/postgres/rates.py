"""Rate limits on PostgreSQL: setting a queue's rate, the start log that the claim checks
(store.sql.closed_queues) and writes (claims.py), and the cached list of queues with a limit
or a rate, whose claims take turns."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

from queuectl.core.models import Job
from queuectl.core.rates import Rate
from queuectl.store.postgres.connection import CHANNEL, NOTIFY, Cursor, PostgresConnection
from queuectl.store.postgres.rows import utc
from queuectl.store.sql import RATE_LIMITED_WITH_WORK

LIMITS_MAX_AGE = 1.0  # seconds a store trusts its list of queues that have a limit or rate

# The queues with a limit or a rate limit, and whether they have a rate: the queues table
# is small.
LIMITED_QUEUES = (
    "SELECT name, rate_count IS NOT NULL FROM queues"
    " WHERE max_running IS NOT NULL OR rate_count IS NOT NULL"
)
# Set or remove a queue's rate limit: the queues primary key.
SET_RATE = (
    "INSERT INTO queues (name, rate_count, rate_period) VALUES (%s, %s, %s)"
    " ON CONFLICT (name) DO UPDATE SET rate_count = excluded.rate_count,"
    " rate_period = excluded.rate_period"
)
# Log a start of a rate-limited queue's job, at the time the claim recorded, and drop the
# starts that have left the queue's window: queue_starts_queue, the queues primary key.
LOG_START = """
WITH aged AS (
    DELETE FROM queue_starts WHERE queue = %(queue)s AND started_at < %(at)s - (
        SELECT rate_period FROM queues WHERE name = %(queue)s
    ) * interval '1 second'
)
INSERT INTO queue_starts (queue, started_at)
SELECT name, %(at)s FROM queues WHERE name = %(queue)s AND rate_count IS NOT NULL
"""
# Forget a queue's starts (its rate limit is gone): queue_starts_queue.
FORGET_STARTS = "DELETE FROM queue_starts WHERE queue = %s"
# The nth newest start of a queue's jobs: queue_starts_queue.
RECENT_START = (
    "SELECT started_at FROM queue_starts WHERE queue = %s"
    " ORDER BY started_at DESC LIMIT 1 OFFSET %s"
)
# Seconds, by the server's clock, until the nth newest start of a queue is one period old.
SLOT_WAIT = (
    "SELECT extract(epoch FROM started_at - now())::float8 + %s FROM queue_starts"
    " WHERE queue = %s ORDER BY started_at DESC LIMIT 1 OFFSET %s"
)


class PostgresRates(PostgresConnection):
    """Queue rate limits and their start log, and which queues have a limit or a rate
    (claims from those take turns)."""

    def _limited_queues(self) -> list[str]:
        """Names of queues with a limit or a rate limit, re-read at most every
        LIMITS_MAX_AGE seconds."""
        if time.monotonic() - self._limits_read_at > LIMITS_MAX_AGE:
            rows = self._read(LIMITED_QUEUES)
            self._limits = [row[0] for row in rows]
            self._rated = {row[0] for row in rows if row[1]}
            self._limits_read_at = time.monotonic()
        return self._limits

    def set_queue_rate(self, name: str, rate: Rate | None) -> None:
        with self._transaction() as cursor:
            cursor.execute(
                SET_RATE, (name, rate.count, rate.period) if rate else (name, None, None)
            )
            if rate is None:
                cursor.execute(FORGET_STARTS, (name,))
            # A raised or removed rate may open the queue: idle workers should look now.
            cursor.execute(NOTIFY, (CHANNEL,))
        self._limits_read_at = float("-inf")

    def _log_start(self, cursor: Cursor, job: Job) -> None:
        """Record the claim of `job` in its queue's start log, in the claim's transaction."""
        cursor.execute(LOG_START, {"queue": job.queue, "at": job.started_at})

    def recent_start(self, queue: str, nth: int) -> datetime | None:
        rows = self._read(RECENT_START, (queue, nth - 1))
        return utc(rows[0][0]) if rows else None

    def _next_rate_slots(self, queues: Sequence[str] | None) -> list[float]:
        """Seconds until each queue with work that only its rate limit keeps closed
        opens again: until the start that must leave its window is one period old."""
        names, params = "", []
        if queues:
            names, params = " AND name = ANY(%s)", [list(queues)]
        slots = []
        for name, count, period in self._read(RATE_LIMITED_WITH_WORK + names, params):
            rows = self._read(SLOT_WAIT, (float(period), name, count - 1))
            if rows and rows[0][0] > 0:
                slots.append(float(rows[0][0]))
        return slots
