"""Chaos: 1,000 jobs on four workers while a random worker is SIGKILLed every second.

Nothing acknowledged is lost, no job runs twice at once, every rerun and failed attempt
is explained by a kill, nothing stays `processing` past its lease, no process is left.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import WITH_PGBOUNCER, Queuectl, wait_until
from tests.integration.test_multihost import Host, require_uts_namespaces
from tests.reliability import ledger
from tests.reliability.tools import (
    assert_sqlite_intact,
    job_processes,
    processing_jobs,
    read_jobs,
    read_workers_table,
    worker_pids,
)

pytestmark = [pytest.mark.slow, pytest.mark.in_process]

JOBS = 1000
WORKERS = 4
KILLS = 10  # one a second
LEASE = 2.0  # seconds: short, so rescues happen within the test


@pytest.fixture
def worker_hosts(backend: str, q: Queuectl, tmp_path: Path) -> Iterator[list[Queuectl]]:
    """Where the workers run: this machine; through the pooler, two simulated hosts."""
    if backend != "pgbouncer":
        yield [q]
        return
    require_uts_namespaces()
    hosts: list[Queuectl] = [Host(q.target, tmp_path / name, name) for name in ("a", "b")]
    yield hosts
    for host in hosts:
        host.stop_all()


@pytest.mark.parametrize("backend", WITH_PGBOUNCER)
def test_random_worker_kills_lose_nothing_and_run_nothing_twice(
    q: Queuectl, worker_hosts: list[Queuectl], tmp_path: Path
) -> None:
    q.config("lease-timeout", str(LEASE))
    q.config("backoff-base", "1")  # a lost run is retried a second later
    folder = tmp_path / "ledger"
    folder.mkdir()
    prefix = f"chaos-{os.getpid()}-{time.monotonic_ns() % 10**6}-"
    lines = [
        json.dumps({"id": f"{prefix}{n:04d}", "command": ledger.ledger_command(folder),
                    "max_retries": 50})
        for n in range(JOBS)
    ]  # fmt: skip
    acknowledged = q.ok("enqueue", "-", input="\n".join(lines)).split()
    assert len(acknowledged) == JOBS

    # Worker n runs on host n mod the number of hosts, and comes back there after a kill.
    host_of = [worker_hosts[n % len(worker_hosts)] for n in range(WORKERS)]
    pool: list[subprocess.Popen[str]] = [host.start_workers() for host in host_of]
    killed: set[int] = set()
    chooser = random.Random(os.getpid())
    wait_until(lambda: any(folder.iterdir()), timeout=30, message="the first job to run")
    for _ in range(KILLS):
        time.sleep(1.0)
        victim = chooser.randrange(WORKERS)
        proc = pool[victim]
        killed.update(worker_pids(proc))  # a worker still starting has none yet: fine
        q.signal_group(proc, signal.SIGKILL)  # `worker start` and its worker, no goodbye
        proc.wait(timeout=10)
        pool[victim] = host_of[victim].start_workers()
    last_kill = time.monotonic()

    # Stuck: past lease + 2 s, nothing may still be held by a killed worker.
    def stuck() -> dict[str, str]:
        pids = read_workers_table(q)
        held = processing_jobs(q).items()
        return {job_id: holder for job_id, holder in held if pids.get(holder) in killed}

    stuck_deadline = last_kill + LEASE + 2.0
    wait_until(lambda: time.monotonic() >= stuck_deadline, timeout=LEASE + 3)
    left = stuck()
    if left:  # how much later they were rescued, to tell slow from never
        wait_until(lambda: not stuck(), timeout=30, message=f"rescue of {left}")
    late = time.monotonic() - stuck_deadline
    assert left == {}, f"held by killed workers {LEASE + 2}s after the last kill: {left}; " + (
        f"rescued {late:.1f}s later"
    )

    def all_finished() -> bool:
        counts = q.json("status")["jobs"]
        return bool(counts["completed"] + counts["dead"] + counts["cancelled"] == JOBS)

    wait_until(all_finished, timeout=120, interval=0.5, message="every job to finish")
    for proc in pool:
        q.signal_group(proc, signal.SIGTERM)
    for proc, host in zip(pool, host_of, strict=True):
        assert host.finish(proc)[0] == 0

    report = ledger.check(folder, acknowledged, read_jobs(q), killed, read_workers_table(q))
    assert report.problems() == {}, report
    assert report.runs >= JOBS
    assert job_processes(prefix) == {}, "orphaned processes"
    assert_sqlite_intact(q)
    print(f"\n{len(killed)} workers killed, {report.reruns} reruns of {report.runs} runs")
