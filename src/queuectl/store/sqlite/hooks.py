"""Hook and webhook deliveries on SQLite: claiming due outbox rows under a lease, recording
how each went, and what `show`, `doctor` and `queue webhook` read and write."""

from __future__ import annotations

from queuectl.store.records import HookEvent
from queuectl.store.rows import hook_event_from_row
from queuectl.store.sql import EVENT_COLUMNS
from queuectl.store.sqlite.connection import SqliteConnection
from queuectl.store.sqlite.rows import moment

# The next due row nobody holds (or whose holder's lease ran out): job_events_due.
NEXT_EVENT = (
    "SELECT seq FROM job_events INDEXED BY job_events_due"
    " WHERE status = 'pending' AND next_attempt_at <= :now"
    " AND (claimed_by IS NULL OR claimed_at < :expired) ORDER BY next_attempt_at, seq LIMIT 1"
)
# Take the row NEXT_EVENT finds, leased to a worker: job_events_due, then its key.
CLAIM_EVENT = (
    "UPDATE job_events SET claimed_by = :worker, claimed_at = :now"
    f" WHERE seq = ({NEXT_EVENT}) RETURNING {EVENT_COLUMNS}"
)
# How a delivery went, if the row is still leased to this worker: the primary key.
FINISH_EVENT = (
    "UPDATE job_events SET status = :status, tries = tries + 1, error = :error,"
    " next_attempt_at = coalesce(:next, next_attempt_at),"
    " finished_at = CASE WHEN :status = 'pending' THEN NULL ELSE :now END,"
    " claimed_by = NULL, claimed_at = NULL WHERE seq = :id AND claimed_by = :worker"
)
# A job's deliveries, oldest first: job_events_job.
JOB_EVENTS = f"SELECT {EVENT_COLUMNS} FROM job_events WHERE job_id = ? ORDER BY seq"
# Deliveries that failed since a time, newest first: job_events_finished (whose predicate
# the first term repeats, so that SQLite sees the partial index applies).
FAILED_EVENTS = (
    f"SELECT {EVENT_COLUMNS} FROM job_events WHERE status <> 'pending'"
    " AND status = 'failed' AND finished_at >= ? ORDER BY finished_at DESC LIMIT ?"
)
# Forget finished deliveries older than a time: job_events_finished.
PRUNE_EVENTS = "DELETE FROM job_events WHERE status <> 'pending' AND finished_at < ?"
# Set or remove a queue's own webhook: the queues primary key.
SET_WEBHOOK = (
    "INSERT INTO queues (name, webhook_url) VALUES (?, ?)"
    " ON CONFLICT (name) DO UPDATE SET webhook_url = excluded.webhook_url"
)
# The queues that have a webhook of their own: the queues table is small.
WEBHOOK_QUEUES = "SELECT name, webhook_url FROM queues WHERE webhook_url IS NOT NULL ORDER BY name"


class SqliteHooks(SqliteConnection):
    """The outbox's deliveries."""

    def claim_event(self, worker_id: str, lease: float) -> HookEvent | None:
        now = self._now()
        params = {"worker": worker_id, "now": now, "expired": now - lease}
        # A lock-free look first: idle deliverers never queue up for the write lock.
        if not self._read(NEXT_EVENT, params):
            return None
        with self._write() as conn:
            params["now"] = self._now()
            row = conn.execute(CLAIM_EVENT, params).fetchone()
        return hook_event_from_row(row, moment) if row else None

    def finish_event(
        self, event_id: int, worker_id: str, error: str | None, retry_in: float | None
    ) -> bool:
        now = self._now()
        status = "delivered" if error is None else ("pending" if retry_in is not None else "failed")
        params = {
            "status": status,
            "error": error,
            "next": now + retry_in if retry_in is not None else None,
            "now": now,
            "id": event_id,
            "worker": worker_id,
        }
        with self._write() as conn:
            return conn.execute(FINISH_EVENT, params).rowcount == 1

    def list_job_events(self, job_id: str) -> list[HookEvent]:
        return [hook_event_from_row(row, moment) for row in self._read(JOB_EVENTS, (job_id,))]

    def failed_events(self, since: float, limit: int) -> list[HookEvent]:
        rows = self._read(FAILED_EVENTS, (self._now() - since, limit))
        return [hook_event_from_row(row, moment) for row in rows]

    def prune_events(self, older_than: float) -> int:
        with self._write() as conn:
            return conn.execute(PRUNE_EVENTS, (self._now() - older_than,)).rowcount

    def set_queue_webhook(self, name: str, url: str | None) -> None:
        with self._write() as conn:
            conn.execute(SET_WEBHOOK, (name, url))

    def queue_webhooks(self) -> dict[str, str]:
        return dict(self._read(WEBHOOK_QUEUES))
