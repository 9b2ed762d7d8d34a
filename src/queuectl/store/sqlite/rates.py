"""Rate limits on SQLite: setting a queue's rate, and reading the start log that the claim
writes and checks (see claims.py and store.sql.closed_queues)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from queuectl.core.rates import Rate
from queuectl.store.sql import RATE_LIMITED_WITH_WORK
from queuectl.store.sqlite.connection import SqliteConnection
from queuectl.store.sqlite.dependencies import marks
from queuectl.store.sqlite.rows import moment

# Set or remove a queue's rate limit: the queues primary key.
SET_RATE = (
    "INSERT INTO queues (name, rate_count, rate_period) VALUES (?, ?, ?)"
    " ON CONFLICT (name) DO UPDATE SET rate_count = excluded.rate_count,"
    " rate_period = excluded.rate_period"
)
# Forget a queue's starts (its rate limit is gone): queue_starts_queue.
FORGET_STARTS = "DELETE FROM queue_starts WHERE queue = ?"
# The nth newest start of a queue's jobs: queue_starts_queue.
RECENT_START = (
    "SELECT started_at FROM queue_starts WHERE queue = ? ORDER BY started_at DESC LIMIT 1 OFFSET ?"
)


class SqliteRates(SqliteConnection):
    """Queue rate limits and their start log."""

    def set_queue_rate(self, name: str, rate: Rate | None) -> None:
        with self._write() as conn:
            conn.execute(
                SET_RATE,
                (name, rate.count, rate.period) if rate else (name, None, None),
            )
            if rate is None:
                conn.execute(FORGET_STARTS, (name,))

    def recent_start(self, queue: str, nth: int) -> datetime | None:
        rows = self._read(RECENT_START, (queue, nth - 1))
        return moment(rows[0][0]) if rows else None

    def _next_rate_slots(self, queues: Sequence[str] | None, now: float) -> list[float]:
        """When each queue with work that only its rate limit keeps closed opens again:
        the start that must leave its window, plus the period."""
        names = f" AND name IN {marks(len(queues))}" if queues else ""
        slots = []
        for name, count, period in self._read(RATE_LIMITED_WITH_WORK + names, queues or ()):
            rows = self._read(RECENT_START, (name, count - 1))
            if rows and rows[0][0] + period > now:
                slots.append(float(rows[0][0] + period))
        return slots
