"""Reading and writing a whole store's contents (export, import, `store migrate`): the
control flow both backends share. Each backend passes a ContentsWriter bound to its open
transaction, which runs its own SQL; this module decides what is written, and in what
order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from queuectl.core.errors import DuplicateJobId, DuplicateSchedule
from queuectl.store.records import JobRecord, QueueSetting, StoreContents, StoredAttempt
from queuectl.store.rows import TimeReader, attempt_from_row

if TYPE_CHECKING:
    from queuectl.core.models import Job
    from queuectl.core.schedule import Schedule


class ContentsWriter(Protocol):
    """One backend's statements for writing contents, inside one transaction."""

    def has_job(self, job_id: str) -> bool: ...

    def insert_job(self, record: JobRecord) -> None:
        """The job's row and its history's rows, every field a column holds."""
        ...

    def link_dependencies(self, jobs: Sequence[Job]) -> None:
        """The dependency edges of written jobs, from their depends_on, and what each
        waits for (a dependency not in the store counts as completed)."""
        ...

    def set_config(self, key: str, value: str) -> None: ...

    def set_queue(self, queue: QueueSetting) -> None: ...

    def has_schedule(self, name: str) -> bool: ...

    def insert_schedule(self, schedule: Schedule) -> None: ...


def write_contents(
    writer: ContentsWriter, contents: StoreContents, *, skip_existing: bool
) -> tuple[int, int]:
    """Write jobs with their histories and dependencies, config, queue settings and
    schedules. An id or schedule name already there is DuplicateJobId/DuplicateSchedule
    unless `skip_existing`. Returns how many jobs and schedules were written."""
    written: list[Job] = []
    for record in contents.jobs:
        if writer.has_job(record.job.id):
            if skip_existing:
                continue
            raise DuplicateJobId(f"job id {record.job.id!r} already exists")
        writer.insert_job(record)
        written.append(record.job)
    # After every job: a dependency may come later in the contents than its dependent.
    writer.link_dependencies(written)
    for key, value in (contents.config or {}).items():
        writer.set_config(key, value)
    for queue in contents.queues:
        writer.set_queue(queue)
    schedules = 0
    for schedule in contents.schedules:
        if writer.has_schedule(schedule.name):
            if skip_existing:
                continue
            raise DuplicateSchedule(f"schedule {schedule.name!r} already exists")
        writer.insert_schedule(schedule)
        schedules += 1
    return len(written), schedules


def job_records(
    jobs: Sequence[Job], attempt_rows: Iterable[Sequence[Any]], to_time: TimeReader
) -> Iterator[JobRecord]:
    """Jobs with their histories, from rows of ATTEMPT_COLUMNS + output in history order."""
    history: dict[str, list[StoredAttempt]] = {job.id: [] for job in jobs}
    for row in attempt_rows:
        history[row[0]].append(StoredAttempt(attempt_from_row(row[:9], to_time), row[9]))
    for job in jobs:
        yield JobRecord(job, tuple(history[job.id]))


def queue_setting_from_row(row: Sequence[Any]) -> QueueSetting:
    """A queue's settings from a row of `name, paused, max_running, rate_count, rate_period,
    webhook_url`, the columns both backends select for an export."""
    return QueueSetting(row[0], bool(row[1]), *row[2:])


def queue_setting_values(queue: QueueSetting) -> tuple[Any, ...]:
    """A queue's settings as parameters, in that same column order (both backends' upsert)."""
    return (
        queue.name,
        queue.paused,
        queue.max_running,
        queue.rate_count,
        queue.rate_period,
        queue.webhook_url,
    )
