"""The checks of `queuectl doctor`: pure verdicts on facts the store gathered."""

from __future__ import annotations

import stat
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from queuectl.core.models import Job, WorkerInfo
from queuectl.core.redact import redact

WAL_LIMIT = 64 * 1024 * 1024  # bytes; a WAL this big means checkpoints cannot keep up
# A worker that died longer ago than this is history, not a current problem: its row stays
# (only stopped workers are cleaned up), so without a window every crash would fail forever.
STALE_WORKER_WINDOW = 86400.0  # seconds
CONNECTIONS_WARN = 0.8  # share of max_connections in use that doctor warns about
NAMES_SHOWN = 3  # ids named in a one-line reason; --json lists them all


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"  # worth knowing; does not change the exit status
    FAIL = "fail"  # a problem: `doctor` exits 1


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    reason: str
    items: tuple[str, ...] = ()  # what the reason is about: job ids, worker ids, paths

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "status": self.status.value,
            "reason": self.reason,
            "items": list(self.items),
        }


@dataclass(frozen=True, slots=True)
class FileMode:
    path: str
    mode: int  # st_mode
    is_dir: bool


@dataclass(frozen=True, slots=True)
class StoreFacts:
    """What a backend can tell about itself, beyond the jobs."""

    backend: str  # "sqlite" or "postgresql"
    location: str  # the file or the URL (printed through redact())
    schema_version: int  # 0: no queuectl schema here
    current_schema_version: int  # what this queuectl writes
    server: str | None = None  # PostgreSQL: version and connection
    wal_bytes: int | None = None  # SQLite: size of the -wal file (0 when there is none)
    files: tuple[FileMode, ...] = ()  # SQLite: the folder, the database and its side files
    connections: Connections | None = None  # PostgreSQL: the server's connection budget
    notifications: Notifications | None = None  # PostgreSQL: how idle workers are woken


@dataclass(frozen=True, slots=True)
class Connections:
    """Connections to a PostgreSQL server, as pg_stat_activity counts them."""

    queuectl: int  # those with queuectl's application_name (any database)
    total: int  # every client connection to the server
    limit: int  # max_connections


class Notifications(StrEnum):
    LISTEN = "listen"  # a probe notification arrived: idle workers wake at once
    OFF = "off"  # the URL says pool_mode=transaction: idle workers poll
    LOST = "lost"  # a probe notification never arrived (a pooler?): idle workers poll


def check_store(facts: StoreFacts) -> Check:
    where = redact(facts.server or f"SQLite {facts.location}")
    if facts.schema_version == 0:
        return Check("store", Status.FAIL, f"{where}: no queuectl schema (not a queuectl store)")
    if facts.schema_version > facts.current_schema_version:
        return Check(
            "store",
            Status.FAIL,
            f"{where}: schema version {facts.schema_version} is newer than this queuectl "
            f"({facts.current_schema_version}): upgrade queuectl",
        )
    return Check("store", Status.OK, f"{where}, schema version {facts.schema_version}")


def check_workers(
    active: int,
    stale: Sequence[WorkerInfo],
    lease_timeout: float,
    now: datetime,
    holding: Collection[str] | None = None,
) -> Check:
    """Workers that stopped sending heartbeats without stopping: killed, crashed, cut off.

    `holding`: ids of the workers that hold a processing job. A dead worker that holds
    none (its jobs were rescued) is history: a warning, until `worker forget --stale`.
    Without it, every worker that died within STALE_WORKER_WINDOW counts as a failure."""
    if holding is not None:
        recent = [w for w in stale if w.id in holding]
        rescued = [w for w in stale if w.id not in holding]
        if rescued and not recent:
            return Check(
                "workers",
                Status.WARN,
                f"{active} active; {len(rescued)} worker{_s(rescued)} died without stopping, "
                f"{'its' if len(rescued) == 1 else 'their'} jobs rescued: "
                f"{_names([w.id for w in rescued])} (`queuectl worker forget --stale` "
                "clears the records)",
                tuple(w.id for w in rescued),
            )
    else:
        recent = [w for w in stale if _age(w.last_heartbeat, now) <= STALE_WORKER_WINDOW]
    if recent:
        described = [
            f"{w.id} ({w.host}, pid {w.pid}, last heartbeat {_ago(w.last_heartbeat, now)})"
            for w in recent
        ]
        return Check(
            "workers",
            Status.FAIL,
            f"{len(recent)} worker{_s(recent)} stopped sending heartbeats without stopping "
            f"(lease-timeout {_seconds(lease_timeout)}): {_names(described)}; {active} active",
            tuple(w.id for w in recent),
        )
    if stale:
        return Check(
            "workers",
            Status.WARN,
            f"{active} active; {len(stale)} worker{_s(stale)} vanished more than a day ago "
            f"without stopping: {_names([w.id for w in stale])}",
            tuple(w.id for w in stale),
        )
    return Check("workers", Status.OK, f"{active} active, none stale")


