"""Operating the queue with real workers running: cancel, queue pause and limits, logs -f,
wait, the job's cwd and environment, and automatic retention."""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pytest

from queuectl.cli.commands.logs import ANSI_ESCAPE
from queuectl.store import open_store
from tests.conftest import Queuectl, parse_time, processes_with_argument, wait_until
from tests.storetools import DAY, backdate
from tests.terminal import run_on_terminal

pytestmark = [pytest.mark.slow, pytest.mark.in_process]

NEVER = "2099-01-01T00:00:00Z"  # a scheduled_at no test reaches: the job stays pending
_markers = itertools.count()


def has_opened_store(pid: int) -> bool:
    """Whether process `pid` holds a store open: a SQLite file or a server's socket."""
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for name in names:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if link.startswith("socket:") or link.endswith(".db"):
            return True
    return False


def marker() -> str:
    """A `sleep` argument no other process has, to find the job's processes by."""
    return f"29.{os.getpid()}{next(_markers):03d}"


def gated(gate: Path, then: str = "echo finished") -> str:
    """A command that runs until the file `gate` exists (at most a minute)."""
    return f"n=0; while [ ! -e {gate} ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done; {then}"


def enqueue_many(q: Queuectl, jobs: list[dict[str, Any]]) -> list[str]:
    return q.ok("enqueue", "-", input="".join(json.dumps(job) + "\n" for job in jobs)).split()


def wait_for_states(q: Queuectl, wanted: dict[str, str], timeout: float = 30.0) -> None:
    """Poll one `list` until every job of `wanted` is in the state given for it."""
    wait_until(
        lambda: wanted.items() <= {job["id"]: job["state"] for job in q.jobs()}.items(),
        timeout=timeout,
        interval=0.2,
        message=f"jobs to be {wanted}",
    )


def stop_gracefully(q: Queuectl, proc: subprocess.Popen[str]) -> None:
    q.signal_group(proc, signal.SIGTERM)
    code, err = q.finish(proc)
    assert code == 0, err


def max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals running at one instant (one ending as another starts: no overlap)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def run_interval(job: dict[str, Any]) -> tuple[datetime, datetime]:
    (attempt,) = job["history"]
    return parse_time(attempt["started_at"]), parse_time(attempt["finished_at"])


def cpu_share(pid: int, window: float) -> float:
    """The share of one CPU the process used over the next `window` seconds."""

    def cpu_seconds() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    used, started = cpu_seconds(), time.monotonic()
    time.sleep(window)  # the measurement itself, not a wait for something to happen
    return (cpu_seconds() - used) / (time.monotonic() - started)


class Lines:
    """The lines a background command prints, as they come, read by a thread."""

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def next(self, timeout: float) -> str | None:
        """The next line; None at the end of the output."""
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output for {timeout}s") from None

    def rest(self, timeout: float) -> list[str]:
        """Every line up to the end of the output."""
        deadline = time.monotonic() + timeout
        lines = []
        while (line := self.next(max(0.0, deadline - time.monotonic()))) is not None:
            lines.append(line)
        return lines


# -- cancel -----------------------------------------------------------------------------


def test_cancel_kills_a_running_job_at_once_and_the_worker_carries_on(q: Queuectl) -> None:
    sleeper = marker()
    q.enqueue(id="long", command=f"echo started; sleep {sleeper} & wait")
    proc = q.start_workers()
    q.wait_for_state("long", "processing")
    wait_until(lambda: processes_with_argument(sleeper), message="the job's sleep to start")

    assert q.ok("cancel", "long") == "Cancelled long.\n"
    asked = time.monotonic()
    wait_until(
        lambda: not processes_with_argument(sleeper),
        timeout=15,
        message="the cancelled job's processes to be killed",
    )
    assert time.monotonic() - asked < 5
    job = q.job("long")
    assert (job["state"], job["attempts"], job["locked_by"]) == ("cancelled", 1, None)
    assert (job["last_error"], job["exit_code"]) == ("cancelled while running", None)
    (attempt,) = job["history"]
    assert (attempt["error"], attempt["exit_code"]) == ("cancelled while running", None)
    assert parse_time(attempt["started_at"]) <= parse_time(attempt["finished_at"])
    (worker,) = q.active_workers()
    assert worker["current_job_id"] is None  # idle, not shown busy with a cancelled job

    after = q.enqueue(command="echo next")
    assert q.wait_for_state(after, "completed")["output"] == "next\n"
    assert q.job("long")["history"] == job["history"]  # it never ran again
    assert [w["id"] for w in q.active_workers()] == [worker["id"]]
    stop_gracefully(q, proc)


