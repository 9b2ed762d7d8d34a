"""The outbox on PostgreSQL: the hook and webhook rows of a state change, written inside
the transaction that makes the change (see store/sql.py record_events)."""

from __future__ import annotations

from queuectl.store.sql import EVENT_OUTPUT_CHARS, record_events

# The backend's pieces of record_events: the event a parameter, the job's own hook read
# from its `hooks` JSON, the end of its output, the server's clock.
EVENT_SQL = {
    "event": "%(event)s::text",
    "hook": "(j.hooks::jsonb ->> ('on_' || %(event)s::text))",
    "tail": f"right(j.output, {EVENT_OUTPUT_CHARS})",
    "now": "now()",
}
# The outbox rows of some jobs' state change (cancel, the death of dependents), when a
# hook or webhook is configured for it: jobs.id, then the config and queues keys.
RECORD_EVENTS = record_events("jobs AS j WHERE j.id = ANY(%(job)s)", **EVENT_SQL)
