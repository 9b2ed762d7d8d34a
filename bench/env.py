"""The benchmark's surroundings: fresh stores, worker processes, /proc, machine facts.

Every command under test is the installed `queuectl` console script, run in a subprocess
with the environment a user would have (no PYTHONDONTWRITEBYTECODE, so it loads compiled
bytecode like an installed package does).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from bench.peers.install import Peers
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
        raise BenchError(f"{' '.join(argv)} exited {done.returncode}: {tail(done.stderr)}")
    return elapsed


def tail(stderr: bytes | str | None) -> str:
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
    peers: Peers = field(default_factory=lambda: Peers.off("not asked for"))


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
                f"queuectl {' '.join(args)} exited {done.returncode}: {tail(done.stderr)}"
            )
        return done.stdout.decode(errors="replace")

    def timed(self, *args: str, stdin: Path | None = None, timeout: float = CLI_TIMEOUT) -> float:
        return timed(self.argv(*args), self.env, stdin=stdin, timeout=timeout, cwd=self.workdir)

    def prepare(self) -> None:
        """Let queuectl create the store and its schema (a command that writes: one that
        only reads refuses a store that does not exist yet), so no figure pays for it."""
        self.cli("config", "set", "max-retries", "3")

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
def scratch_database(pg: PgServer | None, label: str = "bench") -> Iterator[str]:
    """The URL of a brand-new database, dropped afterwards WITH (FORCE) so that a stray
    worker or consumer cannot keep it alive."""
    if pg is None:
        raise BenchError("PostgreSQL is not available")
    name = f"{label}_{secrets.token_hex(6)}"
    pg.admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(pg.url, name)
    finally:
        with contextlib.suppress(Exception):
            pg.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_store(ctx: Context, backend: str, label: str) -> Iterator[Store]:
    """A brand-new store for one figure: a temp folder for SQLite, a new database for
    PostgreSQL."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{label}-{backend}-", dir=ctx.scratch))
    try:
        with contextlib.ExitStack() as stack:
            if backend == "sqlite":
                target = str(workdir / "queuectl.db")
            else:
                target = stack.enter_context(scratch_database(ctx.pg))
            store = Store(backend, target, workdir)
            stack.callback(store.close)
            yield store
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
