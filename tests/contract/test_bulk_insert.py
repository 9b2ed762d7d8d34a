"""Large batches (`enqueue -`, `import`): PostgreSQL loads them with COPY, which must store
and report exactly what its one-statement insert did, all or nothing (issue 15)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from queuectl.core.errors import DuplicateDedupeKey, DuplicateJobId
from queuectl.core.models import JobState, NewJob
from queuectl.store.base import JobFilter, Store
from queuectl.store.postgres.bulk import COPY_MIN_JOBS

BATCH = COPY_MIN_JOBS + 50


def varied_jobs(count: int) -> list[NewJob]:
    """Jobs that use every field a plain job has, in turn."""
    later = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    return [
        NewJob(
            id=f"bulk-{n:04d}",
            command=f"echo {n} 'quoted' \\ back\tslash",
            queue=("default", "emails", "reports")[n % 3],
            priority=n % 7 - 3,
            max_retries=n % 5,
            timeout=0.5 + n,
            scheduled_at=later if n % 4 == 0 else None,
            cwd="/tmp/some where" if n % 5 == 0 else None,
            env={"NAME": f"value {n}", "EMPTY": ""} if n % 6 == 0 else None,
            retry_on_exit=(1, 75) if n % 7 == 0 else (),
            fatal_on_exit=(2,) if n % 8 == 0 else (),
            dedupe_key=f"key-{n}" if n % 9 == 0 else None,
        )
        for n in range(count)
    ]


def test_a_large_batch_reports_what_it_stored_in_order(store: Store) -> None:
    jobs = varied_jobs(BATCH)
    before = store.now()
    stored = store.insert_jobs(jobs)
    assert [job.id for job in stored] == [job.id for job in jobs]
    assert stored == store.list_jobs(JobFilter(limit=0))
    for job in stored:
        assert job.state is JobState.PENDING
        assert job.created_at >= before - timedelta(seconds=1)
        assert job.created_at.tzinfo == UTC
    scheduled = stored[0]
    assert scheduled.scheduled_at == scheduled.run_at == datetime(2030, 1, 2, 1, 4, 5, 678901, UTC)


def test_a_large_batch_with_a_taken_id_stores_nothing(store: Store) -> None:
    store.insert_jobs([NewJob("bulk-0100", "true")])
    with pytest.raises(DuplicateJobId, match="bulk-0100"):
        store.insert_jobs(varied_jobs(BATCH))
    assert [job.id for job in store.list_jobs(JobFilter(limit=0))] == ["bulk-0100"]


def test_a_large_batch_with_a_held_dedupe_key_stores_nothing(store: Store) -> None:
    store.insert_jobs([NewJob("holder", "true", dedupe_key="key-18")])
    with pytest.raises(DuplicateDedupeKey) as raised:
        store.insert_jobs(varied_jobs(BATCH))
    assert (raised.value.key, raised.value.existing_id) == ("key-18", "holder")
    assert [job.id for job in store.list_jobs(JobFilter(limit=0))] == ["holder"]
