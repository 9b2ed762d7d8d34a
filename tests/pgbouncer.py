"""A private PgBouncer in transaction pooling mode in front of the test server.

`pooled(url)` turns the URL of a test database into the URL of the same database through
the pooler, with `pool_mode=transaction` as users write it. One PgBouncer per test process
(pytest-xdist runs several), on a free port, with its config in a temporary folder; stopped
at exit. Without the `pgbouncer` program the tests skip, except in CI, where .ci/run
installs it and a missing one is a failure.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import pytest

from tests import pgtools

PROGRAM_PLACES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
START_TIMEOUT = 15.0  # seconds for PgBouncer to accept connections
POOL_SIZE = 20  # server connections per database: more than the tests' concurrent transactions

CONFIG = """\
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/userlist.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 1000
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
"""


@dataclass
class PgBouncer:
    process: subprocess.Popen[bytes]
    folder: Path
    port: int
    server: tuple[str, int]  # the PostgreSQL server it pools for

    def pooled(self, url: str) -> str:
        """`url`'s database through this pooler, marked as transaction pooled."""
        parts = urlsplit(url)
        user = parts.username or "postgres"
        return parts._replace(
            netloc=f"{user}@127.0.0.1:{self.port}", query="pool_mode=transaction"
        ).geturl()

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.folder / "pgbouncer.log").read_text(errors="replace")
        return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # its "safe shutdown"
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)


_running: PgBouncer | None = None


@pytest.fixture
def pgbouncer() -> PgBouncer:
    """The test process's PgBouncer (started on first use) in front of the test server."""
    global _running
    if _running is None or _running.process.poll() is not None:
        with pgtools.fresh_database() as url:  # the server the tests use, wherever it is
            parts = urlsplit(url)
            server = (parts.hostname or "127.0.0.1", parts.port or 5432)
        _running = _start(server)
        atexit.register(_running.stop)
    return _running


@contextlib.contextmanager
def pooled_database(bouncer: PgBouncer) -> Iterator[str]:
    """A fresh test database, reached through `bouncer`."""
    with pgtools.fresh_database() as url:
        yield bouncer.pooled(url)


def _start(server: tuple[str, int]) -> PgBouncer:
    program = _program()
    folder = Path(tempfile.mkdtemp(prefix="queuectl-pgbouncer-"))
    port = pgtools._free_port()
    (folder / "userlist.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(
        CONFIG.format(
            host=server[0], port=server[1], listen_port=port, folder=folder, pool_size=POOL_SIZE
        )
    )
    as_user = _as_unprivileged_user(folder)
    process = subprocess.Popen(
        [program, str(folder / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        **as_user,
    )
    bouncer = PgBouncer(process, folder, port, server)
    deadline = time.monotonic() + START_TIMEOUT
    while not _accepts(port):
        if process.poll() is not None or time.monotonic() > deadline:
            log = bouncer.log()
            bouncer.stop()
            _unavailable(f"PgBouncer did not start: {log.strip()[-500:]}")
        time.sleep(0.05)
    return bouncer


def _program() -> str:
    found = shutil.which("pgbouncer") or next(
        (place for place in PROGRAM_PLACES if os.access(place, os.X_OK)), None
    )
    if found is None:
        _unavailable("no `pgbouncer` program (apt-get install pgbouncer)")
    return found


def _as_unprivileged_user(folder: Path) -> dict[str, Any]:
    """PgBouncer refuses to run as root: as root, run it as `postgres` (or `nobody`)."""
    if os.geteuid() != 0:
        return {}
    account = _account("postgres") or _account("nobody")
    if account is None:
        _unavailable("running as root and no `postgres` or `nobody` account to run PgBouncer as")
    for path in (folder, *folder.iterdir()):
        os.chown(path, account.pw_uid, account.pw_gid)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _account(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _unavailable(reason: str) -> NoReturn:
    """Skip locally; in CI a missing PgBouncer is a failure, never a silent skip."""
    message = f"PgBouncer tests need PgBouncer: {reason}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
