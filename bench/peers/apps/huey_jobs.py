"""huey on its SQLite storage, with one task that runs `sh -c true` as a subprocess.

Run by `huey_consumer bench.peers.apps.huey_jobs.huey` with the repository on
PYTHONPATH; the queue file is `$PEER_DB`. No result is stored (the task returns None),
as for a fire-and-forget job.
"""

from __future__ import annotations

import os
import subprocess
import time

from huey import SqliteHuey  # type: ignore[import-not-found]

from bench.peers.apps import open_log, record

huey = SqliteHuey("queuectl-bench", filename=os.environ["PEER_DB"])
_logs: list[int] = []  # opened once per worker process, after the consumer forked it


def run_true() -> None:
    start = time.time()
    subprocess.run(["sh", "-c", "true"], check=True)
    if not _logs:
        _logs.append(open_log())
    record(_logs[0], start)


run_true_task = huey.task()(run_true)


def enqueue(count: int) -> None:
    """Put `count` tasks in the queue (the consumer is not running yet)."""
    for _ in range(count):
        run_true_task()