def check_stuck_jobs(
    stuck: Sequence[Job],
    processing: Sequence[Job],
    workers: Mapping[str, WorkerInfo],
    lease_timeout: float,
    now: datetime,
) -> Check:
    """Jobs still `processing` that nothing runs: their worker is gone (nothing live has
    rescued them yet), or it is alive but running something else: a result it could not
    record, which no rescue takes back while that worker lives.

    `stuck` are the jobs of stale workers, `processing` all processing jobs, `workers` the
    stale and the active workers by id.
    """
    described = []
    ids = []
    for job in stuck:
        holder = workers.get(job.locked_by or "")
        if holder is not None:
            why = f"worker {holder.id}, last heartbeat {_ago(holder.last_heartbeat, now)}"
        elif job.locked_by:
            why = f"worker {job.locked_by}, stopped or unknown"
        else:
            why = "held by no worker"
        described.append(f"{job.id} ({why})")
        ids.append(job.id)
    stuck_ids = {job.id for job in stuck}
    for job in processing:
        alive = workers.get(job.locked_by or "")
        if (
            alive is not None
            and job.id not in stuck_ids
            and alive.current_job_id != job.id
            and job.locked_at is not None
            and _age(job.locked_at, now) > lease_timeout
        ):
            described.append(f"{job.id} (worker {alive.id} is alive but not running it)")
            ids.append(job.id)
    if not ids:
        return Check("stuck-jobs", Status.OK, "no job is processing past its lease")
    return Check(
        "stuck-jobs",
        Status.FAIL,
        f"{len(ids)} job{_s(ids)} processing past the lease of "
        f"{_seconds(lease_timeout)}: {_names(described)}",
        tuple(ids),
    )


def check_dlq(dead: int, threshold: int) -> Check:
    if dead > threshold:
        return Check(
            "dlq",
            Status.FAIL,
            f"{dead} dead jobs, above the threshold of {threshold}: see `queuectl dlq list`",
        )
    return Check(
        "dlq", Status.OK, f"{dead} dead job{'' if dead == 1 else 's'} (threshold {threshold})"
    )


HOOK_FAILURE_WINDOW = 86400.0  # seconds: `doctor` warns of hook failures this recent


def check_hooks(failures: Sequence[tuple[str, str]]) -> Check:
    """Hooks and webhooks that failed for good in the last HOOK_FAILURE_WINDOW, newest
    first, as (job id, what failed). A warning: the jobs' outcomes stand."""
    if not failures:
        return Check("hooks", Status.OK, "no hook or webhook failed in the last 24h")
    job_id, latest = failures[0]
    return Check(
        "hooks",
        Status.WARN,
        f"{len(failures)} hook/webhook deliver{'y' if len(failures) == 1 else 'ies'} failed "
        f"in the last 24h; latest, job {job_id}: {latest} (see `queuectl show ID`)",
        tuple(dict.fromkeys(job for job, _ in failures)),
    )


