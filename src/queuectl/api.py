"""The Python API: `Queue`, for programs that add and watch jobs without a shell.

A thin face on QueueService, the same one the command line and the dashboard use: the
same store resolution, the same validation of job options, the same errors. Documented,
with the names it promises to keep, in docs/python-api.md.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from queuectl.core.errors import (
    InvalidJobSpec,
    JobNotFound,
    StoreUnavailable,
    UsageError,
    WaitTimedOut,
)
from queuectl.core.fields import check_queue
from queuectl.core.models import FINISHED_STATES, Job, JobState, WorkerInfo
from queuectl.service import QueueService
from queuectl.store import default_target, open_store
from queuectl.store.base import JobFilter

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self, Unpack

IfExists = Literal["error", "skip"]
POLL_INTERVAL = 0.2  # seconds between two looks at the store in wait(), as `queuectl wait`
DEFAULT_LIMIT = 100  # jobs() returns the newest 100, as `queuectl list`
LIMIT_ALL_ABOVE = 2**62  # beyond any store's count, and within its 64-bit LIMIT


class JobOptions(TypedDict, total=False):
    """The options of a new job: the keys of `queuectl enqueue` JSON other than command,
    with a few Python types accepted beside the JSON ones."""

    id: str
    max_retries: int
    priority: int
    queue: str
    timeout: float | timedelta  # seconds
    scheduled_at: datetime | str | None  # naive: this machine's local time
    cwd: str | os.PathLike[str] | None
    env: Mapping[str, str] | None
    retry_on_exit: Sequence[int]
    fatal_on_exit: Sequence[int]
    dedupe_key: str | None
    depends_on: Sequence[str]
    on_complete: str  # the job's own hook commands (docs/HOOKS.md)
    on_fail: str
    on_dead: str
    on_cancel: str


@dataclass(frozen=True, slots=True)
class Status:
    """How many jobs are in each state, and the active workers, at one moment."""

    counts: Mapping[JobState, int]  # every state, read-only
    workers: tuple[WorkerInfo, ...]
    now: datetime  # the store's clock when it was read

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Queue:
    """One store of jobs: `Queue()` for the default one (`$QUEUECTL_DB`, else the file
    under `$QUEUECTL_HOME`), a file path, `sqlite:///path.db` or a `postgresql://` URL.

    Opens (creating or migrating) the store at once; close it with close() or a `with`
    block. Use one Queue per thread.
    """

    def __init__(self, target: str | os.PathLike[str] | None = None) -> None:
        # An empty target means the default one, as `--db ""` does.
        self._target = (os.fspath(target) if target is not None else "") or default_target()
        self._service: QueueService | None = QueueService(open_store(self._target))

    @property
    def target(self) -> str:
        """The store this queue uses, as resolved when it was opened."""
        return self._target

    # -- adding jobs ------------------------------------------------------------------

    def enqueue(
        self, command: str, *, if_exists: IfExists = "error", **options: Unpack[JobOptions]
    ) -> Job:
        """Add one job; returns it as stored (pending). `if_exists="skip"`: when an
        unfinished job holds the same dedupe_key, add nothing and return that job."""
        skip = _skip_duplicate_keys(if_exists)
        text = _job_json({"command": command, **options})
        return self._open().enqueue_json(text, skip_duplicate_keys=skip)

    def enqueue_many(
        self,
        jobs: Iterable[str | Mapping[str, Any] | tuple[str, Mapping[str, Any]]],
        *,
        if_exists: IfExists = "error",
    ) -> list[Job]:
        """Add every job or none, as `queuectl enqueue -` does; returns them in order.
        Each item is a command, a mapping with "command" and options, or a pair
        (command, options). An error names the bad item by its position from 1."""
        skip = _skip_duplicate_keys(if_exists)
        lines = [
            _job_json(_item_fields(item, number), number) for number, item in enumerate(jobs, 1)
        ]
        if not lines:
            return []
        return self._open().enqueue_lines(lines, skip_duplicate_keys=skip)

    # -- reading ----------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        """The job with this id; JobNotFound when there is none."""
        service = self._open()
        service.rescue_stale()  # as every command does: a lost run is shown as rescued
        return service.get_job(job_id)

    def jobs(
        self,
        state: JobState | str | Iterable[JobState | str] | None = None,
        *,
        queue: str | None = None,
        limit: int | None = DEFAULT_LIMIT,
    ) -> list[Job]:
        """The newest `limit` jobs (None: all) in enqueue order, optionally only those in
        `state` (one or several) or of `queue`."""
        if limit is not None and limit < 0:
            raise UsageError(f"limit must be >= 0 or None, got {limit}")
        if limit == 0:
            return []
        stored_limit = 0 if limit is None or limit > LIMIT_ALL_ABOVE else limit
        job_filter = JobFilter(
            states=_states(state),
            queue=check_queue(queue) if queue is not None else None,
            limit=stored_limit,
        )
        service = self._open()
        service.rescue_stale()
        return service.list_jobs(job_filter)

    def status(self) -> Status:
        """Job counts per state and the active workers."""
        service = self._open()
        service.rescue_stale()
        report = service.status()
        return Status(MappingProxyType(dict(report.counts)), tuple(report.workers), report.now)

    # -- changing jobs ----------------------------------------------------------------

    def cancel(self, job_id: str) -> Job:
        """Cancel a pending, failed or processing job (a running one is killed by its
        worker); returns it. WrongState when it had already finished."""
        service = self._open()
        cancelled = service.cancel([job_id])
        # Empty when it finished between the check and the cancel: then it stays as it ended.
        return cancelled[0] if cancelled else service.get_job(job_id)

    def retry(self, job_id: str) -> Job:
        """A dead or cancelled job back to pending, attempts reset; returns it.
        WrongState for a job in any other state."""
        return self._open().retry(job_id)

    # -- waiting ----------------------------------------------------------------------

    def wait(
        self,
        ids: str | Iterable[str],
        *,
        timeout: float | timedelta | None = None,
        poll_interval: float = POLL_INTERVAL,
    ) -> list[Job]:
        """Block until every job named is completed, dead or cancelled; returns them in
        the order given. WaitTimedOut after `timeout` seconds (None: no limit); the jobs
        keep running. Unknown ids raise JobNotFound before any waiting."""
        wanted = tuple(dict.fromkeys([ids] if isinstance(ids, str) else ids))
        seconds = _seconds("timeout", timeout) if timeout is not None else None
        if not (poll_interval > 0 and math.isfinite(poll_interval)):
            raise UsageError(f"poll_interval must be a number > 0, got {poll_interval}")
        service = self._open()
        for job_id in wanted:
            service.get_job(job_id)  # an unknown id is an error now, not a wait forever
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            service.rescue_stale()
            found = {job.id: job for job in service.list_jobs(JobFilter(ids=wanted, limit=0))}
            missing = [job_id for job_id in wanted if job_id not in found]
            if missing:  # deleted while we waited (prune, dlq purge)
                raise JobNotFound(f"job {missing[0]!r} was deleted while waiting for it")
            unfinished = [job_id for job_id in wanted if found[job_id].state not in FINISHED_STATES]
            if not unfinished:
                return [found[job_id] for job_id in wanted]
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise WaitTimedOut(
                    f"timed out with {len(unfinished)} of {len(wanted)} jobs unfinished "
                    f"({', '.join(unfinished[:5])}{', ...' if len(unfinished) > 5 else ''})"
                )
            time.sleep(poll_interval if left is None else min(poll_interval, left))

    # -- closing ----------------------------------------------------------------------

    def close(self) -> None:
        """Release the store's connection; later calls raise StoreUnavailable. Idempotent."""
        if self._service is not None:
            service, self._service = self._service, None
            service.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _open(self) -> QueueService:
        if self._service is None:
            raise StoreUnavailable("this Queue is closed")
        return self._service


