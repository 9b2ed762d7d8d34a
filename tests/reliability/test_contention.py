"""SQLite under contention: 8 workers and 4 busy enqueuers, and no error reaches anyone."""

from __future__ import annotations

import json
import signal
import threading

import pytest

from tests.conftest import Queuectl, wait_until
from tests.reliability.tools import assert_sqlite_intact, read_jobs

pytestmark = pytest.mark.slow

ENQUEUERS = 4
SINGLES = 12  # `enqueue JSON` calls per enqueuer
BATCHES = 3  # `enqueue -` calls per enqueuer
BATCH = 25  # jobs per batch


def test_sqlite_contention_reaches_no_user(q_sqlite: Queuectl) -> None:
    q = q_sqlite
    q.ok("status")  # create the store before the crowd arrives
    workers = q.start_workers("--count", "8")
    failures: list[str] = []

    def enqueuer(number: int) -> None:
        for call in range(SINGLES + BATCHES):
            if call % 5 == 4:
                line = json.dumps({"command": "true", "queue": f"q{number}"})
                result = q.run("enqueue", "-", input=f"{line}\n" * BATCH)
            else:
                result = q.run("enqueue", json.dumps({"command": "echo $QUEUECTL_JOB_ID"}))
            if result.returncode != 0 or result.stderr:
                failures.append(f"exit {result.returncode}: {result.stderr.strip()}")

    threads = [threading.Thread(target=enqueuer, args=(n,)) for n in range(ENQUEUERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []

    total = ENQUEUERS * (SINGLES + BATCHES * BATCH)

    def done() -> bool:
        return bool(q.json("status")["jobs"]["completed"] == total)

    wait_until(done, timeout=60, interval=0.5, message="every job to complete")
    jobs = read_jobs(q)
    assert len(jobs) == total
    assert {(job["state"], job["attempts"]) for job in jobs.values()} == {("completed", 1)}
    assert all(attempt["error"] is None for job in jobs.values() for attempt in job["history"])
    q.signal_group(workers, signal.SIGTERM)
    code, log = q.finish(workers)
    assert code == 0, log
    assert "locked" not in log, log
    assert "busy" not in log, log
    assert_sqlite_intact(q)