def check_connections(connections: Connections) -> Check:
    """Over CONNECTIONS_WARN of max_connections in use: the next workers may be refused."""
    used = f"{connections.total} of max_connections {connections.limit} in use"
    reason = f"queuectl holds {connections.queuectl}; {used}"
    if connections.total > connections.limit * CONNECTIONS_WARN:
        return Check(
            "connections",
            Status.WARN,
            f"{reason}: near the limit, new connections may be refused (see README, Scaling out)",
        )
    return Check("connections", Status.OK, reason)


def check_notifications(notifications: Notifications, poll_interval: float) -> Check:
    polling = f"idle workers poll every {_seconds(poll_interval)} (poll-interval)"
    if notifications is Notifications.LISTEN:
        return Check("notifications", Status.OK, "LISTEN/NOTIFY: idle workers wake at once")
    if notifications is Notifications.OFF:
        return Check("notifications", Status.OK, f"off (pool_mode=transaction): {polling}")
    return Check(
        "notifications",
        Status.WARN,
        "a notification did not arrive (a transaction-pooling PgBouncer? then add "
        f"pool_mode=transaction to the store URL): {polling}",
    )


def check_wal(wal_bytes: int, limit: int = WAL_LIMIT) -> Check:
    if wal_bytes > limit:
        return Check(
            "wal",
            Status.FAIL,
            f"the write-ahead log is {_size(wal_bytes)}, over {_size(limit)}: a long-lived "
            "reader keeps SQLite from checkpointing it",
        )
    return Check("wal", Status.OK, f"write-ahead log {_size(wal_bytes)} (limit {_size(limit)})")


def check_permissions(files: Sequence[FileMode]) -> Check:
    """Other users must not read jobs (commands, env, output) nor change them.

    Files: any access by group or others fails. The folder: write access fails (others
    could replace the database or plant its -wal file); read access only warns (others
    see the file names, not their contents).
    """
    failures: list[tuple[FileMode, str]] = []
    warnings: list[tuple[FileMode, str]] = []
    for entry in files:
        bits = stat.S_IMODE(entry.mode)
        write = bits & (stat.S_IWGRP | stat.S_IWOTH)
        read = bits & (stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        if write or (read and not entry.is_dir):
            failures.append((entry, _access(bits)))
        elif read:
            warnings.append((entry, _access(bits)))
    if failures:
        described = [f"{e.path} is {how} (mode {_octal(e)})" for e, how in failures]
        fix = "; ".join(f"chmod {'700' if e.is_dir else '600'} {e.path}" for e, _ in failures)
        return Check(
            "permissions",
            Status.FAIL,
            f"{_names(described)}: other users can read or change the jobs; fix: {fix}",
            tuple(e.path for e, _ in failures),
        )
    if warnings:
        described = [f"{e.path} is {how} (mode {_octal(e)})" for e, how in warnings]
        return Check(
            "permissions",
            Status.WARN,
            f"{_names(described)}: other users can see the store's file names",
            tuple(e.path for e, _ in warnings),
        )
    return Check("permissions", Status.OK, "only the owner can read or write the store")


def has_problem(checks: Sequence[Check]) -> bool:
    return any(check.status is Status.FAIL for check in checks)


def _access(bits: int) -> str:
    who = []
    if bits & 0o070:
        who.append("group")
    if bits & 0o007:
        who.append("others")
    kinds = []
    if bits & (stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH):
        kinds.append("readable")
    if bits & (stat.S_IWGRP | stat.S_IWOTH):
        kinds.append("writable")
    return f"{' and '.join(kinds)} by {' and '.join(who)}"


def _octal(entry: FileMode) -> str:
    return f"{stat.S_IMODE(entry.mode):04o}"


def _names(items: Sequence[str]) -> str:
    shown = ", ".join(items[:NAMES_SHOWN])
    more = len(items) - NAMES_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def _age(at: datetime, now: datetime) -> float:
    return (now - at).total_seconds()


def _ago(at: datetime, now: datetime) -> str:
    seconds = max(0, int(_age(at, now)))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _seconds(value: float) -> str:
    return f"{int(value)}s" if float(value).is_integer() else f"{value}s"


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _s(items: Sequence[object]) -> str:
    return "" if len(items) == 1 else "s"
