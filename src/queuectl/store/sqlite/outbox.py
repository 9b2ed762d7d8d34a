"""The outbox on SQLite: the hook and webhook rows of a state change, written inside the
transaction that makes the change (see store/sql.py record_events)."""

from __future__ import annotations

import sqlite3

from queuectl.core.models import JobState
from queuectl.store.sql import EVENT_OF_STATE, EVENT_OUTPUT_CHARS, record_events
from queuectl.store.sqlite.connection import SqliteConnection

# The outbox rows of one job's state change, when a hook or webhook is configured for it:
# jobs.id, then the config and queues primary keys.
RECORD_EVENTS = record_events(
    "jobs AS j WHERE j.id = :job",
    event=":event",
    hook="json_extract(j.hooks, '$.on_' || :event)",
    tail=f"substr(j.output, -{EVENT_OUTPUT_CHARS})",
    now=":now",
)


class SqliteOutbox(SqliteConnection):
    """Writes outbox rows in the caller's write transaction."""

    def _record_events(self, conn: sqlite3.Connection, job_id: str, state: JobState) -> None:
        """The hook and webhook rows for `job_id` having just entered `state`."""
        event = EVENT_OF_STATE[state.value]
        conn.execute(RECORD_EVENTS, {"job": job_id, "event": event, "now": self._now()})
