"""Workers on several hosts sharing one PostgreSQL database (SPEC 2.2, 2.3; multi-host issue).

A "host" here is a UTS namespace with a hostname of its own (`unshare --uts`): its workers
register that name, and `worker stop` there signals only processes registered under it, so
the store is the only way one host's commands reach another's workers. The hosts share this
machine's processes and network, as hosts on one network share a database server.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from queuectl.core.models import Job, JobState
from queuectl.store import open_store
from queuectl.store.base import JobFilter, Store
from tests import pgbouncer, pgtools
from tests.conftest import Queuectl, processes_with_argument, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.in_process]

# Run "$@" on the simulated host named "$1"; exec keeps the pid, so signals reach queuectl.
ON_HOST = 'hostname "$1" && shift && exec "$@"'
# A job's trace: one short line per run, appended in one write (O_APPEND), so concurrent
# runs on any host never interleave.
LEDGER_LINE = 'echo "$QUEUECTL_JOB_ID $QUEUECTL_ATTEMPT $(hostname)" >> {ledger}'
FINISHED = (JobState.COMPLETED, JobState.FAILED, JobState.DEAD, JobState.CANCELLED)


class Host(Queuectl):
    """The `queuectl` command on a simulated host: a UTS namespace called `name`."""

    def __init__(self, target: str, home: Path, name: str) -> None:
        super().__init__(target, home)
        self.name = name

    def argv(self, *args: str) -> list[str]:
        return ["unshare", "--uts", "/bin/sh", "-c", ON_HOST, "sh", self.name, *super().argv(*args)]


def _uts_namespaces_unavailable() -> str | None:
    """Why a simulated host cannot be made here (None: it can)."""
    if shutil.which("unshare") is None:
        return "no `unshare` command (util-linux)"
    probe = ["unshare", "--uts", "/bin/sh", "-c", ON_HOST, "sh", "host-probe", "true"]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if result.returncode != 0:
        return f"`unshare --uts` failed (needs root): {result.stderr.strip()[:200]}"
    return None


@pytest.fixture(scope="module")
def uts_namespaces() -> None:
    require_uts_namespaces()


def require_uts_namespaces() -> None:
    """Skip without UTS namespaces; in CI that is a failure, never a silent skip."""
    reason = _uts_namespaces_unavailable()
    if reason is not None:
        message = f"simulated hosts need UTS namespaces: {reason}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture
def route() -> str:
    """How the hosts reach the database: "direct", or "pgbouncer" (transaction pooling)."""
    return "direct"


@pytest.fixture
def pg_url(route: str, request: pytest.FixtureRequest) -> Iterator[str]:
    if route == "pgbouncer":
        with pgbouncer.pooled_database(request.getfixturevalue("pgbouncer")) as url:
            yield url
    else:
        with pgtools.fresh_database() as url:
            yield url


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    """The shared database read directly: unlike `status`, `list` or `show`, these reads
    rescue nothing, so a test sees what the workers did on their own."""
    opened = open_store(pg_url)
    yield opened
    opened.close()


@pytest.fixture
def admin(pg_url: str, tmp_path: Path) -> Iterator[Queuectl]:
    """`queuectl` on this machine, which runs no workers: enqueue and look."""
    handle = Queuectl(pg_url, tmp_path / "admin")
    yield handle
    handle.stop_all()


@pytest.fixture
def hosts(uts_namespaces: None, pg_url: str, tmp_path: Path) -> Iterator[dict[str, Host]]:
    made = {name: Host(pg_url, tmp_path / name, name) for name in ("host-a", "host-b", "host-c")}
    yield made
    for host in made.values():
        host.stop_all()


def enqueue_many(q: Queuectl, jobs: list[dict[str, Any]]) -> list[str]:
    return q.ok("enqueue", "-", input="".join(json.dumps(job) + "\n" for job in jobs)).split()


def gated(gate: Path) -> str:
    """A job that runs until the file `gate` exists (giving up after a minute)."""
    return f"n=0; while [ ! -e {gate} ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done"


def ledger_entries(ledger: Path) -> list[tuple[str, int, str]]:
    """(job id, attempt, host) of every run, in the order they wrote."""
    entries = []
    for line in ledger.read_text().splitlines():
        job_id, attempt, host = line.split()
        entries.append((job_id, int(attempt), host))
    return entries


def jobs_by_id(store: Store) -> dict[str, Job]:
    return {job.id: job for job in store.list_jobs(JobFilter(limit=0))}


def all_finished(store: Store, count: int) -> bool:
    counts = store.count_jobs_by_state()
    return sum(counts[state] for state in FINISHED) == count


def stop_by_signal(host: Host, proc: subprocess.Popen[str]) -> None:
    host.signal_group(proc, signal.SIGTERM)
    code, err = host.finish(proc)
    assert code == 0, err


# -- a) two hosts drain one queue, each job exactly once ----------------------------------


def test_two_hosts_drain_a_queue_running_each_job_exactly_once(
    hosts: dict[str, Host], admin: Queuectl, store: Store, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    procs = {name: hosts[name].start_workers("--count", "2") for name in ("host-a", "host-b")}

    def four_workers() -> list[dict[str, Any]] | None:
        workers: list[dict[str, Any]] = admin.active_workers()
        return workers if len(workers) == 4 else None

    workers = wait_until(four_workers, timeout=30, message="two workers on each host")
    assert sorted(worker["host"] for worker in workers) == ["host-a", "host-a", "host-b", "host-b"]
    host_of = {worker["id"]: worker["host"] for worker in workers}

    ids = enqueue_many(admin, [{"command": LEDGER_LINE.format(ledger=ledger)}] * 300)
    wait_until(lambda: all_finished(store, 300), timeout=120, interval=0.2, message="the drain")
    for name, proc in procs.items():
        stop_by_signal(hosts[name], proc)

    entries = ledger_entries(ledger)
    runs = collections.Counter(job_id for job_id, _, _ in entries)
    assert sorted(runs) == sorted(ids)
    assert set(runs.values()) == {1}, [job_id for job_id, n in runs.items() if n > 1]
    assert {attempt for _, attempt, _ in entries} == {1}
    assert {host for _, _, host in entries} == {"host-a", "host-b"}  # both hosts did work
    jobs = jobs_by_id(store)
    assert {(job.state, job.attempts) for job in jobs.values()} == {(JobState.COMPLETED, 1)}
    for job_id, _, host in entries:
        (attempt,) = store.list_attempts(job_id)
        # Each run is recorded under the worker that ran it, on the host that ran it.
        assert host_of[attempt.worker_id] == host
        assert (attempt.exit_code, attempt.error) == (0, None)


# -- b) `worker stop` on one host stops the workers of the others --------------------------


@pytest.mark.parametrize("route", ["direct", "pgbouncer"])
def test_worker_stop_on_a_third_host_stops_both_hosts_gracefully(
    hosts: dict[str, Host], admin: Queuectl, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    # Host a serves queue a and gets two gated jobs; host b serves queue b and gets one, so
    # one of its workers is idle when the stop request comes.
    running = enqueue_many(
        admin,
        [{"command": gated(gate), "queue": "a"}] * 2 + [{"command": gated(gate), "queue": "b"}],
    )
    host_a = hosts["host-a"].start_workers("--count", "2", "--queue", "a")
    host_b = hosts["host-b"].start_workers("--count", "2", "--queue", "b")
    for job_id in running:
        admin.wait_for_state(job_id, "processing")
    wait_until(lambda: len(admin.active_workers()) == 4, timeout=30, message="four workers")
    waiting = admin.enqueue(command="true", queue="a")  # runnable, but host a is busy

    stop = hosts["host-c"].run("worker", "stop")
    assert (stop.returncode, stop.stdout) == (0, "Asked 4 workers to stop.\n"), stop.stderr

    # Through the store, within a heartbeat or two: the idle worker exits at once, the busy
    # ones say they are stopping and let their jobs run on.
    def workers() -> list[tuple[str, str]]:
        return sorted((worker["host"], worker["status"]) for worker in admin.active_workers())

    wait_until(
        lambda: workers() == [("host-a", "stopping")] * 2 + [("host-b", "stopping")],
        timeout=15,
        interval=0.2,
        message="the workers on host-a and host-b to notice the stop request",
    )
    assert host_a.poll() is None
    assert host_b.poll() is None

    gate.touch()
    for name, proc in (("host-a", host_a), ("host-b", host_b)):
        code, err = hosts[name].finish(proc, timeout=30)
        assert code == 0, f"{name}: {err}"
    for job_id in running:
        job = admin.job(job_id)
        assert (job["state"], job["attempts"], job["last_error"]) == ("completed", 1, None)
    job = admin.job(waiting)
    assert (job["state"], job["attempts"]) == ("pending", 0)
    assert admin.active_workers() == []
    assert hosts["host-c"].ok("worker", "stop") == "Asked 0 workers to stop.\n"


# -- c) a host that disappears: the other rescues its jobs after the lease ----------------


def test_jobs_of_a_vanished_host_are_rescued_and_run_by_the_other(
    hosts: dict[str, Host], admin: Queuectl, store: Store, tmp_path: Path
) -> None:
    admin.config("lease-timeout", "2")
    admin.config("backoff-max", "0")  # a rescued job is runnable again at once
    ledger = tmp_path / "ledger"
    marker = f"59.{os.getpid() % 1000:03d}9"  # a `sleep` argument no other process has
    # On host-a a run hangs, as if the host died mid-run; on host-b it finishes at once.
    command = (
        f"{LEDGER_LINE.format(ledger=ledger)}; "
        f'if [ "$(hostname)" = host-a ]; then exec sleep {marker}; fi'
    )
    ids = enqueue_many(admin, [{"command": command}] * 6)
    host_a = hosts["host-a"].start_workers("--count", "2")
    try:
        wait_until(
            lambda: len(processes_with_argument(marker)) == 2,
            timeout=30,
            message="both workers of host-a to be running a job",
        )
        held = {
            job.id: job.locked_by
            for job in store.list_jobs(JobFilter(states=(JobState.PROCESSING,), limit=0))
        }
        assert len(held) == 2
        host_b = hosts["host-b"].start_workers("--count", "2")
        wait_until(
            lambda: store.count_jobs_by_state()[JobState.COMPLETED] == 4,
            timeout=30,
            message="host-b to run the other four jobs",
        )

        # Host a vanishes: its supervisor and workers, and the jobs they ran (each in a
        # session of its own, so not in the workers' process group).
        os.killpg(host_a.pid, signal.SIGKILL)
        host_a.wait(timeout=10)
    finally:
        for pid in processes_with_argument(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    # Only host-b is left to notice: nothing here reads through a rescuing command.
    wait_until(lambda: all_finished(store, 6), timeout=40, interval=0.2, message="the rescue")
    jobs = jobs_by_id(store)
    assert {job.state for job in jobs.values()} == {JobState.COMPLETED}
    entries = ledger_entries(ledger)
    for job_id in ids:
        runs = [(attempt, host) for entry_id, attempt, host in entries if entry_id == job_id]
        if job_id in held:
            assert runs == [(1, "host-a"), (2, "host-b")]
        else:
            assert runs == [(1, "host-b")]
    active = admin.active_workers()
    assert [worker["host"] for worker in active] == ["host-b", "host-b"]  # host-a's are gone
    b_workers = {worker["id"] for worker in active}
    # Every worker that ever registered and did not stop, with its last heartbeat.
    last_beat = {worker.id: worker.last_heartbeat for worker in store.list_workers(86400)}
    for job_id, holder in held.items():
        job = admin.job(job_id)
        lost, rerun = job["history"]
        assert (lost["attempt"], lost["worker_id"], lost["exit_code"]) == (1, holder, None)
        assert "lost" in lost["error"]
        assert str(holder) in lost["error"]
        # Not before the lease (2 s) of the dead worker ran out, by the database's clock.
        lost_at = store.list_attempts(job_id)[0].finished_at
        assert lost_at is not None
        assert holder is not None
        assert (lost_at - last_beat[holder]).total_seconds() >= 2, (lost_at, last_beat[holder])
        assert (rerun["attempt"], rerun["exit_code"], rerun["error"]) == (2, 0, None)
        assert rerun["worker_id"] in b_workers
        assert (job["attempts"], job["exit_code"], job["last_error"]) == (2, 0, None)
    stop_by_signal(hosts["host-b"], host_b)


# -- d) times come from the database, not from the host's clock ---------------------------

SKEW = 3600.0  # seconds the skewed host's clock is fast
MINUTE = timedelta(seconds=60)
# Loaded by the skewed host's Python at start (sitecustomize): its wall clock, as seen by
# time.time() and datetime.now(), runs SKEW seconds fast. __slots__ keeps the instance
# layout that C extensions (psycopg) expect of a datetime.
SKEWED_CLOCK = """
import datetime as _datetime
import os
import time

