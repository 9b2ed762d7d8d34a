"""Recurring jobs through the real command (issue 8, item 3): managing schedules, firing
exactly once per fire time whatever the number of workers, downtime and catch-up."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from queuectl.scheduling import ScheduleService
from queuectl.store import open_store
from tests.conftest import Queuectl, assert_error, parse_time, wait_until
from tests.storetools import set_next_firing

pytestmark = pytest.mark.in_process


def schedules(q: Queuectl) -> dict[str, dict[str, object]]:
    return {item["name"]: item for item in q.json("schedule", "list")}


def run_burst(q: Queuectl) -> None:
    code, err = q.finish(q.start_workers("--burst"))
    assert code == 0, err


def test_schedule_add_shows_the_next_fire_time_in_its_zone(q: Queuectl) -> None:
    out = q.ok(
        "schedule", "add", "report", "--cron", "30 9 * * 1-5", "--tz", "Europe/Paris",
        "--queue", "reports", "--priority", "5", "--max-retries", "2", "--timeout", "90",
        "--env", "MODE=daily", "--", "echo", "report",
    )  # fmt: skip
    assert out.startswith("Schedule report added; next run at ")
    assert "09:30:00 Europe/Paris" in out
    listed = schedules(q)["report"]
    before = datetime.now(UTC)
    expected = croniter("30 9 * * 1-5", before.astimezone(ZoneInfo("Europe/Paris"))).get_next(
        datetime
    )
    assert parse_time(str(listed["next_fire_at"])) == expected.astimezone(UTC)
    assert listed["cron"] == "30 9 * * 1-5"
    assert listed["timezone"] == "Europe/Paris"
    assert listed["paused"] is False
    assert listed["last_fired_at"] is None
    assert listed["queue"] == "reports"
    assert listed["priority"] == 5
    assert listed["max_retries"] == 2
    assert listed["timeout"] == 90
    assert listed["env"] == {"MODE": "daily"}
    assert listed["command"] == "echo report"
    table = q.ok("schedule", "list")
    for shown in ("report", "Europe/Paris", "30 9 * * 1-5", "reports"):
        assert shown in table


def test_schedule_pause_resume_and_remove(q: Queuectl) -> None:
    q.ok("schedule", "add", "tick", "--cron", "*/5 * * * *", "--", "true")
    paused = q.json("schedule", "pause", "tick")
    assert paused["paused"] is True
    assert paused["next_fire_at"] is None
    resumed = q.json("schedule", "resume", "tick")
    assert resumed["paused"] is False
    assert parse_time(resumed["next_fire_at"]) > datetime.now(UTC)
    assert parse_time(resumed["next_fire_at"]).minute % 5 == 0
    assert q.ok("schedule", "remove", "tick") == "Schedule tick removed.\n"
    assert schedules(q) == {}
    assert "no schedule named 'tick'" in assert_error(q.run("schedule", "remove", "tick"), 1)
    assert_error(q.run("schedule", "pause", "tick"), 1)
    assert_error(q.run("schedule", "resume", "tick"), 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad", "--cron", "61 * * * *", "--", "true"], "invalid cron expression"),
        (["bad", "--cron", "* * *", "--", "true"], "invalid cron expression"),
        (["bad", "--cron", "* * * * *", "--tz", "Mars/Base", "--", "true"], "unknown time zone"),
        (["b d", "--cron", "* * * * *", "--", "true"], "invalid schedule name"),
        (["bad", "--", "true"], "needs --cron"),
        (["bad", "--cron", "* * * * *"], "needs a command"),
        (["bad", "--cron", "* * * * *", "--max-retries", "-1", "--", "true"], "max_retries"),
        (["taken", "--cron", "* * * * *", "--", "true"], "schedule 'taken' already exists"),
    ],
)
def test_schedule_add_refuses_bad_input(q_shared: Queuectl, args: list[str], message: str) -> None:
    if "taken" not in schedules(q_shared):
        q_shared.ok("schedule", "add", "taken", "--cron", "0 0 * * *", "--", "true")
    before = schedules(q_shared)
    assert message in assert_error(q_shared.run("schedule", "add", *args), 2)
    assert schedules(q_shared) == before


def test_concurrent_firing_enqueues_each_fire_time_once(q: Queuectl) -> None:
    """Eight workers' schedule ticks at the same moment: one of them wins each firing."""
    q.ok("schedule", "add", "race", "--cron", "* * * * *", "--", "true")
    due = datetime.now(UTC).replace(second=0, microsecond=0)
    set_next_firing(q.target, "race", due)
    results: list[int] = []
    start = threading.Barrier(8)

    def tick() -> None:
        store = open_store(q.target)
        try:
            start.wait()
            results.append(ScheduleService(store).fire_due())
        finally:
            store.close()

    threads = [threading.Thread(target=tick) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0] * 7 + [1]
    jobs = q.jobs()
    assert [job["id"] for job in jobs] == [f"race@{due:%Y%m%dT%H%M%SZ}"]
    assert parse_time(jobs[0]["scheduled_at"]) == due
    listed = schedules(q)["race"]
    assert parse_time(str(listed["last_fired_at"])) == due
    assert parse_time(str(listed["next_fire_at"])) == due + timedelta(minutes=1)


