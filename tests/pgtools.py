"""PostgreSQL for the tests: a fresh database per test, or a skip that says why."""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    import psycopg

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PREFIX = "queuectl_test_"  # every database the tests create; leftovers are dropped
# Advisory lock namespace of live test sessions: a session holds (OWNER_LOCK, token) on
# its admin connection while it lives, so a later run can tell its leftovers (lock free)
# from the databases of a run still going, even one on another machine.
OWNER_LOCK = 0x7174
CONNECT_TIMEOUT = 3  # seconds to decide that no server answers


@dataclass
class _Session:
    """One per test process (pytest-xdist runs several): a server and a migrated template."""

    server: str
    admin: psycopg.Connection[tuple[Any, ...]]
    token: int
    template: str
    numbers: Iterator[int] = field(default_factory=itertools.count)


_session: _Session | None = None
_unavailable: str | None = None  # why PostgreSQL cannot be had, once we know


@contextmanager
def fresh_database(*, migrated: bool = True) -> Iterator[str]:
    """The URL of a brand-new database for one test, dropped afterwards.

    `migrated=False` gives an empty one (no schema), for migration tests.
    """
    session = _get_session()
    name = f"{PREFIX}{session.token}_{next(session.numbers)}"
    source = session.template if migrated else "template0"
    session.admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    try:
        yield database_url(session.server, name)
    finally:
        # FORCE: worker processes a test left behind must not keep the database alive.
        session.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(server: str, name: str) -> str:
    """`server` (a postgresql:// URL) pointing at database `name` instead."""
    return urlsplit(server)._replace(path=f"/{name}").geturl()


def libpq_url(target: str) -> str:
    """A queuectl store URL as libpq takes it: without queuectl's own parameters
    (`pool_mode`), for tests that read the database with psycopg directly."""
    from queuectl.store.postgres_url import parse_url

    return parse_url(target).conninfo


def _get_session() -> _Session:
    global _session, _unavailable
    if _session is not None:
        return _session
    if _unavailable is not None:
        _give_up(_unavailable)
    try:
        _session = _start_session()
    except _NoServer as exc:
        _unavailable = str(exc)
        _give_up(_unavailable)
    return _session


def _give_up(reason: str) -> NoReturn:
    """Skip locally; in CI a missing PostgreSQL is a failure, never a silent skip."""
    message = f"PostgreSQL tests need a server: {reason}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


class _NoServer(Exception):
    pass


def _start_session() -> _Session:
    try:
        import psycopg
    except ImportError:
        raise _NoServer("psycopg is not installed (pip install -e '.[dev]')") from None
    server = _find_server()
    admin = psycopg.connect(server, autocommit=True)
    token = _claim_token(admin)
    _drop_leftovers(admin, token)
    template = f"{PREFIX}{token}_template"
    admin.execute(f'CREATE DATABASE "{template}" TEMPLATE template0')
    from queuectl.store.postgres import PostgresStore

    store = PostgresStore(database_url(server, template))
    try:
        store.migrate()
    finally:
        store.close()
    session = _Session(server, admin, token, template)
    atexit.register(_end_session, session)
    return session


def _find_server() -> str:
    """QUEUECTL_TEST_PG_URL, else the local default, else a throwaway local server."""
    import psycopg

    configured = os.environ.get("QUEUECTL_TEST_PG_URL")
    url = configured or DEFAULT_SERVER
    try:
        psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT).close()
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        if configured:
            raise _NoServer(f"QUEUECTL_TEST_PG_URL={configured} does not answer: {reason}") from exc
        try:
            return _start_local_server()
        except _NoServer as local:
            raise _NoServer(
                f"nothing answers at {url} ({reason}), set QUEUECTL_TEST_PG_URL; "
                f"and no throwaway server could be started: {local}"
            ) from exc
    return url


def _claim_token(admin: psycopg.Connection[tuple[Any, ...]]) -> int:
    """A random token for our database names, marked as ours by an advisory lock."""
    while True:
        token = secrets.randbelow(2**31 - 1) + 1
        row = admin.execute("SELECT pg_try_advisory_lock(%s, %s)", (OWNER_LOCK, token)).fetchone()
        if row and row[0]:
            return token


def _drop_leftovers(admin: psycopg.Connection[tuple[Any, ...]], token: int) -> None:
    """Drop databases of earlier runs that died before cleaning up (their lock is free)."""
    rows = admin.execute(
        "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (PREFIX,)
    ).fetchall()
    owners: dict[int, list[str]] = {}
    for (name,) in rows:
        owner = name.removeprefix(PREFIX).split("_", 1)[0]
        if owner.isdigit() and int(owner) != token:
            owners.setdefault(int(owner), []).append(name)
    for owner, names in owners.items():
        row = admin.execute("SELECT pg_try_advisory_lock(%s, %s)", (OWNER_LOCK, owner)).fetchone()
        if not (row and row[0]):
            continue  # a live session on some machine still uses them
        try:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s, %s)", (OWNER_LOCK, owner))


def _end_session(session: _Session) -> None:
    with contextlib.suppress(Exception):
        session.admin.execute(f'DROP DATABASE IF EXISTS "{session.template}" WITH (FORCE)')
    session.admin.close()


# -- a throwaway server from the local binaries ------------------------------------------


def _start_local_server() -> str:
    """initdb + pg_ctl in a temporary folder, on a free port; stopped at exit.

    PostgreSQL refuses to run as root, so as root the server runs as `postgres` (or
    `nobody`), which must own its data folder.
    """
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major_version)
    if not found:
        raise _NoServer("no PostgreSQL binaries in /usr/lib/postgresql/*/bin")
    bindir = Path(found[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="queuectl-pg-"))
    account = _server_account()
    if account is not None:
        os.chown(root, account.pw_uid, account.pw_gid)
    as_user: dict[str, Any] = (
        {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []} if account else {}
    )
    data, port = root / "data", _free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(root)}
    settings = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        " -c full_page_writes=off -c synchronous_commit=off"
    )
    commands = [
        [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync",
         "-E", "UTF8", "--locale=C"],
        [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "30",
         "-o", settings, "start"],
    ]  # fmt: skip
    for command in commands:
        try:
            subprocess.run(
                command, cwd=root, env=env, capture_output=True, text=True, check=True, **as_user
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", None) or str(exc)
            shutil.rmtree(root, ignore_errors=True)
            raise _NoServer(f"{Path(command[0]).name} failed: {detail.strip()[:300]}") from exc
    atexit.register(_stop_local_server, bindir, data, root, env, as_user)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def _stop_local_server(
    bindir: Path, data: Path, root: Path, env: dict[str, str], as_user: dict[str, Any]
) -> None:
    subprocess.run(
        [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
        cwd=root, env=env, capture_output=True, check=False, **as_user,
    )  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)


def _server_account() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise _NoServer("running as root and no `postgres` or `nobody` account to run it as")


def _major_version(initdb: str) -> float:
    try:
        return float(Path(initdb).parent.parent.name)
    except ValueError:
        return 0.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
