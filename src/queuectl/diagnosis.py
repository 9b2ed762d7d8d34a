"""`queuectl doctor`'s checks over a store: what is read, and in which order.

The verdicts themselves (pure functions of the facts) live in core.health.
"""

from __future__ import annotations

from queuectl.core import health
from queuectl.core.models import JobState
from queuectl.service import QueueService
from queuectl.store.base import JobFilter

HOOK_FAILURES_SHOWN = 100  # failed deliveries `doctor` counts, at most


def diagnose(service: QueueService, dlq_threshold: int | None = None) -> list[health.Check]:
    """The checks of `queuectl doctor`; reads only (an older schema is migrated first,
    as any command would). `dlq_threshold` defaults to config dlq-threshold."""
    store = service.store
    facts = store.inspect_storage()
    if 0 < facts.schema_version < facts.current_schema_version:
        store.migrate()
        facts = store.inspect_storage()
    checks = [health.check_store(facts)]
    if checks[0].status is health.Status.FAIL:
        return checks  # nothing else can be read from it
    current = service.settings()
    lease = current.lease_timeout
    stale = store.find_stale_workers(lease)
    now = store.now()
    active = store.list_workers(lease)
    processing = store.list_jobs(JobFilter(states=(JobState.PROCESSING,), limit=0))
    holding = {job.locked_by for job in processing if job.locked_by}
    checks.append(health.check_workers(len(active), stale, lease, now, holding))
    checks.append(
        health.check_stuck_jobs(
            store.find_stale_jobs(lease),
            processing,
            {worker.id: worker for worker in stale + active},
            lease,
            now,
        )
    )
    dead = store.count_jobs_by_state().get(JobState.DEAD, 0)
    threshold = current.dlq_threshold if dlq_threshold is None else dlq_threshold
    checks.append(health.check_dlq(dead, threshold))
    if facts.connections is not None:
        checks.append(health.check_connections(facts.connections))
    if facts.notifications is not None:
        checks.append(health.check_notifications(facts.notifications, current.poll_interval))
    if facts.wal_bytes is not None:
        checks.append(health.check_wal(facts.wal_bytes))
    if facts.files:
        checks.append(health.check_permissions(facts.files))
    failed = store.failed_events(health.HOOK_FAILURE_WINDOW, HOOK_FAILURES_SHOWN)
    checks.append(
        health.check_hooks(
            [(e.job_id, f"{e.event} {e.channel}: {e.error or 'failed'}") for e in failed]
        )
    )
    return checks
