"""Planning schedule firings: on time, missed during downtime, catch-up, time zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from queuectl.core.cron import check_cron, next_fire_after, plan_firing
from queuectl.core.errors import UsageError
from queuectl.core.schedule import Schedule, firing_job, firing_job_id

NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)


def schedule(cron: str, next_fire_at: datetime, *, catch_up: bool = False) -> Schedule:
    return Schedule("s", cron, "UTC", "true", catch_up=catch_up, next_fire_at=next_fire_at)


def test_an_on_time_firing_runs_and_the_next_one_is_after_now() -> None:
    firing = plan_firing(schedule("*/5 * * * *", NOW), NOW + timedelta(seconds=20))
    assert firing.fire_times == (NOW,)
    assert firing.next_fire_at == NOW + timedelta(minutes=5)
    assert not firing.missed


def test_every_due_second_within_the_grace_runs_once() -> None:
    firing = plan_firing(schedule("* * * * * *", NOW - timedelta(seconds=3)), NOW)
    assert firing.fire_times == tuple(NOW - timedelta(seconds=n) for n in (3, 2, 1, 0))
    assert firing.next_fire_at == NOW + timedelta(seconds=1)


def test_firings_missed_during_downtime_are_skipped() -> None:
    firing = plan_firing(
        schedule("0 * * * *", NOW - timedelta(hours=5)), NOW + timedelta(minutes=30)
    )
    assert firing.fire_times == ()
    assert firing.missed
    assert firing.next_fire_at == NOW + timedelta(hours=1)


def test_catch_up_runs_only_the_most_recent_missed_firing() -> None:
    due = schedule("0 * * * *", NOW - timedelta(hours=5), catch_up=True)
    firing = plan_firing(due, NOW + timedelta(minutes=30))
    assert firing.fire_times == (NOW,)
    assert firing.next_fire_at == NOW + timedelta(hours=1)


def test_the_expression_is_read_in_its_time_zone() -> None:
    winter = next_fire_after("0 9 * * *", "Europe/Paris", NOW)
    summer = next_fire_after("0 9 * * *", "Europe/Paris", NOW.replace(month=7))
    assert winter == datetime(2026, 1, 16, 8, 0, tzinfo=UTC)
    assert summer == datetime(2026, 7, 16, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize("expression", ["", "* * * *", "61 * * * *", "* * * * * * * *", "x"])
def test_bad_cron_expressions_are_refused(expression: str) -> None:
    with pytest.raises(UsageError, match="invalid cron expression"):
        check_cron(expression)


def test_a_firing_job_carries_the_schedule_options_and_fire_time() -> None:
    stored = Schedule("nightly", "0 3 * * *", "UTC", "./run", queue="q", priority=4,
                      max_retries=1, timeout=9.0, env={"A": "b"})  # fmt: skip
    job = firing_job(stored, NOW)
    assert job.id == firing_job_id("nightly", NOW) == "nightly@20260115T120000Z"
    assert (job.queue, job.priority, job.max_retries, job.timeout) == ("q", 4, 1, 9.0)
    assert job.scheduled_at == NOW
    assert job.env == {"A": "b"}
