"""Shared fixtures: a store target per backend, and a handle on the `queuectl` command:
run in a subprocess, or in this process where a module asks for it (`in_process` marker)."""

from __future__ import annotations

import atexit
import contextlib
import functools
import io
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests import pgbouncer as pooler
from tests import pgtools
from tests.pgbouncer import pgbouncer  # noqa: F401 - a fixture, for every test module

if TYPE_CHECKING:
    from queuectl.store.base import Store

# PostgreSQL cases carry the `postgres` marker, so that `-m "not postgres"` leaves them out.
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
# The backends, and PostgreSQL through a transaction-pooling PgBouncer: for the tests that
# show queuectl works there (parametrize `backend` with it).
WITH_PGBOUNCER = [*BACKENDS, pytest.param("pgbouncer", marks=pytest.mark.postgres)]
# Commands that always get a real process: they fork, install signal handlers, configure
# logging, serve or draw on a terminal, none of which may touch the test process.
OWN_PROCESS_COMMANDS = frozenset({"worker", "dashboard", "top"})


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl+C as a user's commands get it, however the suite was started: a shell runs a
    background job with SIGINT ignored, every process it starts would inherit that, and the
    tests of Ctrl+C would then wait for commands that cannot hear it."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "condition",
) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def run_in_threads(count: int, target: Callable[[int], object], timeout: float = 60) -> None:
    """target(0) … target(count - 1), each in a thread of its own, all started before any is
    joined (racers meet at a barrier of their own); returns once every thread has ended or
    had `timeout` seconds to."""
    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)


