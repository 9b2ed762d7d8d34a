"""open_store(): the one place that turns a target into a backend."""

from __future__ import annotations

import os

from queuectl.core.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (enqueue start-up)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from pathlib import Path

    from queuectl.core.clock import Clock
    from queuectl.core.models import Attempt, Job, JobState, WorkerInfo
    from queuectl.store.base import Store
    from queuectl.store.postgres.reads import PostgresReads
    from queuectl.store.records import HookEvent

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def default_target() -> str:
    """`$QUEUECTL_DB`, else `$QUEUECTL_HOME/queuectl.db` (SPEC 1)."""
    from_env = os.environ.get("QUEUECTL_DB")
    if from_env:
        return from_env
    return os.path.join(queuectl_home(), "queuectl.db")


def queuectl_home() -> str:
    """`$QUEUECTL_HOME`, else `$XDG_DATA_HOME/queuectl`, else `~/.local/share/queuectl`."""
    home = os.environ.get("QUEUECTL_HOME")
    if not home:
        data = os.environ.get("XDG_DATA_HOME") or os.path.join(
            os.path.expanduser("~"), ".local", "share"
        )
        home = os.path.join(data, "queuectl")
    return home


# A libpq key=value connection string (`host=db1 dbname=jobs user=q`) starts with one of
# these: such a target is PostgreSQL too, never a file named after its (password) text.
LIBPQ_KEYWORDS = frozenset(
    {"host", "hostaddr", "port", "dbname", "user", "password", "passfile", "service",
     "sslmode", "connect_timeout", "application_name", "options"}
)  # fmt: skip


def is_postgres(target: str) -> bool:
    if target.startswith(POSTGRES_SCHEMES):
        return True
    keyword, equals, _ = target.lstrip().partition("=")
    return bool(equals) and keyword.strip() in LIBPQ_KEYWORDS


def sqlite_path(target: str) -> Path:
    from pathlib import Path

    return Path(sqlite_file(target))


def sqlite_file(target: str) -> str:
    """The file name of a SQLite target (as a str: pathlib is slow to import)."""
    if target.startswith("sqlite:///"):
        return target.removeprefix("sqlite://")
    if target.startswith("sqlite:"):
        raise UsageError(f"invalid store {target!r}: use sqlite:///absolute/path.db")
    if "://" in target:
        raise UsageError(
            f"unknown store {target!r}: use a file path, sqlite:///path.db "
            "or postgresql://user@host:port/dbname"
        )
    return os.path.expanduser(target)


def quick_enqueue(target: str | None, texts: Sequence[str], *, lines: bool) -> list[str] | None:
    """`enqueue` on the lean path where it applies (an existing store at the current
    schema, plain jobs; on PostgreSQL, psycopg2 installed): the new ids. None when it does
    not apply and nothing was written: then open_store() and QueueService do it, with the
    same rules."""
    target = target or default_target()
    if is_postgres(target):
        from queuectl.store import postgres_enqueue

        return postgres_enqueue.insert_plain_jobs(target, texts, lines=lines)
    from queuectl.store.sqlite_enqueue import insert_plain_jobs

    return insert_plain_jobs(sqlite_file(target), texts, lines=lines)


def quick_status(
    target: str | None,
) -> tuple[dict[JobState, int], list[WorkerInfo], datetime] | None:
    """`status`'s counts, workers and time on the lean path where it applies (see
    _quick_reads); None when it does not: then open_store() and QueueService do it."""
    reads = _quick_reads(target)
    if reads is None:
        return None
    with reads:
        return reads.status()


def quick_job(
    target: str | None, job_id: str
) -> tuple[Job, list[Attempt], datetime, list[HookEvent]] | None:
    """`show`'s job, history, time and hook deliveries on the lean path where it applies
    (see _quick_reads); None when it does not, or no such job: then open_store() and
    QueueService do it."""
    reads = _quick_reads(target)
    if reads is None:
        return None
    with reads:
        return reads.job(job_id)


def _quick_reads(target: str | None) -> PostgresReads | None:
    """Reads over psycopg2 for a PostgreSQL store at the current schema with no run to
    rescue: psycopg 3, the full path's driver, alone takes longer to import than the
    whole command on this path. SQLite's full path starts about as fast: None."""
    target = target or default_target()
    if not is_postgres(target):
        return None
    from queuectl.store.postgres.reads import open_reads

    return open_reads(target)


def is_default_location(target: str | None) -> bool:
    """True when neither `--db` nor $QUEUECTL_DB names the store: $QUEUECTL_HOME's."""
    return not target and not os.environ.get("QUEUECTL_DB")


def require_existing(target: str | None) -> None:
    """Refuse a SQLite store that does not exist yet (SPEC 1): a command that only reads
    must not make a mistyped `--db` look like an empty queue. A PostgreSQL database exists
    or fails to connect, and an empty one is given its schema as any command would."""
    target = target or default_target()
    if not is_postgres(target) and not os.path.isfile(sqlite_file(target)):
        from queuectl.core.errors import StoreUnavailable

        raise StoreUnavailable(
            f"no queue at {sqlite_file(target)}; `enqueue` or `worker start` creates it"
        )


def open_store(
    target: str | None = None,
    *,
    durable: bool = True,
    clock: Clock | None = None,
    migrate: bool = True,
    create_folders: bool = True,
) -> Store:
    """Open (and by default create or migrate) the store at `target`. Without
    `create_folders` a SQLite store is created only in a folder that exists already."""
    target = target or default_target()
    store: Store
    if is_postgres(target):
        from queuectl.store.postgres import PostgresStore

        store = PostgresStore(target, durable=durable)
    else:
        from queuectl.store.sqlite import SqliteStore

        path = sqlite_path(target)
        if not create_folders and not path.parent.is_dir():
            from queuectl.core.errors import StoreUnavailable

            raise StoreUnavailable(
                f"cannot create a store at {path}: the folder {path.parent} does not exist "
                "(queuectl creates folders only for its default location)"
            )
        store = SqliteStore(path, durable=durable, clock=clock)
    if migrate:
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
    return store


def open_existing_store(target: str | None = None) -> Store:
    """Open a store that must already exist, creating nothing: for `doctor`, which must not
    report a fresh empty store at a mistyped path as healthy. The schema is left as found."""
    target = target or default_target()
    if not is_postgres(target):
        path = sqlite_path(target)
        if not path.is_file():
            from queuectl.core.errors import StoreUnavailable

            raise StoreUnavailable(f"no store at {path}")
    return open_store(target, migrate=False)
