"""The worker engine: jobs die with their worker (the guard), a bug in any worker task ends
the worker safely, and stop signals are counted by who sent them (a terminal, the
supervisor, `worker stop`)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import Queuectl, processes_with_argument, wait_until
from tests.reliability.tools import guard_pids, worker_pids

pytestmark = [pytest.mark.slow, pytest.mark.in_process]


def marker(n: int) -> str:
    """A `sleep` argument (about 300 s) that no other process on the machine has."""
    return f"30{n}.{os.getpid() % 10000:04d}{time.monotonic_ns() % 1000:03d}7"


# -- the guard: a job's processes die with its worker ----------------------------------


def test_sigkill_of_the_whole_worker_group_kills_the_running_jobs(q: Queuectl) -> None:
    """No parent-death signal is set in job shells any more (posix_spawn): the guard, in a
    session of its own, kills what the killed workers were running, background included."""
    fg, bg = marker(1), marker(2)
    q.enqueue(command=f"sleep {bg} & exec sleep {fg}")
    proc = q.start_workers()
    wait_until(lambda: processes_with_argument(bg), message="the job to start")
    (guard,) = wait_until(lambda: guard_pids(proc), message="the guard")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    wait_until(
        lambda: not processes_with_argument(fg) and not processes_with_argument(bg),
        timeout=10,
        message="the job's processes to die with their workers",
    )
    # With nothing left to watch and its supervisor gone, the guard leaves too.
    wait_until(lambda: not _alive(guard), timeout=10, message="the guard to exit")


def test_a_killed_guard_is_replaced(q: Queuectl) -> None:
    fg = marker(3)
    q.enqueue(command=f"exec sleep {fg}")
    proc = q.start_workers()
    wait_until(lambda: processes_with_argument(fg), message="the job to start")
    (guard,) = wait_until(lambda: guard_pids(proc), message="the guard")
    os.kill(guard, signal.SIGKILL)
    (new_guard,) = wait_until(
        lambda: [pid for pid in guard_pids(proc) if pid != guard], message="a new guard"
    )
    # The new guard knows the worker: killing the worker kills its job.
    (worker,) = worker_pids(proc)
    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: not processes_with_argument(fg), timeout=10, message="the job to die")
    assert _alive(new_guard)


# -- a bug in any task ends the worker safely -------------------------------------------


@pytest.mark.parametrize(
    "task", ["heartbeat", "rescue", "output", "retention", "schedules", "job-loop"]
)
def test_a_bug_in_a_worker_task_ends_the_worker_safely(q: Queuectl, task: str) -> None:
    """The worker stops claiming, kills its running job, records the attempt as failed
    with the error, prints the traceback and exits; the supervisor starts another."""
    q.config("lease-timeout", "2")  # rescue looks every lease-timeout / 4
    fg = marker(4)
    command = "sleep 1.5; echo done" if task == "job-loop" else f"echo started; exec sleep {fg}"
    job_id = q.enqueue(command=command, max_retries=3)
    q.env.update(
        QUEUECTL_FAULT=f"raise-in-{task}",
        QUEUECTL_FAULT_AFTER="1",
        QUEUECTL_RETENTION_INTERVAL="0.2",
    )
    proc = q.start_workers("-v")
    first_workers = set(wait_until(lambda: worker_pids(proc), message="the first worker"))
    job = q.wait_for_state(job_id, "failed", "dead", timeout=30)
    first = job["history"][0]
    assert " crashed in its " in first["error"]
    assert f"InjectedFault: injected fault in the {task} task" in first["error"]
    assert not processes_with_argument(fg), "the job must not outlive its crashed worker"
    # The attempt is recorded before the worker exits: give the supervisor time to see it go.
    wait_until(
        lambda: set(worker_pids(proc)) - first_workers,
        message="the supervisor to start another worker",
    )
    q.signal_group(proc, signal.SIGTERM)
    _, err = q.finish(proc)
    assert "Traceback (most recent call last)" in err
    assert "starting another" in err


# -- signals, counted by sender ----------------------------------------------------------


class Terminal:
    """`worker start` on a pseudo-terminal that is its controlling terminal, so that a
    typed Ctrl+C reaches the whole foreground group as the kernel delivers it."""

    def __init__(self, q: Queuectl, *args: str) -> None:
        master, slave = os.openpty()
        self.master = master
        self.proc = subprocess.Popen(
            ["setsid", "--ctty", *q.argv("worker", "start", "-v", *args)],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=q.env,
        )
        os.close(slave)
        self.shown = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.shown += chunk

    def ctrl_c(self) -> None:
        os.write(self.master, b"\x03")

    def finish(self, timeout: float = 30) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise AssertionError(f"worker start did not exit:\n{self.text()}") from None
        finally:
            self._reader.join(timeout=5)
            os.close(self.master)

    def text(self) -> str:
        return self.shown.decode(errors="replace")


@pytest.fixture
def setsid_ctty() -> None:
    probe = subprocess.run(["setsid", "--help"], capture_output=True, text=True, check=False)
    if "--ctty" not in probe.stdout:
        pytest.skip("this setsid cannot give a controlling terminal")


@pytest.mark.usefixtures("setsid_ctty")
def test_one_ctrl_c_on_a_terminal_is_one_graceful_request(q: Queuectl, tmp_path: Path) -> None:
    done = tmp_path / "done"
    job_id = q.enqueue(command=f"sleep 2; touch {done}")
    term = Terminal(q, "--count", "2")
    q.wait_for_state(job_id, "processing")
    term.ctrl_c()
    assert term.finish() == 0, term.text()
    assert done.exists()
    assert q.state(job_id) == "completed"


@pytest.mark.usefixtures("setsid_ctty")
def test_a_quick_second_ctrl_c_kills_the_running_jobs(q: Queuectl) -> None:
    fg = marker(5)
    job_id = q.enqueue(command=f"exec sleep {fg}", max_retries=1)
    term = Terminal(q, "--count", "2")
    q.wait_for_state(job_id, "processing")
    wait_until(lambda: processes_with_argument(fg), message="the job to start")
    term.ctrl_c()
    time.sleep(0.05)  # a person's double press: far inside any time window
    term.ctrl_c()
    assert term.finish() == 0, term.text()
    job = q.job(job_id)
    assert job["state"] == "dead"
    assert "told to stop now" in job["last_error"]
    assert not processes_with_argument(fg)


def test_sigterm_to_the_whole_group_is_one_request(q: Queuectl, tmp_path: Path) -> None:
    """A `kill` of the process group reaches each worker twice (directly and forwarded by
    the supervisor): still one graceful request."""
    done = tmp_path / "done"
    job_id = q.enqueue(command=f"sleep 2; touch {done}")
    proc = q.start_workers()
    q.wait_for_state(job_id, "processing")
    q.signal_group(proc, signal.SIGTERM)
    code, err = q.finish(proc)
    assert code == 0, err
    assert done.exists()
    assert q.state(job_id) == "completed"


def test_worker_stop_twice_never_kills_a_job(q: Queuectl, tmp_path: Path) -> None:
    done = tmp_path / "done"
    job_id = q.enqueue(command=f"sleep 2; touch {done}")
    proc = q.start_workers()
    q.wait_for_state(job_id, "processing")
    q.ok("worker", "stop")
    q.ok("worker", "stop")
    code, err = q.finish(proc)
    assert code == 0, err
    assert q.state(job_id) == "completed"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
