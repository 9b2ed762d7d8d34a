"""Use cases of recurring jobs: managing schedules, and the workers' firing of due ones."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Protocol

from queuectl.core.errors import ScheduleNotFound
from queuectl.core.schedule import Schedule, check_schedule_name, firing_job
from queuectl.store.base import ScheduleStore, StoreLifecycle

log = logging.getLogger("queuectl.worker")


class SchedulingStore(StoreLifecycle, ScheduleStore, Protocol):
    """The roles of the store that recurring jobs use."""


class ScheduleService:
    def __init__(self, store: SchedulingStore) -> None:
        self.store = store

    def add(self, schedule: Schedule) -> Schedule:
        """Store a validated schedule with its first fire time after now."""
        from queuectl.core.cron import next_fire_after

        now = self.store.now()
        first = next_fire_after(schedule.cron, schedule.timezone, now)
        stored = replace(
            schedule,
            created_at=now,
            next_fire_at=None if schedule.paused else first,
            last_fired_at=None,
        )
        self.store.insert_schedule(stored)
        return stored

    def list(self) -> list[Schedule]:
        return self.store.list_schedules()

    def get(self, name: str) -> Schedule:
        found = self.store.list_schedules(check_schedule_name(name))
        if not found:
            raise ScheduleNotFound(f"no schedule named {name!r}")
        return found[0]

    def remove(self, name: str) -> None:
        """Delete a schedule; the jobs it already enqueued stay."""
        if not self.store.delete_schedule(check_schedule_name(name)):
            raise ScheduleNotFound(f"no schedule named {name!r}")

    def pause(self, name: str) -> Schedule:
        """No firings until resumed; those that fall in between are skipped."""
        if not self.store.set_schedule_paused(check_schedule_name(name), True, None):
            raise ScheduleNotFound(f"no schedule named {name!r}")
        return self.get(name)

    def resume(self, name: str) -> Schedule:
        """Fire again from the first fire time after now."""
        from queuectl.core.cron import next_fire_after

        schedule = self.get(name)
        first = next_fire_after(schedule.cron, schedule.timezone, self.store.now())
        self.store.set_schedule_paused(schedule.name, False, first)
        return self.get(name)

    def fire_due(self) -> int:
        """Enqueue the due firings of every schedule; returns the jobs this call enqueued.

        Any number of workers on any number of hosts may call this at once: each firing is
        enqueued by whichever moves the schedule's next_fire_at first (a guarded update),
        under a job id derived from schedule and fire time.
        """
        due = self.store.list_due_schedules()
        if not due:
            return 0
        from queuectl.core.cron import plan_firing

        now = self.store.now()
        enqueued = 0
        for schedule in due:
            try:
                firing = plan_firing(schedule, now)
            except (ValueError, KeyError) as exc:  # a zone this machine's tzdata lacks
                log.error("schedule %s cannot fire here: %s", schedule.name, exc)
                continue
            jobs = [firing_job(schedule, moment) for moment in firing.fire_times]
            if self.store.fire_schedule(schedule, jobs, firing.next_fire_at):
                enqueued += len(jobs)
                if firing.missed and not schedule.catch_up:
                    log.info("schedule %s: skipped firings missed while down", schedule.name)
                for job in jobs:
                    log.info("schedule %s: enqueued job %s", schedule.name, job.id)
        return enqueued
