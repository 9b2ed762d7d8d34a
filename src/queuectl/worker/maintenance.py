"""The maintenance thread: saves a running job's output, rescues other workers' jobs,
applies retention and fires schedules — apart from the heartbeat, so that none of it can
delay or stop a beat."""

from __future__ import annotations

import logging
import math
import os
import time
from typing import TYPE_CHECKING

from queuectl.core.errors import QueuectlError
from queuectl.core.settings import Settings
from queuectl.crashpoint import fault_point
from queuectl.service import QueueService
from queuectl.store.base import Store
from queuectl.worker.heartbeat import Running, lost
from queuectl.worker.tasks import OnCrash, PeriodicTask

if TYPE_CHECKING:
    from queuectl.scheduling import SchedulingStore

log = logging.getLogger("queuectl.worker")

OUTPUT_SAVE_INTERVAL = 1.0  # seconds between saves of a running job's output
RETENTION_INTERVAL = 60.0  # seconds between two retention steps
# A tuning and testing knob: seconds between retention steps instead of RETENTION_INTERVAL
# (tests cannot patch a constant inside worker processes they start).
RETENTION_INTERVAL_VARIABLE = "QUEUECTL_RETENTION_INTERVAL"
RETENTION_BATCH = 500  # jobs one retention step may delete
RETRY_AFTER_ERROR = 3.0  # seconds; the store could not be reached
SCHEDULE_INTERVAL = 1.0  # seconds between looks for due schedule firings
# Of lease-timeout, between two looks for stale jobs: a dead worker's job is rescued at most
# lease-timeout * (1 + RESCUE_FRACTION) after its last heartbeat (one cheap query a look).
RESCUE_FRACTION = 0.25
MAX_TICK = 1.0  # seconds


class Maintenance(PeriodicTask):
    task_name = "maintenance"

    def __init__(self, store: Store, worker_id: str, current: Running, on_crash: OnCrash) -> None:
        super().__init__(QueueService(store), worker_id, on_crash)
        self.store = store  # every role: schedules too
        self.current = current
        self._next = {
            "output": 0.0,
            "rescue": 0.0,
            "retention": time.monotonic() + retention_interval(),
            "schedules": 0.0,
        }
        self._saved: tuple[str, str] | None = None  # (job id, output) last written

    def tick(self, *, woken: bool) -> float:
        now = time.monotonic()
        try:
            settings = self.settings()
            if now >= self._next["output"]:
                self._save_output()
                self._next["output"] = now + OUTPUT_SAVE_INTERVAL
            if now >= self._next["rescue"]:
                self._rescue(settings)
                self._next["rescue"] = now + settings.lease_timeout * RESCUE_FRACTION
            if now >= self._next["retention"]:
                fault_point("retention")
                self.service.prune_by_retention(settings, RETENTION_BATCH)
                self._next["retention"] = now + retention_interval()
            if now >= self._next["schedules"]:
                fire_schedules(self.store)
                self._next["schedules"] = now + SCHEDULE_INTERVAL
        except QueuectlError as exc:
            log.warning("%s: maintenance failed: %s", self.worker_id, exc.message)
            return RETRY_AFTER_ERROR
        return max(0.01, min(MAX_TICK, min(self._next.values()) - time.monotonic()))

    def _save_output(self) -> None:
        running = self.current()
        if running is None:
            return
        fault_point("output")
        job, run = running
        output = run.output_so_far()
        if self._saved == (job.id, output) or (not output and self._saved is None):
            return
        if self.service.store.save_output(job, self.worker_id, output):
            self._saved = (job.id, output)
        elif not self.service.store.holds_claim(job, self.worker_id):
            lost(self.worker_id, running, self.current)

    def _rescue(self, settings: Settings) -> None:
        fault_point("rescue")
        for job in self.service.rescue_stale(settings):
            log.warning(
                "%s: rescued job %s from %s (heartbeat stale)",
                self.worker_id,
                job.id,
                job.locked_by,
            )


def fire_schedules(store: SchedulingStore) -> None:
    """Enqueue due schedule firings (scheduling.py keeps each one to a single job)."""
    from queuectl.scheduling import ScheduleService

    fault_point("schedules")
    ScheduleService(store).fire_due()


def retention_interval() -> float:
    """Seconds between retention steps: $QUEUECTL_RETENTION_INTERVAL if it is a positive
    number, else RETENTION_INTERVAL (a bad value must not stop a worker)."""
    text = os.environ.get(RETENTION_INTERVAL_VARIABLE, "")
    try:
        seconds = float(text)
    except ValueError:
        return RETENTION_INTERVAL
    return seconds if math.isfinite(seconds) and seconds > 0 else RETENTION_INTERVAL
