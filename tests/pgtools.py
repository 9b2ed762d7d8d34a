"""PostgreSQL for the tests: a fresh database per test, or a skip that says why.

A migrated database is not created for each test: CREATE DATABASE copies the whole template
through the write-ahead log (over 100 ms, and far more on a busy machine). A test's database
is emptied when the test ends and kept for the next one, under a new name, so that a process
the test left behind cannot reach it; one that fails the emptiness check is dropped."""

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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    import psycopg
    import psycopg.sql

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PREFIX = "queuectl_test_"  # every database the tests create; leftovers are dropped
# Advisory lock namespace of live test sessions: a session holds (OWNER_LOCK, token) on
# its admin connection while it lives, so a later run can tell its leftovers (lock free)
# from the databases of a run still going, even one on another machine.
OWNER_LOCK = 0x7174
CONNECT_TIMEOUT = 3  # seconds to decide that no server answers
RENAME_PATIENCE = 5.0  # seconds for the sessions a test left to end
# The tables and sequences to empty and restart after each test, read once from the template:
# every table the migrations create apart from their own record. One plain batch of
# statements, not a loop in PL/pgSQL: the test's backend is new, and each catalog lookup
# costs it a cache miss.
CONTENTS = """
SELECT 'table', n.nspname, c.relname FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'queuectl' AND c.relkind = 'r' AND c.relname <> 'queuectl_schema'
UNION ALL
SELECT 'sequence', schemaname, sequencename FROM pg_sequences WHERE schemaname = 'queuectl'
"""
# What a test could change in a database beyond its rows: schemas, tables, columns,
# defaults, indexes, constraints, functions, types, triggers, grants, settings, the
# migrations' record. An emptied database is reused only when this matches the template's.
# CREATE DATABASE copies the catalogs as they are, object ids included, so raw ids and
# stored expression trees compare as well as names and definitions, and reading them needs
# no name lookups (which a new backend pays for one by one). Ids from 16384 on are the
# user's (FirstNormalObjectId).
FINGERPRINT = """
SELECT md5(string_agg(item, E'\\n' ORDER BY item)) FROM (
    SELECT format('schema %s %s %s', oid, nspname, nspacl) FROM pg_namespace
    WHERE nspname !~ '^pg_(temp|toast_temp)_'  -- a session's temporary schema stays behind
    UNION ALL
    SELECT format('rel %s %s %s %s %s %s', oid, relnamespace, relname, relkind, relacl,
                  reloptions)
    FROM pg_class WHERE oid >= 16384
    UNION ALL
    SELECT format('col %s %s %s %s %s %s', attrelid, attnum, attname, atttypid, attnotnull,
                  attisdropped)
    FROM pg_attribute WHERE attrelid >= 16384
    UNION ALL
    SELECT format('default %s %s %s', adrelid, adnum, adbin) FROM pg_attrdef
    UNION ALL
    SELECT format('index %s %s %s %s %s %s %s', indexrelid, indrelid, indisunique, indkey,
                  indclass, indexprs, indpred)
    FROM pg_index WHERE indexrelid >= 16384
    UNION ALL
    SELECT format('constraint %s %s %s %s %s %s %s', oid, conrelid, conname, contype,
                  conkey, confkey, conbin)
    FROM pg_constraint WHERE oid >= 16384
    UNION ALL
    SELECT format('function %s %s %s %s', oid, proname, proargtypes, md5(prosrc))
    FROM pg_proc WHERE oid >= 16384
    UNION ALL
    SELECT format('type %s %s', oid, typname) FROM pg_type WHERE oid >= 16384
    UNION ALL
    SELECT format('trigger %s %s %s %s', oid, tgrelid, tgname, tgenabled) FROM pg_trigger
    UNION ALL
    SELECT format('extension %s', extname) FROM pg_extension
    UNION ALL
    SELECT format('setting %s %s', setrole, setconfig) FROM pg_db_role_setting
    WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
    UNION ALL
    SELECT format('migration %s', s) FROM queuectl.queuectl_schema s
) AS items(item)
"""


