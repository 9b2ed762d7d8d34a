"""The benchmark's surroundings: fresh stores, worker processes, /proc, machine facts.

Every command under test is the installed `queuectl` console script, run in a subprocess
with the environment a user would have (no PYTHONDONTWRITEBYTECODE, so it loads compiled
bytecode like an installed package does).
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from bench.results import BenchError, Sizes
from queuectl.core.redact import redact

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable  # the venv's interpreter: the one the queuectl script runs on
DEFAULT_PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_CONNECT_TIMEOUT = 3  # seconds to decide that no PostgreSQL server answers
CLI_TIMEOUT = 120.0  # seconds any one short command may take before it counts as hung
STOP_TIMEOUT = 30.0  # seconds workers get to stop gracefully before they are killed
POLL = 0.01  # seconds between two looks at the store while waiting for jobs


def queuectl_script() -> Path:
    """The console script next to this interpreter (the venv's), as a user runs it."""
    script = Path(PYTHON).parent / "queuectl"
    if script.exists():
        return script
    found = shutil.which("queuectl")
    if found is None:
        raise BenchError("no queuectl console script: install the package (make venv)")
    return Path(found)


def child_env(target: str | None = None) -> dict[str, str]:
    """The environment of every measured process: the user's, without the bytecode switch
    (it would make each start-up compile from source), pointed at one store."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.pop("QUEUECTL_DB", None)
    if target is not None:
        env["QUEUECTL_DB"] = target
    return env


def compile_sources() -> None:
    """An editable install compiles nothing: do it once, so start-up is an installed one's."""
    src = ROOT / "src"
    if src.is_dir():
        subprocess.run(
            [PYTHON, "-m", "compileall", "-q", str(src)],
            env=child_env(),
            check=True,
            timeout=CLI_TIMEOUT,
        )


def timed(
    argv: Sequence[str],
    env: dict[str, str],
    *,
    stdin: Path | None = None,
    timeout: float = CLI_TIMEOUT,
    cwd: Path | None = None,
) -> float:
    """Wall seconds of one command, which must succeed; output is thrown away."""
    with contextlib.ExitStack() as stack:
        source: IO[bytes] | int = subprocess.DEVNULL
        if stdin is not None:
            source = stack.enter_context(stdin.open("rb"))
        start = time.perf_counter()
        try:
            done = subprocess.run(
                list(argv),
                env=env,
                stdin=source,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=timeout,
                cwd=cwd,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"{' '.join(argv)} took more than {timeout:g}s") from exc
        elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {done.returncode}: {_tail(done.stderr)}")
    return elapsed


def _tail(stderr: bytes | str | None) -> str:
    if not stderr:
        return "(no output)"
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


# -- PostgreSQL -------------------------------------------------------------------------


@dataclass
class PgServer:
    """The server fresh benchmark databases are created on (one admin connection)."""

    url: str
    admin: Any  # psycopg.Connection, autocommit
    version: str

    def close(self) -> None:
        self.admin.close()


def find_pg_server() -> tuple[PgServer | None, str | None]:
    """(server, None), or (None, why not) when psycopg or the server is missing."""
    url = (
        os.environ.get("QUEUECTL_BENCH_PG_URL")
        or os.environ.get("QUEUECTL_TEST_PG_URL")
        or DEFAULT_PG_SERVER
    )
    try:
        import psycopg
    except ImportError:
        return None, "psycopg is not installed (pip install -e '.[dev]')"
    try:
        admin = psycopg.connect(url, autocommit=True, connect_timeout=PG_CONNECT_TIMEOUT)
        row = admin.execute("SHOW server_version").fetchone()
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        return None, redact(f"nothing answers at {url}: {reason}", url)
    return PgServer(url, admin, str(row[0]) if row else "?"), None


def database_url(server: str, name: str) -> str:
    return urlsplit(server)._replace(path=f"/{name}").geturl()


# -- stores -----------------------------------------------------------------------------


@dataclass
class Context:
    """What every figure gets: the sizes, a scratch folder, the PostgreSQL server."""

    sizes: Sizes
    scratch: Path
    pg: PgServer | None


class Store:
    """A fresh, empty queuectl store plus a plain driver connection to observe it.

    The figures act through the CLI only; reading timestamps straight from the tables
    gives their full precision (the CLI prints milliseconds) without a CLI call's cost.
    """

    def __init__(self, backend: str, target: str, workdir: Path) -> None:
        self.backend = backend
        self.target = target
        self.workdir = workdir
        self.env = child_env(target)
        self.script = str(queuectl_script())
        self._conn: Any = None

    # -- the CLI ------------------------------------------------------------------------

    def argv(self, *args: str) -> list[str]:
        return [self.script, *args]

    def cli(self, *args: str, stdin: Path | None = None, timeout: float = CLI_TIMEOUT) -> str:
        """Run `queuectl ARGS`, which must succeed; its stdout."""
        with contextlib.ExitStack() as stack:
            source: IO[bytes] | int = subprocess.DEVNULL
            if stdin is not None:
                source = stack.enter_context(stdin.open("rb"))
            try:
                done = subprocess.run(
                    self.argv(*args),
                    env=self.env,
                    stdin=source,
                    capture_output=True,
                    timeout=timeout,
                    cwd=self.workdir,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise BenchError(f"queuectl {' '.join(args)} took more than {timeout:g}s") from exc
        if done.returncode != 0:
            raise BenchError(
                f"queuectl {' '.join(args)} exited {done.returncode}: {_tail(done.stderr)}"
            )
        return done.stdout.decode(errors="replace")

    def timed(self, *args: str, stdin: Path | None = None, timeout: float = CLI_TIMEOUT) -> float:
        return timed(self.argv(*args), self.env, stdin=stdin, timeout=timeout, cwd=self.workdir)

    def prepare(self) -> None:
        """Let queuectl create its schema (a first `status`), so no figure pays for it."""
        self.cli("status")

    def jobs_file(self, count: int, name: str = "jobs.jsonl") -> Path:
        path = self.workdir / name
        path.write_text('{"command":"true"}\n' * count)
        return path

    # -- observing the tables -----------------------------------------------------------

    @property
    def conn(self) -> Any:
        if self._conn is None:
            if self.backend == "sqlite":
                self._conn = sqlite3.connect(self.target, timeout=30, isolation_level=None)
            else:
                import psycopg

                self._conn = psycopg.connect(self.target, autocommit=True)
                self._conn.execute("SET search_path TO queuectl")
        return self._conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """`sql` with `?` placeholders and `EPOCH(col)` for a time column in Unix seconds."""
        if self.backend == "postgres":
            sql = sql.replace("?", "%s")
            sql = _epoch_pg(sql)
        else:
            sql = sql.replace("EPOCH(", "(")
        return list(self.conn.execute(sql, tuple(params)).fetchall())

    def max_seq(self) -> int:
        return int(self.query("SELECT coalesce(max(seq), 0) FROM jobs")[0][0])

    def count(self, state: str, after_seq: int = 0) -> int:
        rows = self.query(
            "SELECT count(*) FROM jobs WHERE state = ? AND seq > ?", (state, after_seq)
        )
        return int(rows[0][0])

    def span(self, after_seq: int = 0) -> tuple[int, float, float]:
        """(jobs completed, first claim, last completion) among jobs enqueued after a seq."""
        rows = self.query(
            "SELECT count(*), min(EPOCH(started_at)), max(EPOCH(finished_at)) FROM jobs"
            " WHERE seq > ? AND state = 'completed'",
            (after_seq,),
        )
        done, first, last = rows[0]
        if not done:
            raise BenchError("no job was completed")
        return int(done), float(first), float(last)

    def job_times(self, job_id: str) -> tuple[float, float | None, float | None]:
        rows = self.query(
            "SELECT EPOCH(created_at), EPOCH(started_at), EPOCH(finished_at) FROM jobs"
            " WHERE id = ?",
            (job_id,),
        )
        if not rows:
            raise BenchError(f"job {job_id} is not in the store")
        created, started, finished = rows[0]
        return (
            float(created),
            None if started is None else float(started),
            None if finished is None else float(finished),
        )

    def running_workers(self) -> int:
        return int(self.query("SELECT count(*) FROM workers WHERE status = 'running'")[0][0])

    def wait_for(
        self, what: str, done: Callable[[], bool], timeout: float, interval: float = POLL
    ) -> None:
        """Poll `done()` until it is true; a BenchError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise BenchError(f"timed out after {timeout:g}s waiting for {what}")
            time.sleep(interval)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _epoch_pg(sql: str) -> str:
    """EPOCH(col) -> extract(epoch FROM col)::float8 (columns only, no nesting)."""
    out, rest = [], sql
    while "EPOCH(" in rest:
        before, after = rest.split("EPOCH(", 1)
        column, rest = after.split(")", 1)
        out.append(f"{before}extract(epoch FROM {column})::float8")
    out.append(rest)
    return "".join(out)


@contextmanager
def fresh_store(ctx: Context, backend: str, label: str) -> Iterator[Store]:
    """A brand-new store for one figure: a temp folder for SQLite, a new database (dropped
    afterwards, WITH (FORCE) so a stray worker cannot keep it alive) for PostgreSQL."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{label}-{backend}-", dir=ctx.scratch))
    store: Store | None = None
    name: str | None = None
    try:
        if backend == "sqlite":
            store = Store(backend, str(workdir / "queuectl.db"), workdir)
        else:
            if ctx.pg is None:
                raise BenchError("PostgreSQL is not available")
            name = f"bench_{secrets.token_hex(6)}"
            ctx.pg.admin.execute(f'CREATE DATABASE "{name}"')
            store = Store(backend, database_url(ctx.pg.url, name), workdir)
        yield store
    finally:
        if store is not None:
            store.close()
        if name is not None and ctx.pg is not None:
            with contextlib.suppress(Exception):
                ctx.pg.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)