def _skip_duplicate_keys(if_exists: str) -> bool:
    if if_exists not in ("error", "skip"):
        raise UsageError(f"if_exists must be 'error' or 'skip', got {if_exists!r}")
    return if_exists == "skip"


def _item_fields(item: object, number: int) -> dict[str, Any]:
    """One item of enqueue_many as enqueue JSON fields."""
    if isinstance(item, str):
        return {"command": item}
    if isinstance(item, Mapping):
        return dict(item)
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Mapping):
        return {"command": item[0], **item[1]}
    raise InvalidJobSpec(
        f"expected a command, a mapping or a (command, options) pair, got {type(item).__name__}",
        number,
    )


def _job_json(fields: Mapping[str, Any], number: int | None = None) -> str:
    """Python values to the enqueue JSON that the service validates, so that a job from
    Python meets exactly the rules of one from the command line."""
    plain = {key: _json_value(key, value, number) for key, value in fields.items()}
    return json.dumps(plain, ensure_ascii=False)


def _json_value(key: str, value: Any, number: int | None) -> Any:
    if isinstance(value, datetime):
        value = value.isoformat()
    elif isinstance(value, timedelta):
        value = value.total_seconds()
    elif isinstance(value, tuple):
        value = list(value)
    elif isinstance(value, Mapping):
        value = dict(value)
    elif isinstance(value, os.PathLike):
        value = os.fspath(value)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:  # not JSON: say so in the terms of enqueue
        raise InvalidJobSpec(f"{key}: {exc}", number) from None
    return value


def _states(state: JobState | str | Iterable[JobState | str] | None) -> tuple[JobState, ...]:
    if state is None:
        return ()
    names = [state] if isinstance(state, str) else list(state)
    states = []
    for name in names:
        try:
            states.append(JobState(name))
        except ValueError:
            known = ", ".join(known.value for known in JobState)
            raise UsageError(f"unknown state {name!r} (choose from {known})") from None
    return tuple(states)


def _seconds(name: str, value: float | timedelta) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if math.isnan(seconds) or seconds < 0:
        raise UsageError(f"{name} must be a number of seconds >= 0, got {value}")
    return seconds
