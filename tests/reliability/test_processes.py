"""A job's processes never outlive its run: timeouts, finished shells, killed workers,
rescues; and a worker that runs many jobs, or one huge output, keeps its resources flat."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import Queuectl, processes_with_argument, wait_until
from tests.reliability.tools import (
    job_processes,
    memory_kib,
    open_fds,
    worker_pids,
    zombie_children,
)

pytestmark = [pytest.mark.slow, pytest.mark.in_process]


def marker(n: int) -> str:
    """A `sleep` argument (about 300 s) that no other process on the machine has."""
    return f"30{n}.{os.getpid() % 10000:04d}{time.monotonic_ns() % 1000:03d}1"


def test_timed_out_job_leaves_no_process_behind(q: Queuectl) -> None:
    first, second = marker(1), marker(2)
    job_id = q.enqueue(
        command=f"sleep {first} & (sleep {second} | cat) & wait", timeout=2, max_retries=1
    )
    proc = q.start_workers()
    wait_until(lambda: processes_with_argument(second), message="the job to start its sleeps")
    job = q.wait_for_state(job_id, "dead", timeout=20)
    assert job["last_error"] == "timed out after 2s"
    assert processes_with_argument(first) == []
    assert processes_with_argument(second) == []
    assert job_processes(job_id) == {}
    q.signal_group(proc, signal.SIGTERM)
    assert q.finish(proc)[0] == 0


def test_killed_workers_job_dies_with_it_and_never_runs_twice(q: Queuectl, tmp_path: Path) -> None:
    """The shell dies with its worker (parent-death signal); what it left in the background
    is killed by the rescue, before the next attempt can start."""
    q.config("lease-timeout", "2")
    q.config("backoff-max", "0")
    ledger = tmp_path / "ledger"
    fg, bg = marker(3), marker(4)
    prefix = f"pdeath-{os.getpid()}-{time.monotonic_ns()}-"
    commands = {
        "fg": f"echo fg $QUEUECTL_ATTEMPT >> {ledger}; exec sleep {fg}",
        "bg": f"echo bg $QUEUECTL_ATTEMPT >> {ledger}; sleep {bg} & wait",
    }
    for name, command in commands.items():
        q.enqueue(id=prefix + name, command=command)
    proc = q.start_workers("--count", "2")
    wait_until(lambda: processes_with_argument(fg) and processes_with_argument(bg))
    q.signal_group(proc, signal.SIGKILL)  # the supervisor and both workers at once
    proc.wait(timeout=10)
    # Parent death: the shell (here exec'd into `sleep`) goes with the worker.
    wait_until(lambda: processes_with_argument(fg) == [], timeout=5, message="fg to die")

    replacement = q.start_workers("--count", "2")
    for name in commands:
        wait_until(
            lambda name=name: f"{name} 2" in ledger.read_text().split("\n"),  # type: ignore[misc]
            timeout=30,
            message=f"attempt 2 of {name} to start",
        )
    # Exactly one process holds each marker, and every process of the jobs is attempt 2's.
    assert len(processes_with_argument(fg)) == 1
    assert len(processes_with_argument(bg)) == 1
    assert {attempt for _, attempt in job_processes(prefix).values()} == {2}
    for name in commands:
        job = q.job(prefix + name)
        assert (job["state"], job["attempts"]) == ("processing", 2)
        assert "lost" in job["history"][0]["error"]
    q.ok("cancel", prefix + "fg", prefix + "bg")
    wait_until(lambda: job_processes(prefix) == {}, timeout=15, message="cancelled runs to end")
    q.signal_group(replacement, signal.SIGTERM)
    assert q.finish(replacement)[0] == 0


JOB_MIX = ["true", "echo out; echo err >&2", "sleep 0 & echo orphan", "exit 3"]


def test_many_jobs_leave_no_zombies_no_fd_leak_and_flat_memory(q: Queuectl, tmp_path: Path) -> None:
    """1,000 jobs on one worker (5,000 take minutes on a loaded 2-core machine), some
    leaving background processes to the worker and some failing."""
    total = 1000
    q.config("backoff-base", "1")
    q.config("backoff-max", "0")
    lines = [
        json.dumps({"command": JOB_MIX[n % len(JOB_MIX)], "max_retries": 0}) for n in range(total)
    ]
    q.ok("enqueue", "-", input="\n".join(lines))
    proc = q.start_workers()
    (worker,) = wait_until(lambda: worker_pids(proc), message="the worker process")

    def finished() -> int:
        counts = q.json("status")["jobs"]
        return int(counts["completed"] + counts["dead"])

    wait_until(lambda: finished() >= 150, timeout=60, interval=0.2, message="a warm-up")
    fds_before, rss_before = open_fds(worker), memory_kib(worker)
    wait_until(lambda: finished() == total, timeout=100, interval=0.5, message="every job")
    time.sleep(0.3)  # the worker goes idle; a zombie now would stay one
    fds_after, rss_after = open_fds(worker), memory_kib(worker)
    assert zombie_children(worker) == []
    assert fds_after <= fds_before + 2, (fds_before, fds_after)
    assert rss_after <= rss_before + 8 * 1024, (rss_before, rss_after)  # KiB
    counts = q.json("status")["jobs"]
    assert (counts["completed"], counts["dead"]) == (total * 3 // 4, total // 4)
    q.signal_group(proc, signal.SIGTERM)
    assert q.finish(proc)[0] == 0


def test_100_mb_of_invalid_utf8_output_is_capped_without_memory_growth(q: Queuectl) -> None:
    q.config("output-limit", "1000")
    proc = q.start_workers()
    (worker,) = wait_until(lambda: worker_pids(proc), message="the worker process")
    warm = q.enqueue(command="echo warm")
    q.wait_for_state(warm, "completed")
    peak_before = memory_kib(worker, "VmHWM")
    job_id = q.enqueue(
        command="yes \"$(printf 'ab\\377\\376c')\" | head -c 100000000; printf END", timeout=120
    )
    job = q.wait_for_state(job_id, "completed", timeout=100)
    assert job["output"].endswith("END")
    assert len(job["output"]) <= 1000
    assert "\ufffd" in job["output"]
    assert "ab" in job["output"]
    peak_after = memory_kib(worker, "VmHWM")
    assert peak_after <= peak_before + 20 * 1024, (peak_before, peak_after)  # KiB
    q.signal_group(proc, signal.SIGTERM)
    assert q.finish(proc)[0] == 0