# -- worker processes -------------------------------------------------------------------


class Workers:
    """`queuectl worker start --count N [--burst]` as a user runs it, in its own session
    so that a hung run can be killed as one process group."""

    def __init__(self, store: Store, count: int, *, burst: bool = False) -> None:
        self.store = store
        self.count = count
        args = ["worker", "start", "--count", str(count), "-q"]
        if burst:
            args.append("--burst")
        self.log_path = store.workdir / f"worker-{secrets.token_hex(3)}.log"
        self._log = self.log_path.open("wb")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            store.argv(*args),
            env=store.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=store.workdir,
            start_new_session=True,
        )

    def children(self, timeout: float = 30.0) -> list[int]:
        """The worker processes (the supervisor's children), once all `count` exist."""
        deadline = time.monotonic() + timeout
        while True:
            found = children_of(self.proc.pid)
            if len(found) >= self.count:
                return found
            if self.proc.poll() is not None:
                raise BenchError(f"worker start exited {self.proc.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"only {len(found)} of {self.count} workers started")
            time.sleep(POLL)

    def ready(self, timeout: float = 30.0) -> list[int]:
        """Children started and registered in the store: they are serving."""
        pids = self.children(timeout)
        self.store.wait_for(
            "workers to register", lambda: self.store.running_workers() >= self.count, timeout
        )
        return pids

    def wait(self, timeout: float) -> float:
        """Wait for a burst run to end by itself; its wall seconds since start."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            self.stop()
            raise BenchError(f"workers still running after {timeout:g}s") from exc
        elapsed = time.perf_counter() - self.started
        self._log.close()
        if code != 0:
            raise BenchError(f"worker start exited {code}: {self.log_tail()}")
        return elapsed

    def stop(self) -> None:
        """SIGTERM to the supervisor (a graceful stop); SIGKILL to the group if it hangs."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT)
        self._log.close()

    def log_tail(self) -> str:
        self._log.flush()
        return _tail(self.log_path.read_bytes())

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- /proc ------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return sorted(int(p) for p in text.split())
    except OSError:
        pass
    found = []  # kernels without CONFIG_PROC_CHILDREN: scan every process's parent
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return sorted(found)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime field 14 and stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_kb(pid: int, key: str = "VmRSS") -> int:
    """A line of /proc/PID/status (VmRSS, VmHWM), or of smaps_rollup for Pss."""
    source = "smaps_rollup" if key == "Pss" else "status"
    for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise BenchError(f"no {key} in /proc/{pid}/{source}")


def bare_python_rss_kb() -> int:
    """VmRSS of this interpreter doing nothing: the floor under any Python worker."""
    proc = subprocess.Popen(
        [PYTHON, "-c", "import sys; sys.stdin.read()"],
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        return memory_kb(proc.pid)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


# -- the machine ------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "unknown"


def git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' (with uncommitted changes)' if dirty else ''}"


def queuectl_version() -> str:
    try:
        return subprocess.run(
            [str(queuectl_script()), "--version"],
            env=child_env(), capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError, BenchError):
        return "unknown"


def machine_facts(pg: PgServer | None) -> dict[str, str]:
    """What a reader needs to judge the numbers: hardware, versions, load, when."""
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return {
        "CPU": cpu_model(),
        "Cores": f"{cores}" + (f" ({usable} usable)" if usable != cores else ""),
        "Memory": _memory_total(),
        "Kernel": platform.release(),
        "Python": f"{platform.python_version()} ({PYTHON})",
        "SQLite": sqlite3.sqlite_version,
        "PostgreSQL server": pg.version if pg else "not available",
        "queuectl": f"{queuectl_version()}, commit {git_revision()}",
        "Date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "Load average at start": load_average(),
    }


def _memory_total() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"
