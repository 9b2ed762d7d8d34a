"""Moving jobs between stores: NDJSON export and import, and `store migrate`.

Jobs, attempts and schedules are written field by field from their dataclasses, so a
field added to a model travels without changes here.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from queuectl import __version__
from queuectl.core import settings as config
from queuectl.core.errors import InvalidJobSpec, QueuectlError, WrongState
from queuectl.core.fields import check_queue
from queuectl.core.ids import is_valid_job_id
from queuectl.core.models import Attempt, Job, JobState
from queuectl.core.plain import from_plain, plain_value, to_plain
from queuectl.core.schedule import Schedule, check_schedule_name, check_timezone
from queuectl.store.base import (
    JobRecord,
    JobStore,
    QueueSetting,
    QueueStore,
    ScheduleStore,
    StoreContents,
    StoredAttempt,
    StoreLifecycle,
    TransferStore,
    WorkerStore,
)
from queuectl.store.tables import CARRIED_TABLES

FORMAT = "queuectl-export"
# Bump when a reader of the old format could misread the new one. 2: the header lists the
# tables the export carries (an older queuectl would drop job dependencies on import).
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1 files carry the same records, without that list
PAUSE_POLL = 0.2  # seconds between checks for running jobs while `store migrate` waits


class ExportSource(StoreLifecycle, TransferStore, QueueStore, ScheduleStore, Protocol):
    """The roles of the store an export reads."""


class MigrationStore(ExportSource, JobStore, WorkerStore, Protocol):
    """The roles of the stores `store migrate` reads, pauses, writes and checks."""


# -- export -----------------------------------------------------------------------------


def export_lines(store: ExportSource, states: Sequence[JobState] = ()) -> Iterator[str]:
    """The store as NDJSON lines: a header, config, queues, schedules, then every job
    (in `states`) with its history, in enqueue order."""
    header = {
        "type": "header",
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "tables": sorted(CARRIED_TABLES),
        "queuectl": __version__,
        "exported_at": plain_value(store.now()),
    }
    yield _line(header)
    yield _line({"type": "config", "values": store.get_config()})
    for queue in store.list_queue_settings():
        yield _line({"type": "queue", **to_plain(queue)})
    for schedule in store.list_schedules():
        yield _line({"type": "schedule", "schedule": to_plain(schedule)})
    for record in store.iter_job_records(states):
        history = [
            {**to_plain(stored.attempt), "output": stored.output} for stored in record.history
        ]
        yield _line({"type": "job", "job": to_plain(record.job), "history": history})


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


# -- import -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportResult:
    jobs: int  # written
    skipped: int  # already in the store (with skip_existing)
    schedules: int


@dataclass
class _Reading:
    """What read_export() has gathered so far."""

    jobs: list[JobRecord] = dataclasses.field(default_factory=list)
    config: dict[str, str] = dataclasses.field(default_factory=dict)
    queues: list[QueueSetting] = dataclasses.field(default_factory=list)
    schedules: list[Schedule] = dataclasses.field(default_factory=list)
    job_lines: dict[str, int] = dataclasses.field(default_factory=dict)


def read_export(lines: Iterable[str]) -> StoreContents:
    """Parse and check every line of an export before anything is written; an error
    names its line (physical lines from 1; blank ones skipped)."""
    reading = _Reading()
    seen_header = False
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.rstrip("\r\n"))  # columns count within the line
        except json.JSONDecodeError as exc:
            raise InvalidJobSpec(f"invalid JSON: {exc.msg} at column {exc.colno}", number) from None
        try:
            if not isinstance(record, dict):
                raise InvalidJobSpec("expected a JSON object")
            if seen_header:
                _read_record(record, number, reading)
            else:
                _check_header(record)
                seen_header = True
        except QueuectlError as exc:
            raise InvalidJobSpec(exc.message, number) from None
    if not seen_header:
        raise InvalidJobSpec("empty input: expected a queuectl export (queuectl export > FILE)")
    return StoreContents(reading.jobs, reading.config, reading.queues, reading.schedules)


def _read_record(record: dict[str, Any], number: int, reading: _Reading) -> None:
    kind = record.get("type")
    if kind == "job":
        job_record = _job_record(record)
        job_id = job_record.job.id
        if job_id in reading.job_lines:
            also = reading.job_lines[job_id]
            raise InvalidJobSpec(f"duplicate job id {job_id!r} (also on line {also})")
        reading.job_lines[job_id] = number
        reading.jobs.append(job_record)
    elif kind == "config":
        reading.config.update(_config_values(record.get("values")))
    elif kind == "queue":
        queue = from_plain(QueueSetting, _without(record, "type"), "queue")
        check_queue(queue.name)
        reading.queues.append(queue)
    elif kind == "schedule":
        reading.schedules.append(_schedule(record.get("schedule")))
    elif kind == "header":
        raise InvalidJobSpec("a second header: concatenated exports are not supported")
    else:
        raise InvalidJobSpec(f"unknown record type {kind!r}")


def _check_header(record: dict[str, Any]) -> None:
    if record.get("type") != "header" or record.get("format") != FORMAT:
        raise InvalidJobSpec("not a queuectl export: the first line must be its header")
    version = record.get("version")
    if version not in READABLE_VERSIONS:
        raise InvalidJobSpec(
            f"export format version {version!r} is not supported (this queuectl reads "
            f"versions {', '.join(map(str, READABLE_VERSIONS))}): use the queuectl that "
            "wrote it, or a newer one"
        )
    if version == 1:
        return
    tables = record.get("tables")
    if not isinstance(tables, list) or not all(isinstance(name, str) for name in tables):
        raise InvalidJobSpec("the header's tables must be an array of names")
    unknown = sorted(set(tables) - set(CARRIED_TABLES))
    if unknown:
        raise InvalidJobSpec(
            f"the export carries table {unknown[0]!r}, which this queuectl cannot import: "
            "use a newer one"
        )


def _job_record(record: dict[str, Any]) -> JobRecord:
    unknown = sorted(set(record) - {"type", "job", "history"})
    if unknown:
        raise InvalidJobSpec(f"unknown key {unknown[0]!r}")
    job: Job = from_plain(Job, record.get("job"), "job")
    if not is_valid_job_id(job.id):
        raise InvalidJobSpec(f"job id {job.id!r} is not a valid id")
    check_queue(job.queue)
    history = record.get("history", [])
    if not isinstance(history, list):
        raise InvalidJobSpec(f"job {job.id}: history must be an array")
    attempts = []
    for item in history:
        if not isinstance(item, dict):
            raise InvalidJobSpec(f"job {job.id}: each attempt must be an object")
        output = item.get("output")
        if output is not None and not isinstance(output, str):
            raise InvalidJobSpec(f"job {job.id}: attempt output must be a string")
        attempt: Attempt = from_plain(Attempt, _without(item, "output"), f"job {job.id} attempt")
        if attempt.job_id != job.id:
            raise InvalidJobSpec(f"job {job.id}: an attempt belongs to job {attempt.job_id!r}")
        attempts.append(StoredAttempt(attempt, output))
    return JobRecord(job, tuple(attempts))


def _schedule(data: Any) -> Schedule:
    from queuectl.core.cron import check_cron, next_fire_after

    schedule: Schedule = from_plain(Schedule, data, "schedule")
    check_schedule_name(schedule.name)
    check_cron(schedule.cron)
    check_timezone(schedule.timezone)
    check_queue(schedule.queue)
    if schedule.paused or schedule.next_fire_at is not None:
        return schedule
    # Written by hand without a next firing: the first one from now on.
    first = next_fire_after(schedule.cron, schedule.timezone, datetime.now(UTC))
    return dataclasses.replace(schedule, next_fire_at=first)


def _config_values(values: Any) -> dict[str, str]:
    if not isinstance(values, dict):
        raise InvalidJobSpec("config: expected an object of values")
    checked = {}
    for key, value in values.items():
        if not isinstance(value, str):
            raise InvalidJobSpec(f"config {key}: expected a string value")
        checked[key] = config.normalize(key, value)
    return checked


def _without(record: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in record.items() if name != key}


def import_contents(
    store: TransferStore, contents: StoreContents, *, skip_existing: bool
) -> ImportResult:
    """Write what read_export() read, all or nothing."""
    jobs, schedules = store.insert_contents(contents, skip_existing=skip_existing)
    return ImportResult(jobs, len(contents.jobs) - jobs, schedules)


# -- store migrate ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MigrationReport:
    counts: dict[JobState, int]  # jobs copied per state
    attempts: int
    schedules: int
    queues: int
    paused: bool  # the source was paused by this migration, and stays so


def migrate_store(
    source: MigrationStore,
    target: MigrationStore,
    *,
    pause: bool,
    wait_timeout: float,
    merge: bool,
    say: Callable[[str], None],
) -> MigrationReport:
    """Copy everything from `source` to `target` and check that the counts agree.

    Active workers on the source are refused (they would change jobs while they are
    copied) unless `pause`: then every queue and schedule of the source is paused, and the
    copy starts once its running jobs have finished, within `wait_timeout` seconds.
    """
    current = config.Settings.from_stored(source.get_config())
    workers = source.list_workers(current.lease_timeout)
    if workers and not pause:
        raise WrongState(
            f"{len(workers)} worker(s) are running on the source store: stop them first "
            "(queuectl worker stop --wait), or pass --pause to pause its queues and wait "
            "for running jobs"
        )
    _check_target_empty(target, merge)
    queues = source.list_queue_settings()
    schedules = source.list_schedules()
    if pause:
        _pause_source(source, queues, schedules, wait_timeout, say)
    before = target.count_jobs_by_state() if merge else dict.fromkeys(JobState, 0)
    attempts_before = target.count_attempts() if merge else 0
    jobs = list(source.iter_job_records())
    contents = StoreContents(
        jobs=jobs, config=source.get_config(), queues=queues, schedules=schedules
    )
    say(f"Copying {len(jobs)} jobs, {len(schedules)} schedules and {len(queues)} queue settings...")
    target.insert_contents(contents, skip_existing=False)
    copied = dict.fromkeys(JobState, 0)
    for record in jobs:
        copied[record.job.state] += 1
    history = sum(len(record.history) for record in jobs)
    _verify(source, target, before, copied, attempts_before + history, schedules)
    return MigrationReport(copied, history, len(schedules), len(queues), pause)


def _check_target_empty(target: MigrationStore, merge: bool) -> None:
    if merge:
        return
    jobs = sum(target.count_jobs_by_state().values())
    schedules = len(target.list_schedules())
    if jobs or schedules:
        raise WrongState(
            f"the target store is not empty ({jobs} jobs, {schedules} schedules): "
            "pass --merge to add to it"
        )


def _pause_source(
    source: MigrationStore,
    queues: Sequence[QueueSetting],
    schedules: Sequence[Schedule],
    wait_timeout: float,
    say: Callable[[str], None],
) -> None:
    names = {queue.name for queue in queues} | {queue.name for queue in source.list_queues()}
    names |= {schedule.queue for schedule in schedules} | {"default"}
    for name in sorted(names):
        source.set_queue_paused(name, True)
    for schedule in schedules:
        source.set_schedule_paused(schedule.name, True, None)
    say(f"Paused {len(names)} queues and {len(schedules)} schedules of the source store.")
    deadline = time.monotonic() + wait_timeout
    while True:
        running = source.count_jobs_by_state()[JobState.PROCESSING]
        if not running:
            return
        if time.monotonic() > deadline:
            raise WrongState(
                f"{running} job(s) still running after {wait_timeout:g}s: the source stays "
                "paused (queuectl queue resume Q to undo); run again with a longer --timeout"
            )
        time.sleep(PAUSE_POLL)


def _verify(
    source: MigrationStore,
    target: MigrationStore,
    before: dict[JobState, int],
    copied: dict[JobState, int],
    attempts: int,
    schedules: Sequence[Schedule],
) -> None:
    after = target.count_jobs_by_state()
    for state in JobState:
        if after[state] - before[state] != copied[state]:
            raise WrongState(
                f"verification failed: the target gained {after[state] - before[state]} "
                f"{state.value} jobs, {copied[state]} were copied"
            )
    if target.count_attempts() != attempts:
        raise WrongState("verification failed: the target's attempt history does not match")
    names = {schedule.name for schedule in target.list_schedules()}
    if not {schedule.name for schedule in schedules} <= names:
        raise WrongState("verification failed: schedules are missing from the target")
    now = source.count_jobs_by_state()
    if now != copied:
        raise WrongState(
            f"the source changed during the copy ({sum(now.values())} jobs now, "
            f"{sum(copied.values())} copied): stop its workers and enqueuers, then copy again "
            "into an empty target"
        )