def test_cancel_from_another_host_is_noticed_within_a_heartbeat(q: Queuectl) -> None:
    q.config("lease-timeout", "3")  # a heartbeat every second
    sleeper = marker()
    job_id = q.enqueue(command=f"sleep {sleeper}")
    proc = q.start_workers()
    q.wait_for_state(job_id, "processing")
    wait_until(lambda: processes_with_argument(sleeper), message="the job's sleep to start")
    # What `cancel` on another host amounts to: a change in the store, and no signal, as
    # that host cannot reach this one's processes.
    store = open_store(q.target)
    try:
        assert store.cancel_job(job_id) is not None
    finally:
        store.close()
    asked = time.monotonic()
    wait_until(
        lambda: not processes_with_argument(sleeper),
        timeout=15,
        message="the worker to notice the cancel and kill the job",
    )
    assert time.monotonic() - asked < 8
    assert q.state(job_id) == "cancelled"
    stop_gracefully(q, proc)


# -- queues: pause and limit ---------------------------------------------------------------


def test_paused_queue_starts_nothing_until_resumed(q: Queuectl, tmp_path: Path) -> None:
    q.ok("queue", "pause", "slow")
    # Were the pause ignored, its priority would make this job run first.
    held = q.enqueue(command="echo held", queue="slow", priority=10)
    free = q.enqueue(command="echo free")
    proc = q.start_workers()
    q.wait_for_state(free, "completed")
    job = q.job(held)
    assert (job["state"], job["attempts"]) == ("pending", 0)
    # The idle worker waits for the paused job without spinning on claims that find nothing.
    (worker,) = q.active_workers()
    assert cpu_share(worker["pid"], 1.0) < 0.25
    q.ok("queue", "resume", "slow")
    assert q.wait_for_state(held, "completed")["output"] == "held\n"

    # Pausing lets the running job finish; nothing new of that queue starts.
    gate = tmp_path / "gate"
    running = q.enqueue(command=gated(gate), queue="slow", priority=5)
    waiting = q.enqueue(command="true", queue="slow")
    q.wait_for_state(running, "processing")
    q.ok("queue", "pause", "slow")
    gate.touch()
    assert q.wait_for_state(running, "completed")["output"] == "finished\n"
    other = q.enqueue(command="true")
    q.wait_for_state(other, "completed")
    job = q.job(waiting)
    assert (job["state"], job["attempts"]) == ("pending", 0)
    q.ok("queue", "resume", "slow")
    q.wait_for_state(waiting, "completed")
    stop_gracefully(q, proc)


def test_queue_limit_one_never_runs_two_at_once(q: Queuectl) -> None:
    q.ok("queue", "limit", "one", "1")
    limited = enqueue_many(q, [{"command": "sleep 1", "queue": "one"}] * 4)
    enqueue_many(q, [{"command": "sleep 1"}] * 2)  # another queue, free to run beside
    proc = q.start_workers("--count", "3")
    jobs = wait_until(
        lambda: (jobs := q.jobs()) and all(job["state"] == "completed" for job in jobs) and jobs,
        timeout=60,
        interval=0.5,
        message="every job to complete",
    )
    runs = {job["id"]: run_interval(q.job(job["id"])) for job in jobs}
    limited_runs = sorted(runs[job_id] for job_id in limited)
    assert max_overlap(limited_runs) == 1, [(s.isoformat(), e.isoformat()) for s, e in limited_runs]
    # The other workers were free meanwhile: the other queue's jobs ran beside the limited.
    assert max_overlap(list(runs.values())) >= 2
    stop_gracefully(q, proc)


# -- logs -f --------------------------------------------------------------------------------


