"""Finding a lost run's processes by the environment it handed down (what a rescue kills)."""

from __future__ import annotations

import os
import subprocess
import time

from queuectl.leftovers import kill_processes_with_environment
from tests.conftest import processes_with_argument, wait_until


def spawn(marker: str, **variables: str) -> subprocess.Popen[bytes]:
    """A shell that leaves a detached `sleep` behind in a session of its own (as a daemon
    would), both carrying `variables`."""
    return subprocess.Popen(
        ["/bin/sh", "-c", f"setsid sleep {marker} & exec sleep {marker}"],
        env=dict(os.environ, **variables),
        start_new_session=True,
    )


def test_kill_by_environment_takes_only_the_matching_run() -> None:
    base = f"3{os.getpid() % 100000:05d}.{time.monotonic_ns() % 1000:03d}"
    lost, other_attempt, other_worker = f"{base}1", f"{base}2", f"{base}3"
    run = {"QUEUECTL_JOB_ID": "j", "QUEUECTL_ATTEMPT": "1", "QUEUECTL_WORKER_ID": "worker-a"}
    procs = [
        spawn(lost, **run),
        spawn(other_attempt, **dict(run, QUEUECTL_ATTEMPT="2")),
        spawn(other_worker, **dict(run, QUEUECTL_WORKER_ID="worker-b")),
    ]
    try:
        for marker in (lost, other_attempt, other_worker):
            wait_until(lambda marker=marker: len(processes_with_argument(marker)) == 2)  # type: ignore[misc]
        killed = kill_processes_with_environment(run)
        procs[0].wait(timeout=5)
        assert len(killed) == 2  # the shell and the sleep that left its session
        assert procs[0].pid in killed
        assert processes_with_argument(lost) == []  # gone when the call returns
        assert len(processes_with_argument(other_attempt)) == 2
        assert len(processes_with_argument(other_worker)) == 2
    finally:
        for marker in (lost, other_attempt, other_worker):
            for pid in processes_with_argument(marker):
                os.kill(pid, 9)
        for proc in procs:
            proc.wait(timeout=5)
