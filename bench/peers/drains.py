"""Each peer drains N `sh -c true` jobs with two slots, all enqueued before it starts, and
is timed from the first job's start to the last one's end, like queuectl's drain.

huey and pgqueuer jobs write their own start and end times (bench/peers/apps);
task-spooler runs the bare command, so its span is timed from outside: from the moment a
gate job that holds both slots is released to the moment the last job is reported done.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.env import ROOT, child_env, tail
from bench.peers.install import Peers
from bench.results import BenchError

SLOTS = 2
STEP_TIMEOUT = 120.0  # seconds for one enqueue or install step
POLL = 0.005  # seconds between two looks at a peer's progress
HUEY_APP = "bench.peers.apps.huey_jobs"
PGQUEUER_APP = "bench.peers.apps.pgqueuer_jobs"
PGQ_ENTRYPOINT = "run_true"  # the name bench/peers/apps/pgqueuer_jobs.py registers


@dataclass(frozen=True)
class Drain:
    """One drain of `jobs` jobs: first start → last end, and the whole run with start-up."""

    jobs: int
    span: float
    wall: float

    @property
    def rate(self) -> float:
        return self.jobs / self.span


def drain_timeout(jobs: int) -> float:
    return 120 + jobs / 10


def peer_env(**extra: str) -> dict[str, str]:
    """The user's environment, with this repository importable for bench/peers/apps."""
    env = child_env()
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def run_step(
    argv: list[str], env: dict[str, str], cwd: Path, timeout: float = STEP_TIMEOUT
) -> None:
    """A set-up step that must succeed. No pipes: a daemon it starts (task-spooler's
    clients) would hold them open, so output goes to a file."""
    out = cwd / "step.log"
    with out.open("wb") as sink:
        try:
            done = subprocess.run(
                argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=sink,
                stderr=subprocess.STDOUT, timeout=timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"{' '.join(argv[:3])} took more than {timeout:g}s") from exc
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv[:3])} exited {done.returncode}: {tail(out.read_bytes())}")


def read_log(path: Path, jobs: int) -> tuple[float, float]:
    """(first start, last end) from a peer's `START END` lines; all jobs must be there."""
    lines = path.read_text().split() if path.exists() else []
    starts, ends = [float(x) for x in lines[0::2]], [float(x) for x in lines[1::2]]
    if len(ends) != jobs:
        raise BenchError(f"{jobs - len(ends)} of {jobs} jobs were not completed")
    return min(starts), max(ends)


