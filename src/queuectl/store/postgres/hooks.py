"""Hook and webhook deliveries on PostgreSQL: claiming due outbox rows under a lease (SKIP
LOCKED), recording how each went, and what `show`, `doctor` and `queue webhook` use."""

from __future__ import annotations

from queuectl.store.postgres.connection import PostgresConnection
from queuectl.store.postgres.rows import utc, without_nul
from queuectl.store.postgres.statements import JOB_EVENTS
from queuectl.store.records import HookEvent
from queuectl.store.rows import hook_event_from_row
from queuectl.store.sql import EVENT_COLUMNS

# Take the next due row nobody holds (or whose holder's lease ran out), leased to a
# worker; rows other deliverers are taking are skipped: job_events_due, then its key.
CLAIM_EVENT = (
    "UPDATE job_events SET claimed_by = %(worker)s, claimed_at = now()"
    " WHERE seq = (SELECT seq FROM job_events WHERE status = 'pending'"
    " AND next_attempt_at <= now() AND (claimed_by IS NULL"
    " OR claimed_at < now() - %(lease)s * interval '1 second')"
    " ORDER BY next_attempt_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED)"
    f" RETURNING {EVENT_COLUMNS}"
)
# How a delivery went, if the row is still leased to this worker: the primary key.
FINISH_EVENT = (
    "UPDATE job_events SET status = %(status)s, tries = tries + 1, error = %(error)s,"
    " next_attempt_at = coalesce(now() + %(retry_in)s * interval '1 second',"
    " next_attempt_at), finished_at = CASE WHEN %(status)s = 'pending' THEN NULL"
    " ELSE now() END, claimed_by = NULL, claimed_at = NULL"
    " WHERE seq = %(id)s AND claimed_by = %(worker)s"
)
# Deliveries that failed since a time, newest first: job_events_finished (whose predicate
# the first term repeats, as on SQLite).
FAILED_EVENTS = (
    f"SELECT {EVENT_COLUMNS} FROM job_events WHERE status <> 'pending'"
    " AND status = 'failed' AND finished_at >= now() - %s * interval '1 second'"
    " ORDER BY finished_at DESC LIMIT %s"
)
# Forget finished deliveries older than a time: job_events_finished.
PRUNE_EVENTS = (
    "DELETE FROM job_events WHERE status <> 'pending'"
    " AND finished_at < now() - %s * interval '1 second'"
)
# Set or remove a queue's own webhook: the queues primary key.
SET_WEBHOOK = (
    "INSERT INTO queues (name, webhook_url) VALUES (%s, %s)"
    " ON CONFLICT (name) DO UPDATE SET webhook_url = excluded.webhook_url"
)
# The queues that have a webhook of their own: the queues table is small.
WEBHOOK_QUEUES = "SELECT name, webhook_url FROM queues WHERE webhook_url IS NOT NULL ORDER BY name"


class PostgresHooks(PostgresConnection):
    """The outbox's deliveries."""

    def claim_event(self, worker_id: str, lease: float) -> HookEvent | None:
        rows = self._read(CLAIM_EVENT, {"worker": worker_id, "lease": float(lease)})
        return hook_event_from_row(rows[0], utc) if rows else None

    def finish_event(
        self, event_id: int, worker_id: str, error: str | None, retry_in: float | None
    ) -> bool:
        status = "delivered" if error is None else ("pending" if retry_in is not None else "failed")
        params = {
            "status": status,
            "error": without_nul(error),
            "retry_in": retry_in,
            "id": event_id,
            "worker": worker_id,
        }
        return self._execute(FINISH_EVENT, params).rowcount == 1

    def list_job_events(self, job_id: str) -> list[HookEvent]:
        return [hook_event_from_row(row, utc) for row in self._read(JOB_EVENTS, (job_id,))]

    def failed_events(self, since: float, limit: int) -> list[HookEvent]:
        rows = self._read(FAILED_EVENTS, (float(since), limit))
        return [hook_event_from_row(row, utc) for row in rows]

    def prune_events(self, older_than: float) -> int:
        return self._execute(PRUNE_EVENTS, (float(older_than),)).rowcount

    def set_queue_webhook(self, name: str, url: str | None) -> None:
        self._execute(SET_WEBHOOK, (name, url))

    def queue_webhooks(self) -> dict[str, str]:
        return dict(self._read(WEBHOOK_QUEUES))