def test_logs_follow_prints_lines_as_they_come_and_ends_with_the_job(
    q: Queuectl, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    job_id = q.enqueue(
        command=f"n=0; while [ ! -e {gate} ] && [ $n -lt 200 ]; do n=$((n+1)); echo line $n;"
        " sleep 0.3; done; echo done"
    )
    follower = q.run_background("logs", "-f", job_id)  # before any worker: it waits
    lines = Lines(follower.stdout)
    proc = q.start_workers()
    first = lines.next(timeout=30)
    assert first == "line 1\n"
    assert q.state(job_id) == "processing"  # the line came while the job runs
    gate.touch()
    printed = [first, *lines.rest(timeout=30)]
    assert follower.wait(timeout=30) == 0
    count = len(printed) - 1
    assert printed == [f"line {n}\n" for n in range(1, count + 1)] + ["done\n"]
    job = q.job(job_id)
    assert (job["state"], job["output"]) == ("completed", "".join(printed))
    stop_gracefully(q, proc)


def test_logs_follow_ends_when_the_jobs_worker_dies(q: Queuectl, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    job_id = q.enqueue(command=f"echo $$ > {pid_file}; echo before; exec sleep 30", max_retries=1)
    proc = q.start_workers()
    q.wait_for_state(job_id, "processing")
    follower = q.run_background("logs", "-f", job_id)
    lines = Lines(follower.stdout)
    assert lines.next(timeout=30) == "before\n"
    q.signal_group(proc, signal.SIGKILL)  # the worker vanishes: no heartbeat, no result
    proc.wait(timeout=10)
    os.killpg(int(pid_file.read_text()), signal.SIGKILL)  # the job's own session
    q.config("lease-timeout", "1")
    assert lines.rest(timeout=30) == []
    assert follower.wait(timeout=30) == 0
    job = q.job(job_id)
    assert job["state"] == "dead"
    assert "lost" in job["last_error"]


# -- wait ----------------------------------------------------------------------------------


def test_wait_returns_0_soon_after_the_last_job_completes(q: Queuectl, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    ids = enqueue_many(q, [{"command": gated(gate)}] * 3)
    waiter = q.run_background("wait")  # `queuectl enqueue - < jobs.jsonl && queuectl wait`
    proc = q.start_workers("--count", "3")
    wait_for_states(q, dict.fromkeys(ids, "processing"))
    # `wait` waits for the jobs unfinished when it starts: on a loaded machine its start-up
    # may outlast the jobs, so they end only once it has the store open.
    wait_until(lambda: has_opened_store(waiter.pid), timeout=30, message="`wait` to start")
    time.sleep(0.5)
    assert waiter.poll() is None
    gate.touch()
    out, err = waiter.communicate(timeout=60)
    returned = datetime.now(UTC)
    assert (waiter.returncode, out, err) == (0, "3 of 3 jobs finished, 0 dead or cancelled.\n", "")
    jobs = [q.job(job_id) for job_id in ids]
    assert {job["state"] for job in jobs} == {"completed"}
    last = max(parse_time(job["finished_at"]) for job in jobs)
    assert (returned - last).total_seconds() < 3
    stop_gracefully(q, proc)


def test_wait_exits_1_when_a_job_dies_or_is_cancelled(q: Queuectl, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    ok = q.enqueue(command="true")
    bad = q.enqueue(command="exit 1", max_retries=1)
    held = q.enqueue(command=gated(gate))
    proc = q.start_workers("--count", "2")
    q.wait_for_state(held, "processing")
    waiter = q.run_background("wait", ok, bad, held)
    q.wait_for_state(bad, "dead")
    assert waiter.poll() is None  # `held` still runs
    q.ok("cancel", held)
    out, err = waiter.communicate(timeout=30)
    assert (waiter.returncode, out, err) == (1, "3 of 3 jobs finished, 2 dead or cancelled.\n", "")
    stop_gracefully(q, proc)


def test_wait_shows_a_progress_bar_on_a_terminal(q: Queuectl) -> None:
    ids = enqueue_many(q, [{"command": "sleep 0.3"}] * 3)
    proc = q.start_workers()
    code, shown = run_on_terminal(q.argv("wait", *ids), q.env, timeout=60)
    assert code == 0, shown
    text = ANSI_ESCAPE.sub("", shown)
    assert "waiting" in text
    assert "3/3" in text
    assert text.rstrip().endswith("3 of 3 jobs finished, 0 dead or cancelled.")
    stop_gracefully(q, proc)


# -- where and how a job runs ---------------------------------------------------------------


def test_jobs_see_their_cwd_env_id_and_attempt(q: Queuectl, tmp_path: Path) -> None:
    q.config("backoff-max", "0")
    work, here = tmp_path / "work", tmp_path / "here"
    work.mkdir()
    here.mkdir()
    by_add = q.ok(
        "add",
        "--cwd",
        str(work),
        "--env",
        "GREETING=hello world",
        "--env",
        "QUEUECTL_JOB_ID=spoofed",  # the job's own id wins
        "--",
        'echo "$GREETING|$QUEUECTL_JOB_ID|$QUEUECTL_ATTEMPT"; pwd -P',
    ).strip()
    by_here = subprocess.run(
        q.argv("add", "--here", "--", "pwd -P"),
        cwd=here,
        env=q.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    gone = tmp_path / "gone"
    enqueue_many(
        q,
        [
            {
                "id": "by-json",
                "command": 'echo "$MODE $N"; pwd -P',
                "cwd": str(work),
                "env": {"MODE": "x", "N": "3"},
            },
            {
                "id": "retried",
                "command": 'echo "attempt $QUEUECTL_ATTEMPT"; [ "$QUEUECTL_ATTEMPT" -ge 2 ]',
                "max_retries": 3,
            },
            {"id": "missing", "command": "echo never", "cwd": str(gone), "max_retries": 1},
            {"id": "plain", "command": 'echo "${GREETING-unset}"; pwd -P'},
        ],
    )
    code, err = q.finish(q.start_workers("--burst"))
    assert code == 0, err

    jobs = {job["id"]: job for job in q.jobs()}
    real = os.path.realpath
    assert jobs[by_add]["output"] == f"hello world|{by_add}|1\n{real(work)}\n"
    assert jobs["by-json"]["output"] == f"x 3\n{real(work)}\n"
    assert jobs[by_here]["output"] == f"{real(here)}\n"
    assert (jobs["retried"]["state"], jobs["retried"]["output"]) == ("completed", "attempt 2\n")
    assert [attempt["exit_code"] for attempt in q.history("retried")] == [1, 0]
    missing = jobs["missing"]
    assert (missing["state"], missing["exit_code"], missing["output"]) == ("dead", None, "")
    assert missing["last_error"] == f"could not start: working directory '{gone}' does not exist"
    assert jobs["plain"]["output"] == f"unset\n{real(os.getcwd())}\n"  # the worker's own


# -- retention -----------------------------------------------------------------------------


def test_retention_deletes_old_finished_jobs_automatically(q: Queuectl) -> None:
    q.env["QUEUECTL_RETENTION_INTERVAL"] = "0.5"  # instead of a step a minute
    q.config("retention-completed", "1d")  # retention-dead stays at its default, 30d
    enqueue_many(
        q,
        [
            {"id": "completed-old", "command": "true"},
            {"id": "completed-new", "command": "true"},
            {"id": "dead-old", "command": "exit 1", "max_retries": 1},
            {"id": "dead-2d", "command": "exit 1", "max_retries": 1},
            {"id": "cancelled-old", "command": "true", "scheduled_at": NEVER},
            {"id": "pending-old", "command": "true", "scheduled_at": NEVER},
        ],
    )
    q.ok("cancel", "cancelled-old")
    code, err = q.finish(q.start_workers("--burst"))
    assert code == 0, err
    for job_id, days in [
        ("completed-old", 2),
        ("dead-2d", 2),
        ("dead-old", 31),
        ("cancelled-old", 31),
        ("pending-old", 31),
    ]:
        backdate(q.target, job_id, days * DAY)

    proc = q.start_workers()
    old = {"completed-old", "dead-old", "cancelled-old"}

    def pruned() -> set[str] | None:
        ids = {job["id"] for job in q.jobs()}
        return ids if not ids & old else None

    left = wait_until(pruned, timeout=30, interval=0.3, message="the worker to apply retention")
    assert left == {"completed-new", "dead-2d", "pending-old"}
    store = open_store(q.target)
    try:
        assert store.list_attempts("dead-old") == []  # the history went with the job
        assert len(store.list_attempts("dead-2d")) == 1
    finally:
        store.close()
    stop_gracefully(q, proc)