@dataclass
class _Session:
    """One per test process (pytest-xdist runs several): a server, a migrated template, and
    the emptied databases ready for the next test."""

    server: str
    admin: psycopg.Connection[tuple[Any, ...]]
    token: int
    template: str
    fingerprint: str  # what an emptied database must look like: the template's
    # The statements that empty a database the template's migrations made.
    emptying: psycopg.sql.Composed
    numbers: Iterator[int] = field(default_factory=itertools.count)
    ready: list[str] = field(default_factory=list)

    def new_name(self) -> str:
        return f"{PREFIX}{self.token}_{next(self.numbers)}"


_session: _Session | None = None
_unavailable: str | None = None  # why PostgreSQL cannot be had, once we know


@contextmanager
def fresh_database(*, migrated: bool = True) -> Iterator[str]:
    """The URL of a brand-new database for one test, dropped afterwards.

    `migrated=False` gives an empty one (no schema), for migration tests.
    """
    session = _get_session()
    if migrated and session.ready:
        name = session.ready.pop()
    else:
        name = session.new_name()
        source = session.template if migrated else "template0"
        session.admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    try:
        yield database_url(session.server, name)
    finally:
        if migrated:
            _keep_emptied(session, name)
        else:
            _drop(session, name)


def _drop(session: _Session, name: str) -> None:
    # FORCE: worker processes a test left behind must not keep the database alive.
    session.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _keep_emptied(session: _Session, name: str) -> None:
    """Rename the database out of reach of whatever the test left running, empty it, and
    keep it for the next test if it then looks exactly like the template; else drop it."""
    import psycopg

    renamed = session.new_name()
    try:
        _rename_away(session, name, renamed)
    except psycopg.Error:
        _drop(session, name)
        return
    url = database_url(session.server, renamed)
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT) as conn:
            conn.execute(session.emptying)
            conn.commit()
            clean = _fingerprint(conn) == session.fingerprint
    except psycopg.Error:
        clean = False
    if clean:
        session.ready.append(renamed)
    else:
        _drop(session, renamed)


def _rename_away(session: _Session, name: str, renamed: str) -> None:
    """ALTER DATABASE … RENAME, once the sessions still connected to it have ended."""
    import psycopg

    deadline = time.monotonic() + RENAME_PATIENCE
    while True:
        session.admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        try:
            session.admin.execute(f'ALTER DATABASE "{name}" RENAME TO "{renamed}"')
            return
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # a terminated backend takes a moment to go


def _fingerprint(conn: psycopg.Connection[tuple[Any, ...]]) -> str:
    row = conn.execute(FINGERPRINT).fetchone()
    conn.rollback()
    return str(row[0]) if row else ""


def _emptying(contents: list[tuple[str, str, str]]) -> psycopg.sql.Composed:
    """Statements that delete every row of the tables and restart the sequences, with
    foreign keys unchecked meanwhile (replica role: every table is emptied anyway). DELETE
    rather than TRUNCATE: a test's few rows go faster than new files for every table."""
    from psycopg import sql

    statements: list[sql.Composable] = [sql.SQL("SET LOCAL session_replication_role = replica")]
    for kind, schema, name in contents:
        form = "DELETE FROM {}" if kind == "table" else "ALTER SEQUENCE {} RESTART"
        statements.append(sql.SQL(form).format(sql.Identifier(schema, name)))
    return sql.SQL(";\n").join(statements)


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
    with psycopg.connect(database_url(server, template)) as conn:
        fingerprint = _fingerprint(conn)
        emptying = _emptying(conn.execute(CONTENTS).fetchall())
    session = _Session(server, admin, token, template, fingerprint, emptying)
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
    for name in [*session.ready, session.template]:
        with contextlib.suppress(Exception):
            _drop(session, name)
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