@pytest.mark.slow
def test_many_workers_enqueue_one_job_per_fire_time(q: Queuectl) -> None:
    """An every-second schedule (6th field: seconds) under six workers in two `worker
    start` groups, as on two hosts: consecutive fire times, one job each, each run once."""
    q.ok("schedule", "add", "beat", "--cron", "* * * * * *", "--", "echo", "beat")
    q.start_workers("--count", "3")
    q.start_workers("--count", "3")

    def enough() -> list[dict[str, object]] | None:
        done = q.jobs("--state", "completed")
        return done if len(done) >= 6 else None

    wait_until(enough, timeout=60, interval=0.5, message="six fired jobs to complete")
    q.ok("schedule", "pause", "beat")
    jobs = q.jobs()
    times = sorted(parse_time(str(job["scheduled_at"])) for job in jobs)
    assert len(times) == len(set(times))
    assert all(job["id"] == f"beat@{parse_time(str(job['scheduled_at'])):%Y%m%dT%H%M%SZ}"
               for job in jobs)  # fmt: skip
    # Every second between the first and the last firing got its job: none lost, none twice.
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
    assert gaps == [1.0] * (len(times) - 1)
    for job in q.jobs("--state", "completed"):
        assert job["attempts"] == 1
        assert len(q.history(str(job["id"]))) == 1
        assert job["output"] == "beat\n"


def test_missed_firings_are_skipped_after_downtime(q: Queuectl) -> None:
    now = datetime.now(UTC)
    minute = (now.minute + 30) % 60  # fired half an hour ago, and not again for 30 min
    q.ok("schedule", "add", "hourly", "--cron", f"{minute} * * * *", "--", "true")
    set_next_firing(q.target, "hourly", now - timedelta(hours=3))
    run_burst(q)
    assert q.jobs() == []
    listed = schedules(q)["hourly"]
    assert parse_time(str(listed["next_fire_at"])) > datetime.now(UTC)
    assert listed["last_fired_at"] is None


def test_catch_up_runs_the_most_recent_missed_firing(q: Queuectl) -> None:
    now = datetime.now(UTC)
    minute = (now.minute + 30) % 60
    q.ok("schedule", "add", "hourly", "--cron", f"{minute} * * * *", "--catch-up", "--", "true")
    set_next_firing(q.target, "hourly", now - timedelta(hours=3))
    run_burst(q)
    (job,) = q.jobs()
    fired = parse_time(str(job["scheduled_at"]))
    assert (fired.minute, fired.second) == (minute, 0)
    assert now - timedelta(hours=1) < fired < now
    assert job["state"] == "completed"
    assert job["id"] == f"hourly@{fired:%Y%m%dT%H%M%SZ}"
    assert parse_time(str(schedules(q)["hourly"]["last_fired_at"])) == fired


def test_paused_schedule_does_not_fire(q: Queuectl) -> None:
    q.ok("schedule", "add", "quiet", "--cron", "* * * * * *", "--paused", "--", "true")
    assert schedules(q)["quiet"]["paused"] is True
    run_burst(q)
    assert q.jobs() == []
