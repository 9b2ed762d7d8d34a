"""Every table of a store, and how a transfer (export, import, `store migrate`) carries it.

A migration that adds a table or a column fails tests/contract/test_transfer_tables.py
until it is named here, with the way import rebuilds it: a transfer cannot forget it.
"""

from __future__ import annotations

# Tables a transfer carries, and in what: the export header lists these names.
CARRIED_TABLES = {
    "jobs": "job records, one per job",
    "attempts": "the history of each job record",
    "job_dependencies": "rebuilt on import from each job's depends_on",
    "config": "the config record",
    "queues": "queue records (pause, limit, rate limit)",
    "schedules": "schedule records",
}
# Tables that stay with their store.
LEFT_BEHIND = {
    "workers": "the processes of the source store: they do not move with it",
    "queuectl_schema": "the schema version (PostgreSQL): the target has its own",
    "queue_starts": "recent starts of rate-limited queues' jobs: they age out within a period",
    "job_events": "the outbox of hook and webhook deliveries, for state changes the source "
    "store's workers report: a moved store's jobs have ended already",
}
# Columns of carried tables that no field of the record holds: import recomputes them.
DERIVED_COLUMNS = {
    "jobs": {
        "seq": "the order of the job records",
        "waiting_on": "recounted from job_dependencies and the dependencies' states",
        "has_dependents": "set from job_dependencies (PostgreSQL)",
    },
    "attempts": {
        "seq": "the order of the history",
        "output": "the attempt's output, beside its fields",
    },
}