_SKEW = float(os.environ["QUEUECTL_TEST_CLOCK_SKEW"])
_REAL = _datetime.datetime
_time, _time_ns = time.time, time.time_ns
time.time = lambda: _time() + _SKEW
time.time_ns = lambda: _time_ns() + int(_SKEW * 1e9)


class datetime(_REAL):
    __slots__ = ()

    @classmethod
    def now(cls, tz=None):
        return _REAL.now(tz) + _datetime.timedelta(seconds=_SKEW)

    @classmethod
    def utcnow(cls):
        return _REAL.utcnow() + _datetime.timedelta(seconds=_SKEW)

    @classmethod
    def today(cls):
        return cls.now()


_datetime.datetime = datetime
"""
CLOCK_PROBE = "import datetime, time; print(datetime.datetime.now(datetime.UTC).timestamp())"


def test_job_times_come_from_the_database_clock(
    admin: Queuectl, store: Store, tmp_path: Path
) -> None:
    site = tmp_path / "skewed-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SKEWED_CLOCK)
    skewed = Queuectl(admin.target, tmp_path / "skewed")
    path = os.pathsep.join(filter(None, [str(site), skewed.env.get("PYTHONPATH")]))
    skewed.env.update(PYTHONPATH=path, QUEUECTL_TEST_CLOCK_SKEW=str(SKEW))
    try:
        probe = subprocess.run(
            [sys.executable, "-c", CLOCK_PROBE],
            env=skewed.env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert float(probe.stdout) - time.time() > SKEW - 60  # the skew is real

        before = store.now()
        due_id = skewed.enqueue(command="true")
        delayed_id = skewed.ok("add", "--delay", "60s", "--", "true").strip()
        after = store.now()
        due, delayed = store.get_job(due_id), store.get_job(delayed_id)
        assert due is not None
        assert delayed is not None
        assert before <= due.created_at <= after
        assert due.run_at == due.created_at
        assert before <= delayed.created_at <= after
        assert delayed.run_at - delayed.created_at <= after - before + MINUTE
        assert delayed.run_at - delayed.created_at >= MINUTE - (after - before)

        # A worker whose clock is an hour fast claims what the database says is due, and
        # not the job due in a minute.
        code, err = skewed.finish(skewed.start_workers("--burst"))
        assert code == 0, err
        done = store.get_job(due_id)
        assert done is not None
        assert done.state is JobState.COMPLETED
        assert done.started_at is not None
        assert after <= done.started_at <= store.now()
        assert skewed.state(delayed_id) == "pending"
    finally:
        skewed.stop_all()


# -- d) a whole `worker start` group killed: its jobs die with it, before any rescue ------


def test_killed_worker_group_takes_its_jobs_along_before_the_other_host_rescues(
    hosts: dict[str, Host], admin: Queuectl, store: Store, tmp_path: Path
) -> None:
    """SIGKILL of host-a's supervisor and workers together: host-a's guard kills the jobs
    they ran (background processes included) at once, long before the lease runs out, so
    the rescue and re-run on host-b never overlap anything host-a left running."""
    admin.config("lease-timeout", "3")
    admin.config("backoff-max", "0")
    ledger = tmp_path / "ledger"
    fg, bg = f"59.{os.getpid() % 1000:03d}7", f"59.{os.getpid() % 1000:03d}8"
    command = (
        f'echo "$QUEUECTL_JOB_ID $(hostname) start $(date +%s.%N)" >> {ledger}; '
        f'if [ "$(hostname)" = host-a ]; then sleep {bg} & exec sleep {fg}; fi'
    )
    ids = enqueue_many(admin, [{"command": command}] * 2)
    host_a = hosts["host-a"].start_workers("--count", "2")
    wait_until(
        lambda: len(processes_with_argument(fg)) == 2 and len(processes_with_argument(bg)) == 2,
        timeout=30,
        message="both workers of host-a to be running a job",
    )
    host_b = hosts["host-b"].start_workers("--count", "1")
    killed_at = time.time()
    os.killpg(host_a.pid, signal.SIGKILL)
    host_a.wait(timeout=10)
    wait_until(
        lambda: not processes_with_argument(fg) and not processes_with_argument(bg),
        timeout=10,
        interval=0.02,
        message="host-a's jobs to die with their workers",
    )
    gone_at = time.time()
    assert gone_at - killed_at < 2.0, "killed by the guard, not by a rescue after the lease"
    wait_until(lambda: all_finished(store, 2), timeout=40, interval=0.2, message="the rescue")
    assert {job.state for job in jobs_by_id(store).values()} == {JobState.COMPLETED}
    starts = [line.split() for line in ledger.read_text().splitlines()]
    for job_id in ids:
        runs = [(host, float(at)) for entry, host, _, at in starts if entry == job_id]
        assert [host for host, _ in runs] == ["host-a", "host-b"]
        assert runs[1][1] > gone_at, "host-b's run began while host-a's was still alive"
    stop_by_signal(hosts["host-b"], host_b)
