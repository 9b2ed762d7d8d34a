"""`queue rate` with real workers (issue 16, item 3): four workers on two simulated hosts
(see test_multihost.py) never start more of a queue's jobs in any window of its period than
the rate allows, on either backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from queuectl.core.models import JobState
from queuectl.store.base import JobFilter, Store
from tests.conftest import Queuectl, wait_until
from tests.integration.test_multihost import Host, require_uts_namespaces

pytestmark = [pytest.mark.slow, pytest.mark.in_process]

RATE, PERIOD = 5, timedelta(seconds=1)  # `5/s`
JOBS = 20
# Timestamps are kept to the microsecond: two starts exactly a period apart may read as
# a hair less.
ROUNDING = timedelta(milliseconds=1)


@pytest.fixture
def hosts(db_target: str, tmp_path: Path) -> Iterator[dict[str, Host]]:
    require_uts_namespaces()
    made = {name: Host(db_target, tmp_path / name, name) for name in ("host-a", "host-b")}
    yield made
    for host in made.values():
        host.stop_all()


def active_workers(q: Queuectl) -> list[dict[str, Any]] | None:
    workers: list[dict[str, Any]] = q.active_workers()
    return workers if len(workers) == 4 else None


def test_four_workers_on_two_hosts_never_exceed_the_rate(
    hosts: dict[str, Host], q: Queuectl, store: Store
) -> None:
    q.ok("queue", "rate", "api", f"{RATE}/s")
    for host in hosts.values():
        host.start_workers("--count", "2")
    workers = wait_until(lambda: active_workers(q), timeout=30, message="four workers")
    host_of = {worker["id"]: worker["host"] for worker in workers}
    lines = "".join(json.dumps({"command": "true", "queue": "api"}) + "\n" for _ in range(JOBS))
    q.ok("enqueue", "-", input=lines)
    wait_until(
        lambda: store.count_jobs_by_state()[JobState.COMPLETED] == JOBS,
        timeout=120,
        interval=0.2,
        message="every job to complete",
    )

    attempts = [
        attempt
        for job in store.list_jobs(JobFilter(limit=0))
        for attempt in store.list_attempts(job.id)
    ]
    assert len(attempts) == JOBS
    starts = sorted(attempt.started_at for attempt in attempts)
    # Any window of one period holds at most RATE starts: the start RATE places later is
    # at least a period after.
    crowded = [
        (starts[n], starts[n + RATE])
        for n in range(len(starts) - RATE)
        if starts[n + RATE] - starts[n] < PERIOD - ROUNDING
    ]
    assert crowded == [], f"more than {RATE} starts within {PERIOD}: {crowded[:3]}"
    assert {host_of[attempt.worker_id or ""] for attempt in attempts} == {"host-a", "host-b"}