class Queuectl:
    """Runs the command against one store: in a subprocess, as a user does, or (with
    `in_process`) through queuectl.cli.main() in this process, which spares each command
    an interpreter start. Commands in OWN_PROCESS_COMMANDS, and commands run from another
    thread than the main one (concurrent clients), always get a process."""

    def __init__(self, target: str, home: Path, *, in_process: bool = False) -> None:
        self.target = target
        self.in_process = in_process
        self.env = dict(os.environ, QUEUECTL_HOME=str(home), QUEUECTL_DB=target)
        self.env.pop("COLUMNS", None)
        # Let every `queuectl` the tests start reuse compiled modules, as installs do.
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.workers: list[subprocess.Popen[str]] = []

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "queuectl", *args]

    def run(
        self, *args: str, input: str | None = None, check: bool = False, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        if (
            self.in_process
            and _command_of(args) not in OWN_PROCESS_COMMANDS
            # The streams and the environment are the process's: one command at a time.
            and threading.current_thread() is threading.main_thread()
        ):
            result = run_in_process(list(args), self.env, input)
        else:
            result = self.run_process(*args, input=input, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(
                f"queuectl {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def run_process(
        self, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """The real command in a subprocess, whatever `in_process` says."""
        return subprocess.run(
            self.argv(*args),
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str, input: str | None = None) -> str:
        return self.run(*args, input=input, check=True).stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def job(self, job_id: str) -> dict[str, Any]:
        return self.json("show", job_id)  # type: ignore[no-any-return]

    def state(self, job_id: str) -> str:
        return str(self.job(job_id)["state"])

    def config(self, key: str, value: str) -> None:
        self.ok("config", "set", key, value)

    def start_workers(self, *args: str) -> subprocess.Popen[str]:
        """`worker start ARGS` in the background, in its own session; stopped at teardown."""
        proc = subprocess.Popen(
            self.argv("worker", "start", *args),
            env=self.env,
            text=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.workers.append(proc)
        return proc

    def run_background(self, *args: str) -> subprocess.Popen[str]:
        """`queuectl ARGS` in the background, output captured; stopped at teardown."""
        proc = subprocess.Popen(
            self.argv(*args),
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.workers.append(proc)
        return proc

    def active_workers(self) -> list[dict[str, Any]]:
        return self.json("status")["workers"]  # type: ignore[no-any-return]

    # -- helpers for the end-to-end tests (tests/cli, tests/integration) ---------------

    def enqueue(self, **fields: Any) -> str:
        """Enqueue one job from keyword fields; returns its id."""
        return self.ok("enqueue", json.dumps(fields)).strip()

    def jobs(self, *args: str) -> list[dict[str, Any]]:
        """`list --limit 0 --json ARGS`: every job (of a filter), in enqueue order."""
        return self.json("list", "--limit", "0", *args)  # type: ignore[no-any-return]

    def job_count(self) -> int:
        return len(self.jobs())

    def history(self, job_id: str) -> list[dict[str, Any]]:
        return self.job(job_id)["history"]  # type: ignore[no-any-return]

    def wait_for_state(self, job_id: str, *states: str, timeout: float = 30.0) -> dict[str, Any]:
        """Poll `show` until the job is in one of `states`; returns the job."""

        def reached() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if job["state"] in states else None

        message = f"job {job_id} to be {'/'.join(states)}"
        return wait_until(reached, timeout=timeout, interval=0.1, message=message)  # type: ignore[no-any-return]

    def finish(self, proc: subprocess.Popen[str], timeout: float = 30.0) -> tuple[int, str]:
        """Wait for a background `worker start` to exit; returns (exit status, stderr)."""
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"`worker start` still running after {timeout}s") from None
        return proc.returncode, err or ""

    def signal_group(self, proc: subprocess.Popen[str], signum: int) -> None:
        """Signal `worker start` and every worker it forked at once, as Ctrl+C does."""
        os.killpg(proc.pid, signum)

    def stop_all(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                with _suppress_missing():
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            for pipe in (proc.stdout, proc.stderr):
                if pipe:
                    pipe.close()


def _command_of(args: tuple[str, ...]) -> str | None:
    """The command word of `queuectl ARGS`, after a global `--db T`."""
    words = list(args)
    if words[:1] == ["--db"]:
        words = words[2:]
    elif words and words[0].startswith("--db="):
        words = words[1:]
    return words[0] if words else None


def run_in_process(
    argv: list[str], env: Mapping[str, str], input: str | bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """queuectl.cli.main(argv) as a process would run it, and everything it changed put
    back: the environment (and the time zone with it), the streams, the logger, the stores
    it left open (a process's end would close them).

    Streams encode as a real process's do: stdout strict UTF-8, so that a str that could
    not be printed fails here as it would for a user; stderr backslashreplace. What the
    command logs at WARNING and above goes to stderr, as logging's last resort prints it
    in a process that set up no logging."""
    from queuectl.cli import main

    data = input.encode() if isinstance(input, str) else input or b""
    stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    stdout = io.TextIOWrapper(out_bytes, encoding="utf-8", errors="strict")
    stderr = io.TextIOWrapper(err_bytes, encoding="utf-8", errors="backslashreplace")
    with contextlib.ExitStack() as restore:
        restore.enter_context(_environment(env))
        restore.enter_context(_streams(stdin, stdout, stderr))
        restore.enter_context(_warnings_to(stderr))
        restore.enter_context(_stores_closed_after())
        try:
            code = main(argv)
        except SystemExit as exc:  # nothing raises it past main() today; a process exits
            code = exc.code if isinstance(exc.code, int) else 1
        stdout.flush()
        stderr.flush()
    return subprocess.CompletedProcess(
        ["queuectl", *argv],
        code,
        out_bytes.getvalue().decode(),
        err_bytes.getvalue().decode(),
    )


@contextlib.contextmanager
def _stores_closed_after() -> Iterator[None]:
    """Every store the command opens, closed when it returns."""
    from queuectl import store as store_package

    real_open = store_package.open_store
    opened: list[Store] = []

    def open_and_track(*args: Any, **kwargs: Any) -> Store:
        store = real_open(*args, **kwargs)
        opened.append(store)
        return store

    store_package.open_store = open_and_track
    try:
        yield
    finally:
        store_package.open_store = real_open
        for store in opened:
            store.close()


@contextlib.contextmanager
def _warnings_to(stream: io.TextIOWrapper) -> Iterator[None]:
    logger = logging.getLogger("queuectl")
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.WARNING)
    saved_propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.propagate = saved_propagate
        logger.removeHandler(handler)


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """os.environ replaced by `env` (and the C library told of TZ) for the duration."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    time.tzset()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        time.tzset()


@contextlib.contextmanager
def _streams(
    stdin: io.TextIOWrapper, stdout: io.TextIOWrapper, stderr: io.TextIOWrapper
) -> Iterator[None]:
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = stdin, stdout, stderr
    try:
        yield
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved


class _suppress_missing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, value: object, tb: object) -> bool:
        return isinstance(value, ProcessLookupError)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty store of the given backend."""
    if backend == "sqlite":
        yield str(sqlite_target(tmp_path))
    elif backend == "pgbouncer":
        with pooler.pooled_database(request.getfixturevalue("pgbouncer")) as url:
            yield url
    else:
        with pgtools.fresh_database() as url:
            yield url


@pytest.fixture
def store(db_target: str) -> Iterator[Store]:
    """The store `db_target` names, opened in the test process (modules that need it set up
    differently define their own)."""
    from queuectl.store import open_store

    opened = open_store(db_target)
    yield opened
    opened.close()


@pytest.fixture(name="sqlite_target")
def sqlite_target_fixture(tmp_path: Path) -> str:
    return str(sqlite_target(tmp_path))


def sqlite_target(folder: Path) -> Path:
    """A fresh, empty store in a folder of its own, created as `enqueue` would: commands
    that only read refuse a store that does not exist, and a store that QUEUECTL_DB or
    --db names is created only in a folder that exists."""
    path = folder / "store" / "queuectl.db"
    path.parent.mkdir(mode=0o700, exist_ok=True)
    # A copy of one store migrated once per test process: the same schema, no rows, the
    # same mode, without running every migration again for each test.
    shutil.copyfile(_migrated_sqlite_store(), path)
    path.chmod(0o600)
    return path


@functools.cache
def _migrated_sqlite_store() -> Path:
    from queuectl.store import open_store

    folder = Path(tempfile.mkdtemp(prefix="queuectl-test-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "queuectl.db"
    open_store(str(path)).close()  # closing checkpoints the WAL into the file: one file
    return path


def in_process(request: pytest.FixtureRequest) -> bool:
    """True for tests marked `in_process` (often the whole module, by `pytestmark`)."""
    return request.node.get_closest_marker("in_process") is not None


@pytest.fixture
def q(db_target: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Queuectl]:
    """The `queuectl` command against a fresh store of each backend."""
    handle = Queuectl(db_target, tmp_path / "home", in_process=in_process(request))
    yield handle
    handle.stop_all()


@pytest.fixture
def q_sqlite(
    sqlite_target: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Queuectl]:
    """The `queuectl` command against a fresh SQLite store (backend-specific tests)."""
    handle = Queuectl(sqlite_target, tmp_path / "home", in_process=in_process(request))
    yield handle
    handle.stop_all()


@pytest.fixture(scope="module", params=BACKENDS)
def q_shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Queuectl]:
    """One store per test module and backend, for the many checks that must change nothing
    (refused input): it saves a fresh store per case. Tests must leave it as they found it."""
    folder = tmp_path_factory.mktemp("shared")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            target = str(sqlite_target(folder))
        else:
            target = stack.enter_context(pgtools.fresh_database())
        handle = Queuectl(target, folder / "home", in_process=in_process(request))
        yield handle
        handle.stop_all()


TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3,}Z")


def parse_time(text: str) -> datetime:
    """A timestamp of the JSON output (RFC 3339, UTC, `Z`) to an aware datetime."""
    assert TIMESTAMP.fullmatch(text), f"not an RFC 3339 UTC timestamp with ms: {text!r}"
    return datetime.fromisoformat(text.removesuffix("Z") + "+00:00")


def assert_error(
    result: subprocess.CompletedProcess[str], exit_code: int, *, usage: bool = False
) -> str:
    """The SPEC 4 failure shape: the exit status, nothing on stdout, no traceback, and one
    `error:` line on stderr (after argparse's usage lines when `usage`). Returns the message."""
    assert result.returncode == exit_code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert lines, "nothing on stderr"
    assert lines[-1].startswith("error: "), result.stderr
    if usage:
        assert lines[0].startswith("usage: "), result.stderr
        assert sum(line.startswith("error:") for line in lines) == 1, result.stderr
    else:
        assert len(lines) == 1, result.stderr
    return lines[-1].removeprefix("error: ")


def processes_with_argument(argument: str) -> list[int]:
    """Pids of live processes with `argument` in their command line (zombies have none):
    how a test sees that a job left nothing running, using a marker argument."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if argument.encode() in (entry / "cmdline").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
    return found
