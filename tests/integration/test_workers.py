"""Real worker processes against a real store: the issue scenarios end to end (SPEC 2.2, 2.3)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    WITH_PGBOUNCER,
    Queuectl,
    parse_time,
    processes_with_argument,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.in_process]


def seconds_between(earlier: str, later: str) -> float:
    return (parse_time(later) - parse_time(earlier)).total_seconds()


def gated(gate: Path, then: str = "echo finished") -> str:
    """A command that runs until the file `gate` exists: a job the test finishes at will.
    It gives up after a minute, so that a failed test leaves no endless loop behind."""
    return f"n=0; while [ ! -e {gate} ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done; {then}"


def enqueue_many(q: Queuectl, jobs: list[dict[str, Any]]) -> list[str]:
    return q.ok("enqueue", "-", input="".join(json.dumps(job) + "\n" for job in jobs)).split()


def max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals running at one instant (one ending as another starts: no overlap)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def stop_gracefully(q: Queuectl, proc: subprocess.Popen[str]) -> None:
    q.signal_group(proc, signal.SIGTERM)
    code, err = q.finish(proc)
    assert code == 0, err


# -- a) a basic job ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", WITH_PGBOUNCER)
def test_worker_runs_a_job_and_show_has_its_output(q: Queuectl) -> None:
    job_id = q.enqueue(command="echo hello")
    proc = q.start_workers()
    job = q.wait_for_state(job_id, "completed")
    assert job["output"] == "hello\n"
    assert (job["exit_code"], job["attempts"], job["last_error"]) == (0, 1, None)
    assert (job["locked_by"], job["locked_at"]) == (None, None)
    assert parse_time(job["created_at"]) <= parse_time(job["started_at"])
    assert parse_time(job["started_at"]) <= parse_time(job["finished_at"])
    assert [attempt["attempt"] for attempt in job["history"]] == [1]
    assert q.ok("show", job_id).rstrip().endswith("hello")
    stop_gracefully(q, proc)


def test_job_sees_its_id_the_workers_environment_and_folder(q: Queuectl, tmp_path: Path) -> None:
    q.env["QUEUECTL_TEST_MARK"] = "from-the-worker"
    job_id = q.enqueue(command='echo "$QUEUECTL_JOB_ID $QUEUECTL_TEST_MARK"; pwd -P')
    code, err = q.finish(q.start_workers("--burst"))
    assert code == 0, err
    job = q.job(job_id)
    assert job["output"] == f"{job_id} from-the-worker\n{os.path.realpath(os.getcwd())}\n"


# -- b) retries with exponential backoff, the DLQ, dlq retry ---------------------------


@pytest.mark.parametrize("backend", WITH_PGBOUNCER)
def test_failing_job_backs_off_2s_then_4s_then_is_dead_and_retried(q: Queuectl) -> None:
    job_id = q.enqueue(command="echo attempt $QUEUECTL_ATTEMPT; exit 1", max_retries=3)
    proc = q.start_workers()
    failed = q.wait_for_state(job_id, "failed")
    assert failed["attempts"] == 1
    assert failed["last_error"] == "exited with code 1"
    assert 1.9 <= seconds_between(failed["finished_at"], failed["run_at"]) <= 2.1
    dead = q.wait_for_state(job_id, "dead", timeout=40)
    history = dead["history"]
    assert [attempt["attempt"] for attempt in history] == [1, 2, 3]
    assert [attempt["exit_code"] for attempt in history] == [1, 1, 1]
    assert all(attempt["error"] == "exited with code 1" for attempt in history)
    assert 1.5 <= seconds_between(history[0]["finished_at"], history[1]["started_at"]) <= 3.5
    assert 3.5 <= seconds_between(history[1]["finished_at"], history[2]["started_at"]) <= 6.0
    assert (dead["attempts"], dead["exit_code"], dead["output"]) == (3, 1, "attempt 3\n")
    assert [job["id"] for job in q.json("dlq", "list")] == [job_id]

    q.config("backoff-max", "0")  # the second round need not wait
    retried = json.loads(q.ok("dlq", "retry", job_id, "--json"))
    assert (retried["state"], retried["attempts"]) == ("pending", 0)
    again = wait_until(
        lambda: (job := q.job(job_id))["state"] == "dead" and len(job["history"]) == 6 and job,
        timeout=30,
        message="the retried job to run three more times",
    )
    assert [attempt["attempt"] for attempt in again["history"]] == [1, 2, 3, 1, 2, 3]
    stop_gracefully(q, proc)


def test_max_retries_zero_still_runs_once(q: Queuectl) -> None:
    job_id = q.enqueue(command="exit 4", max_retries=0)
    code, err = q.finish(q.start_workers("--burst"))
    assert code == 0, err
    job = q.job(job_id)
    assert (job["state"], job["attempts"], job["exit_code"]) == ("dead", 1, 4)


# -- c) N workers run N jobs at a time -------------------------------------------------


def test_three_workers_run_ten_jobs_three_at_a_time(q: Queuectl) -> None:
    ids = enqueue_many(q, [{"command": "sleep 1.5"} for _ in range(10)])
    proc = q.start_workers("--count", "3", "--burst")
    code, err = q.finish(proc, timeout=90)
    assert code == 0, err
    jobs = [q.job(job_id) for job_id in ids]
    assert all(job["state"] == "completed" for job in jobs)
    runs = [(parse_time(job["started_at"]), parse_time(job["finished_at"])) for job in jobs]
    assert max_overlap(runs) == 3
    assert len({job["history"][0]["worker_id"] for job in jobs}) == 3


# -- d) Ctrl+C: SIGINT to the whole process group --------------------------------------


def test_sigint_to_the_process_group_stops_gracefully(q: Queuectl, tmp_path: Path) -> None:
    q.config("lease-timeout", "3")  # heartbeats (and so the "stopping" status) every 1 s
    gate = tmp_path / "gate"
    running = enqueue_many(q, [{"command": gated(gate)} for _ in range(2)])
    waiting = enqueue_many(q, [{"command": "true"} for _ in range(3)])
    proc = q.start_workers("--count", "2")
    for job_id in running:
        q.wait_for_state(job_id, "processing")

    q.signal_group(proc, signal.SIGINT)
    wait_until(
        lambda: [w["status"] for w in q.active_workers()] == ["stopping", "stopping"],
        timeout=20,
        message="both workers to report that they are stopping",
    )
    assert proc.poll() is None  # still letting the jobs run
    gate.touch()
    code, err = q.finish(proc)
    assert code == 0, err

    for job_id in running:
        job = q.job(job_id)
        assert (job["state"], job["exit_code"], job["output"]) == ("completed", 0, "finished\n")
        assert job["last_error"] is None
    for job_id in waiting:
        job = q.job(job_id)
        assert (job["state"], job["attempts"], job["history"]) == ("pending", 0, [])
    assert q.job_count() == 5
    assert q.active_workers() == []


def test_second_signal_kills_the_running_job(q: Queuectl, tmp_path: Path) -> None:
    q.config("lease-timeout", "3")
    gate = tmp_path / "gate"
    job_id = q.enqueue(command=gated(gate), max_retries=1)
    proc = q.start_workers()
    q.wait_for_state(job_id, "processing")
    os.kill(proc.pid, signal.SIGTERM)
    first = time.monotonic()
    wait_until(lambda: [w["status"] for w in q.active_workers()] == ["stopping"], timeout=20)
    # Signals closer together than the worker's one-second window count as one request
    # (a Ctrl+C reaches every process of the group): this one must come later.
    wait_until(lambda: time.monotonic() - first > 1.5, timeout=5, message="a later signal")
    os.kill(proc.pid, signal.SIGTERM)
    code, err = q.finish(proc)
    assert code == 0, err
    job = q.job(job_id)
    assert job["state"] == "dead"
    assert "told to stop now" in job["last_error"]
    assert not gate.exists()


def test_workers_stop_gracefully_when_their_supervisor_dies(q: Queuectl, tmp_path: Path) -> None:
    q.config("lease-timeout", "3")
    gate = tmp_path / "gate"
    job_id = q.enqueue(command=gated(gate))
    proc = q.start_workers()
    q.wait_for_state(job_id, "processing")
    os.kill(proc.pid, signal.SIGKILL)  # the supervisor only: its worker lives on, told to stop
    proc.wait(timeout=10)
    wait_until(lambda: [w["status"] for w in q.active_workers()] == ["stopping"], timeout=20)
    gate.touch()
    job = q.wait_for_state(job_id, "completed")
    assert job["output"] == "finished\n"
    wait_until(lambda: q.active_workers() == [], timeout=20, message="the orphaned worker to stop")


def test_live_worker_is_never_taken_for_a_dead_one(q: Queuectl) -> None:
    q.config("lease-timeout", "1")  # heartbeats every 1/3 s; every command rescues stale jobs
    job_id = q.enqueue(command="sleep 2.5; echo slept")
    proc = q.start_workers()
    q.wait_for_state(job_id, "processing")

    def done() -> dict[str, Any] | None:
        q.ok("status")  # a rescue pass, over and over, while the job runs
        job = q.job(job_id)
        return job if job["state"] != "processing" else None

    job = wait_until(done, timeout=30, interval=0.2, message="the job to finish")
    assert (job["state"], job["attempts"], job["output"]) == ("completed", 1, "slept\n")
    assert [attempt["error"] for attempt in job["history"]] == [None]
    stop_gracefully(q, proc)


def test_idle_worker_picks_up_a_new_job_quickly(q: Queuectl) -> None:
    q.config("poll-interval", "30")  # an upper bound, not the latency (SPEC 2.3)
    proc = q.start_workers()
    wait_until(q.active_workers, timeout=20, message="the worker to register")
    job_ids = []
    for _ in range(3):
        job_ids.append(q.enqueue(command="true"))
        job = q.wait_for_state(job_ids[-1], "completed", timeout=20)
        assert seconds_between(job["created_at"], job["started_at"]) < 2.5
    stop_gracefully(q, proc)


# -- e) a command that does not exist ------------------------------------------------------


def test_missing_command_exits_127_is_retried_and_dead(q: Queuectl) -> None:
    q.config("backoff-max", "0")
    job_id = q.enqueue(command="nosuchcommand_xyz --flag", max_retries=2)
    code, err = q.finish(q.start_workers("--burst"))
    assert code == 0, err
    job = q.job(job_id)
    assert job["state"] == "dead"
    assert [attempt["exit_code"] for attempt in job["history"]] == [127, 127]
    assert job["exit_code"] == 127
    assert "127" in job["last_error"]
    assert "not found" in job["last_error"]
    assert "nosuchcommand_xyz" in job["output"]
    assert [dead["id"] for dead in q.json("dlq", "list")] == [job_id]


# -- f) timeout kills the whole process group --------------------------------------------


def test_timeout_kills_the_job_and_its_background_processes(q: Queuectl) -> None:
    marker = f"31.{os.getpid() % 1000:03d}7"  # a `sleep` argument no other process has
    job_id = q.enqueue(command=f"echo started; sleep {marker} & wait", timeout=1, max_retries=1)
    proc = q.start_workers()
    job = q.wait_for_state(job_id, "dead")
    assert "timed out" in job["last_error"]
    assert job["exit_code"] is None
    assert job["output"] == "started\n"
    (attempt,) = job["history"]
    assert attempt["error"] == job["last_error"]
    assert 0.9 <= seconds_between(attempt["started_at"], attempt["finished_at"]) <= 6
    assert processes_with_argument(marker) == []
    stop_gracefully(q, proc)


def test_background_process_of_a_finished_job_does_not_linger(q: Queuectl) -> None:
    marker = f"32.{os.getpid() % 1000:03d}7"
    job_id = q.enqueue(command=f"sleep {marker} & echo parent done")
    code, err = q.finish(q.start_workers("--burst"))
    assert code == 0, err
    job = q.job(job_id)
    assert (job["state"], job["output"]) == ("completed", "parent done\n")
    assert processes_with_argument(marker) == []


# -- g) delayed jobs ---------------------------------------------------------------------


def test_delayed_jobs_run_at_their_time_not_before(q: Queuectl) -> None:
    now = q.enqueue(command="true")
    proc = q.start_workers()
    q.wait_for_state(now, "completed")
    by_delay = q.ok("add", "--delay", "3s", "--", "true").strip()
    soon = (datetime.now(UTC) + timedelta(seconds=3.5)).isoformat()
    by_time = q.enqueue(command="true", scheduled_at=soon)
    # A running, idle worker: the delayed jobs wait for their time (late >= 0), then run.
    for job_id in (by_delay, by_time):
        job = q.wait_for_state(job_id, "completed", timeout=20)
        late = seconds_between(job["scheduled_at"], job["started_at"])
        assert 0 <= late <= 3, late
    stop_gracefully(q, proc)


# -- h) claim order and queues ------------------------------------------------------------


def test_one_worker_runs_jobs_by_priority_then_enqueue_order(q: Queuectl, tmp_path: Path) -> None:
    # Each job writes its id as it runs: two quick jobs may start within one millisecond,
    # the resolution of started_at, so the times alone cannot tell their order.
    ran = tmp_path / "ran"
    priorities = {"low": 0, "high": 10, "mid": 5, "negative": -1, "high2": 10, "low2": 0}
    for job_id, priority in priorities.items():
        q.enqueue(id=job_id, command=f"echo {job_id} >> {ran}", priority=priority)
    # Enqueued last, but due since long ago: earliest run_at goes first among equals.
    q.enqueue(id="overdue", command=f"echo overdue >> {ran}", scheduled_at="2020-01-01T00:00:00Z")
    code, err = q.finish(q.start_workers("--burst"))
    assert code == 0, err
    assert {job["state"] for job in q.jobs()} == {"completed"}
    order = ran.read_text().split()
    assert order == ["high", "high2", "mid", "overdue", "low", "low2", "negative"]


def test_workers_serve_only_their_queues(q: Queuectl) -> None:
    for queue in ("mail", "reports", "default", "other"):
        q.enqueue(id=f"in-{queue}", command="true", queue=queue)
    code, err = q.finish(q.start_workers("--burst", "--queue", "mail", "--queue", "reports"))
    assert code == 0, err
    states = {job["id"]: job["state"] for job in q.jobs()}
    assert states == {
        "in-mail": "completed",
        "in-reports": "completed",
        "in-default": "pending",
        "in-other": "pending",
    }
    code, err = q.finish(q.start_workers("--burst", "--queue", "other,default"))
    assert code == 0, err
    assert {job["state"] for job in q.jobs()} == {"completed"}


def test_worker_without_queue_serves_every_queue(q: Queuectl) -> None:
    for queue in ("a", "b", "default"):
        q.enqueue(command="true", queue=queue)
    code, err = q.finish(q.start_workers("--burst"))
    assert code == 0, err
    assert [job["state"] for job in q.jobs()] == ["completed"] * 3


# -- i) burst mode -----------------------------------------------------------------------


@pytest.mark.parametrize("backend", WITH_PGBOUNCER)
def test_burst_exits_once_nothing_is_runnable(q: Queuectl) -> None:
    q.config("backoff-base", "100")
    later = q.enqueue(command="true", scheduled_at="2099-01-01T00:00:00Z")
    retrying = q.enqueue(command="exit 1", max_retries=5)
    done = q.enqueue(command="true")
    started = time.monotonic()
    code, err = q.finish(q.start_workers("--burst", "--count", "2"))
    assert code == 0, err
    assert time.monotonic() - started < 20
    assert q.state(done) == "completed"
    assert q.state(later) == "pending"
    job = q.job(retrying)
    assert (job["state"], job["attempts"]) == ("failed", 1)  # its retry is 100 s away
    assert q.active_workers() == []


def test_burst_on_an_empty_store_exits_at_once(q: Queuectl) -> None:
    code, err = q.finish(q.start_workers("--burst"), timeout=20)
    assert (code, err) == (0, "")


# -- j) a worker that dies: its job is rescued -----------------------------------------


def test_jobs_of_killed_workers_are_rescued_as_failed_attempts(q: Queuectl, tmp_path: Path) -> None:
    pid_files = {"retried": tmp_path / "retried.pid", "last": tmp_path / "last.pid"}
    q.enqueue(id="retried", command=f"echo $$ > {pid_files['retried']}; exec sleep 30")
    q.enqueue(id="last", command=f"echo $$ > {pid_files['last']}; exec sleep 30", max_retries=1)
    proc = q.start_workers("--count", "2")
    holders = {job_id: q.wait_for_state(job_id, "processing")["locked_by"] for job_id in pid_files}
    assert len(set(holders.values())) == 2
    wait_until(
        lambda: all(f.exists() and f.read_text().strip() for f in pid_files.values()),
        message="the jobs to write their pids",
    )
    q.signal_group(proc, signal.SIGKILL)  # supervisor and workers: no goodbye, no heartbeat
    proc.wait(timeout=10)
    for pid_file in pid_files.values():
        # A job runs in a session of its own, so it outlives its worker: end it here.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
    q.config("lease-timeout", "1")  # the lease in force when someone looks is what counts

    def rescued() -> list[dict[str, Any]] | None:
        q.ok("status")  # any command rescues once the lease (1 s) has run out
        jobs = q.jobs()
        return jobs if all(job["state"] != "processing" for job in jobs) else None

    jobs = {job["id"]: job for job in wait_until(rescued, timeout=20, interval=0.3)}
    assert (jobs["retried"]["state"], jobs["last"]["state"]) == ("failed", "dead")
    for job_id, job in jobs.items():
        assert (job["attempts"], job["locked_by"], job["exit_code"]) == (1, None, None)
        assert holders[job_id] in job["last_error"]
        assert "lost" in job["last_error"]
        (attempt,) = q.history(job_id)
        assert attempt["worker_id"] == holders[job_id]
        assert attempt["error"] == job["last_error"]
        assert attempt["exit_code"] is None
        assert parse_time(attempt["started_at"]) < parse_time(attempt["finished_at"])
    assert q.json("status")["jobs"]["processing"] == 0
    assert [job["id"] for job in q.json("dlq", "list")] == ["last"]


def test_worker_start_rescues_a_dead_workers_job_and_runs_it(q: Queuectl, tmp_path: Path) -> None:
    q.config("lease-timeout", "1")
    q.config("backoff-max", "0")
    first_run = tmp_path / "first-run"
    job_id = q.enqueue(
        command=f"if [ -e {first_run} ]; then echo second run; else echo $$ > {first_run};"
        " exec sleep 30; fi",
    )
    proc = q.start_workers()
    q.wait_for_state(job_id, "processing")
    wait_until(lambda: first_run.exists() and first_run.read_text().strip(), message="job pid")
    q.signal_group(proc, signal.SIGKILL)
    proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(int(first_run.read_text()), signal.SIGKILL)
    replacement = q.start_workers()
    job = q.wait_for_state(job_id, "completed", timeout=30)
    assert job["output"] == "second run\n"
    assert [attempt["exit_code"] for attempt in job["history"]] == [None, 0]
    assert "lost" in job["history"][0]["error"]
    stop_gracefully(q, replacement)


# -- k) worker stop ----------------------------------------------------------------------


def test_worker_stop_lets_running_jobs_finish(q: Queuectl, tmp_path: Path) -> None:
    q.config("lease-timeout", "3")
    gate = tmp_path / "gate"
    running = enqueue_many(q, [{"command": gated(gate)} for _ in range(2)])
    waiting = q.enqueue(command="true")
    proc = q.start_workers("--count", "2")
    for job_id in running:
        q.wait_for_state(job_id, "processing")
    assert q.ok("worker", "stop") == "Asked 2 workers to stop.\n"
    wait_until(
        lambda: [w["status"] for w in q.active_workers()] == ["stopping", "stopping"],
        timeout=20,
        message="both workers to report that they are stopping",
    )
    assert proc.poll() is None
    gate.touch()
    code, err = q.finish(proc)
    assert code == 0, err
    assert [q.state(job_id) for job_id in running] == ["completed", "completed"]
    assert q.state(waiting) == "pending"
    assert q.ok("worker", "stop") == "Asked 0 workers to stop.\n"


def test_worker_stop_wait_returns_once_workers_are_gone(q: Queuectl, tmp_path: Path) -> None:
    q.config("lease-timeout", "3")
    gate = tmp_path / "gate"
    job_id = q.enqueue(command=gated(gate))
    proc = q.start_workers()
    q.wait_for_state(job_id, "processing")
    stopper = q.run_background("worker", "stop", "--wait")
    wait_until(
        lambda: [w["status"] for w in q.active_workers()] == ["stopping"],
        timeout=20,
        message="the worker to report that it is stopping",
    )
    assert stopper.poll() is None  # still waiting: the job runs on
    gate.touch()
    out, err = stopper.communicate(timeout=30)
    assert stopper.returncode == 0, err
    assert out.startswith("Asked 1 worker to stop.\n")
    assert q.active_workers() == []
    assert q.state(job_id) == "completed"
    code, err = q.finish(proc)
    assert code == 0, err


# -- l) many workers, many jobs: each runs exactly once -------------------------------


def test_four_workers_run_each_of_200_jobs_exactly_once(q: Queuectl, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    ids = enqueue_many(q, [{"command": f'echo "$QUEUECTL_JOB_ID" >> {ledger}'}] * 200)
    code, err = q.finish(q.start_workers("--count", "4", "--burst"), timeout=90)
    assert code == 0, err
    assert sorted(ledger.read_text().split()) == sorted(ids)
    jobs = q.jobs()
    assert len(jobs) == 200
    assert {(job["state"], job["attempts"]) for job in jobs} == {("completed", 1)}
    assert q.json("status")["jobs"]["completed"] == 200


# -- m) output capture and stdin -----------------------------------------------------------


def test_output_is_captured_without_deadlock_and_cut_to_the_tail(q: Queuectl) -> None:
    q.config("output-limit", "1000")
    big = q.enqueue(command="head -c 1048576 /dev/zero | tr '\\0' a; printf END")
    both = q.enqueue(command="echo out; echo err >&2; exit 2", max_retries=0)
    binary = q.enqueue(command="printf 'caf\\351 ok'")
    stdin = q.enqueue(command="cat; echo after cat", timeout=20)
    started = time.monotonic()
    code, err = q.finish(q.start_workers("--burst"))
    assert code == 0, err
    assert time.monotonic() - started < 20  # `cat` read /dev/null, not a terminal or pipe
    job = q.job(big)
    assert job["state"] == "completed"
    assert job["output"] == "a" * 997 + "END"
    job = q.job(both)
    assert (job["state"], job["exit_code"]) == ("dead", 2)
    assert job["output"] == "out\nerr\n"
    assert q.job(binary)["output"] == "caf\ufffd ok"
    job = q.job(stdin)
    assert (job["state"], job["output"]) == ("completed", "after cat\n")


def test_output_limit_default_keeps_64_kib(q: Queuectl) -> None:
    job_id = q.enqueue(command="head -c 1048576 /dev/zero | tr '\\0' b")
    code, err = q.finish(q.start_workers("--burst"))
    assert code == 0, err
    assert q.job(job_id)["output"] == "b" * 65536
