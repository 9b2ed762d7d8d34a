"""Shared fixtures: a store target per backend, and a handle on the real `queuectl` command."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests import pgbouncer as pooler
from tests import pgtools
from tests.pgbouncer import pgbouncer  # noqa: F401 - a fixture, for every test module

BACKENDS = ["sqlite", "postgres"]
# The backends, and PostgreSQL through a transaction-pooling PgBouncer: for the tests that
# show queuectl works there (parametrize `backend` with it).
WITH_PGBOUNCER = [*BACKENDS, "pgbouncer"]


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


class Queuectl:
    """Runs the real command in a subprocess against one store."""

    def __init__(self, target: str, home: Path) -> None:
        self.target = target
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
        result = subprocess.run(
            self.argv(*args),
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"queuectl {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

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
        yield str(tmp_path / "store" / "queuectl.db")
    elif backend == "pgbouncer":
        with pooler.pooled_database(request.getfixturevalue("pgbouncer")) as url:
            yield url
    else:
        with pgtools.fresh_database() as url:
            yield url


@pytest.fixture
def sqlite_target(tmp_path: Path) -> str:
    return str(tmp_path / "store" / "queuectl.db")


@pytest.fixture
def q(db_target: str, tmp_path: Path) -> Iterator[Queuectl]:
    """The `queuectl` command against a fresh store of each backend."""
    handle = Queuectl(db_target, tmp_path / "home")
    yield handle
    handle.stop_all()


@pytest.fixture
def q_sqlite(sqlite_target: str, tmp_path: Path) -> Iterator[Queuectl]:
    """The `queuectl` command against a fresh SQLite store (backend-specific tests)."""
    handle = Queuectl(sqlite_target, tmp_path / "home")
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
            target = str(folder / "store" / "queuectl.db")
        else:
            target = stack.enter_context(pgtools.fresh_database())
        handle = Queuectl(target, folder / "home")
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