def lines_in(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@contextlib.contextmanager
def background(
    argv: list[str], env: dict[str, str], cwd: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A consumer in its own session, its output in a file; its whole group is killed
    if it is still there at the end."""
    with (cwd / "consumer.log").open("wb") as log:
        proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            yield proc
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


# -- task-spooler -----------------------------------------------------------------------


def tsp_drain(program: Path, workdir: Path, jobs: int) -> Drain:
    """A private task-spooler server (TS_SOCKET in `workdir`, so a user's queue is never
    touched) with 2 slots. A gate job that needs both slots blocks on a FIFO while the
    jobs are enqueued; writing to the FIFO releases the queue and starts the clock."""
    tmp = workdir / "tmp"
    tmp.mkdir(exist_ok=True)
    env = child_env()
    env.update(
        TS_SOCKET=str(workdir / "ts.sock"),
        TMPDIR=str(tmp),  # where it writes each job's output, as it does by default
        TS_SLOTS=str(SLOTS),
        TS_MAXCONN=str(jobs + 64),  # every queued job is a waiting client
    )
    tsp = str(program)
    gate = workdir / "gate"
    os.mkfifo(gate)
    try:
        run_step([tsp, "-S", str(SLOTS)], env, workdir)
        run_step([tsp, "-N", str(SLOTS), "sh", "-c", "read go < gate"], env, workdir)
        gate_id = int((workdir / "step.log").read_text().split()[0])
        _wait_state(tsp, env, workdir, gate_id, "running")
        loop = f'i=0; while [ "$i" -lt {jobs} ]; do "$0" sh -c true || exit 1; i=$((i+1)); done'
        run_step(["sh", "-c", loop, tsp], env, workdir, timeout=STEP_TIMEOUT + jobs / 20)
        last = gate_id + jobs
        with background([tsp, "-w", str(last)], env, workdir) as waiter:
            time.sleep(0.2)  # let the waiting client connect before the clock starts
            start = time.perf_counter()
            with gate.open("w") as release:
                release.write("go\n")
            try:
                waiter.wait(drain_timeout(jobs))
            except subprocess.TimeoutExpired as exc:
                raise BenchError(f"task-spooler did not finish {jobs} jobs in time") from exc
            end = time.perf_counter()
            # With two slots the job before the last may still be running: wait for it
            # (and only then move the end) rather than count the check's own time.
            states = _states(tsp, env, workdir)
            for job_id in range(gate_id + 1, last + 1):
                if states.get(job_id, ("?",))[0] != "finished":
                    run_step([tsp, "-w", str(job_id)], env, workdir)
                    end = time.perf_counter()
        states = _states(tsp, env, workdir)
        ok = sum(1 for i in range(gate_id + 1, last + 1) if states.get(i) == ("finished", "0"))
        if ok != jobs:
            raise BenchError(f"task-spooler finished {ok} of {jobs} jobs")
        return Drain(jobs, end - start, end - start)
    finally:
        _release(gate)
        with contextlib.suppress(BenchError):
            run_step([tsp, "-K"], env, workdir, timeout=30)


def _states(tsp: str, env: dict[str, str], workdir: Path) -> dict[int, tuple[str, str]]:
    """Job id -> (state, exit level) from `tsp -l`."""
    run_step([tsp, "-l"], env, workdir)
    found: dict[int, tuple[str, str]] = {}
    for line in (workdir / "step.log").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit():
            level = fields[3] if fields[1] == "finished" and len(fields) > 3 else ""
            found[int(fields[0])] = (fields[1], level)
    return found


def _wait_state(tsp: str, env: dict[str, str], workdir: Path, job_id: int, state: str) -> None:
    deadline = time.monotonic() + 30
    while _states(tsp, env, workdir).get(job_id, ("?",))[0] != state:
        if time.monotonic() > deadline:
            raise BenchError(f"task-spooler's job {job_id} never became {state}")
        time.sleep(0.05)


def _release(gate: Path) -> None:
    """Open the gate if nothing did (a failed run), so its job and server can end."""
    with contextlib.suppress(OSError):
        fd = os.open(gate, os.O_WRONLY | os.O_NONBLOCK)
        os.write(fd, b"go\n")
        os.close(fd)


# -- huey -------------------------------------------------------------------------------


def huey_drain(peers: Peers, workdir: Path, jobs: int, kind: str) -> Drain:
    """huey's consumer with 2 workers of `kind` (thread or process) on a fresh SqliteHuey
    file, started once every task is enqueued and interrupted (SIGINT, its graceful stop)
    once every task has recorded its end."""
    log = workdir / f"huey-{kind}.times"
    env = peer_env(PEER_DB=str(workdir / f"huey-{kind}.db"), PEER_LOG=str(log))
    python = str(peers.program("huey"))
    run_step([python, "-c", f"from {HUEY_APP} import enqueue; enqueue({jobs})"], env, workdir)
    consumer = [str(peers.bin("huey_consumer")), f"{HUEY_APP}.huey", "-k", kind, "-w", "2", "-q"]
    started = time.perf_counter()
    with background(consumer, env, workdir) as proc:
        deadline = time.monotonic() + drain_timeout(jobs)
        while lines_in(log) < jobs:
            if proc.poll() is not None:
                raise BenchError(f"huey's consumer exited {proc.returncode}: {_log_tail(workdir)}")
            if time.monotonic() > deadline:
                raise BenchError(f"huey ran {lines_in(log)} of {jobs} tasks in time")
            time.sleep(POLL)
        wall = time.perf_counter() - started
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
    first, last = read_log(log, jobs)
    return Drain(jobs, last - first, wall)


# -- pgqueuer ---------------------------------------------------------------------------


def pgqueuer_env(url: str, log: Path | None = None) -> dict[str, str]:
    env = peer_env(PGDSN=url)
    if log is not None:
        env["PEER_LOG"] = str(log)
    return env


def pgqueuer_install(peers: Peers, url: str, workdir: Path) -> None:
    """`pgq install`: pgqueuer's tables and functions in the database at `url`."""
    run_step([str(peers.bin("pgq")), "install"], pgqueuer_env(url), workdir)


def pgqueuer_drain(peers: Peers, url: str, workdir: Path, jobs: int, slots: str) -> Drain:
    """One pgqueuer consumer in drain mode on a database where `pgq install` ran; it
    exits by itself once the queue is empty. `slots`: `limit` or `semaphore` (see
    bench/peers/apps/pgqueuer_jobs.py)."""
    log = workdir / f"pgqueuer-{slots}.times"
    env = dict(pgqueuer_env(url, log), PGQ_SLOTS=slots)
    python = str(peers.program("pgqueuer"))
    run_step([python, "-c", f"from {PGQUEUER_APP} import enqueue; enqueue({jobs})"], env, workdir)
    started = time.perf_counter()
    run_step(
        [python, "-c", f"from {PGQUEUER_APP} import drain; drain()"],
        env, workdir, timeout=drain_timeout(jobs),
    )  # fmt: skip
    wall = time.perf_counter() - started
    first, last = read_log(log, jobs)
    return Drain(jobs, last - first, wall)


def _log_tail(workdir: Path) -> str:
    path = workdir / "consumer.log"
    return tail(path.read_bytes()) if path.exists() else "(no output)"
