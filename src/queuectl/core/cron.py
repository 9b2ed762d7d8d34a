"""Cron arithmetic of schedules: validating expressions and planning firings.

croniter is imported here only, and this module only on schedule code paths (the
`schedule` command and the workers' schedule tick), never on the enqueue path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

from queuectl.core.errors import UsageError
from queuectl.core.schedule import Schedule

# A firing later than this is a missed one (the workers were down): skipped, or with
# catch-up the most recent one is run. Workers look about once a second, so an on-time
# firing is seconds late at worst, even on a loaded machine.
MISFIRE_GRACE = 60.0  # seconds
MAX_FIRINGS_PER_TICK = 100  # on-time firings one tick may enqueue for one schedule


@dataclass(frozen=True, slots=True)
class Firing:
    """What one look at a due schedule decided: the jobs to enqueue, the next firing."""

    fire_times: tuple[datetime, ...]
    next_fire_at: datetime
    missed: bool  # firings were missed while no worker ran (run or skipped per catch-up)


# Each field's name and range, in the order of an expression (seconds come sixth).
FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
    ("second", 0, 59),
)
NEVER_FIRES_FROM = datetime(2000, 1, 1, tzinfo=UTC)  # any start: a leap year is within reach


def check_cron(expression: str) -> str:
    """Five fields (minute hour day month weekday), or six with seconds last; a field out
    of range is named, and an expression no date matches (`0 3 31 2 *`) is refused."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise UsageError(
            f"invalid cron expression {expression!r}: expected 5 fields "
            "(minute hour day-of-month month day-of-week), or 6 with seconds last"
        )
    for (name, low, high), field in zip(FIELDS, fields, strict=False):
        problem = _field_problem(field, low, high)
        if problem:
            raise UsageError(
                f"invalid cron expression {expression!r}: {name} field {field!r}: {problem}"
            )
    if not croniter.is_valid(expression):
        raise UsageError(
            f"invalid cron expression {expression!r}: a field takes numbers, ranges (1-5), "
            "lists (1,15), steps (*/5) or names (mon, jan)"
        )
    try:
        croniter(expression, NEVER_FIRES_FROM).get_next(datetime)
    except CroniterBadDateError:
        raise UsageError(
            f"cron expression {expression!r} never fires: no date has that day of the month "
            "in those months"
        ) from None
    return " ".join(fields)


def _field_problem(field: str, low: int, high: int) -> str | None:
    """What is wrong with the numbers of one field (`61`, `*/0`, `5-99`), if anything.
    Names (`mon`, `jan`) and croniter's extensions (`L`, `#`) are left to croniter."""
    for part in field.split(","):
        span, _, step = part.partition("/")
        if step:
            if not step.isdigit():
                return None
            if int(step) == 0:
                return "a step must be at least 1"
        for bound in span.split("-"):
            if bound.isdigit() and not low <= int(bound) <= high:
                return f"{int(bound)} is outside {low}-{high}"
    return None


def next_fire_after(cron: str, timezone: str, moment: datetime) -> datetime:
    """The first fire time strictly after `moment`, in UTC."""
    local = moment.astimezone(ZoneInfo(timezone))
    found: datetime = croniter(cron, local).get_next(datetime)
    return found.astimezone(UTC)


def latest_fire_at_or_before(cron: str, timezone: str, moment: datetime) -> datetime:
    local = moment.astimezone(ZoneInfo(timezone)) + timedelta(microseconds=1)
    found: datetime = croniter(cron, local).get_prev(datetime)
    return found.astimezone(UTC)


def plan_firing(schedule: Schedule, now: datetime) -> Firing:
    """Which fire times of a due schedule to enqueue now.

    Firings due within MISFIRE_GRACE are on time and all run. Older ones were missed
    while no worker ran: they are skipped, unless the schedule has catch-up, which runs
    the most recent missed one. The next firing is always the first one after `now`.
    """
    assert schedule.next_fire_at is not None
    cutoff = now - timedelta(seconds=MISFIRE_GRACE)
    start = schedule.next_fire_at
    missed_latest: datetime | None = None
    if start < cutoff:
        missed_latest = latest_fire_at_or_before(schedule.cron, schedule.timezone, cutoff)
        start = next_fire_after(schedule.cron, schedule.timezone, cutoff)
    on_time: list[datetime] = []
    moment = start
    while moment <= now and len(on_time) < MAX_FIRINGS_PER_TICK:
        on_time.append(moment)
        moment = next_fire_after(schedule.cron, schedule.timezone, moment)
    missed = missed_latest is not None and missed_latest >= schedule.next_fire_at
    fire_times = list(on_time)
    if schedule.catch_up and missed and missed_latest is not None:
        fire_times.insert(0, missed_latest)
    return Firing(tuple(fire_times), next_fire_after(schedule.cron, schedule.timezone, now), missed)
