"""The heartbeat thread: proves the worker alive, guards its claim, saves live output,
picks up stop requests, rescues other workers' jobs and applies retention."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable

from queuectl.core.errors import QueuectlError
from queuectl.core.models import Job
from queuectl.core.settings import Settings
from queuectl.runner import ShellRun
from queuectl.service import QueueService

log = logging.getLogger("queuectl.worker")

MAX_HEARTBEAT_INTERVAL = 2.0  # seconds; SPEC: at least every lease-timeout / 3
OUTPUT_SAVE_INTERVAL = 1.0  # seconds between saves of a running job's output
RETENTION_INTERVAL = 60.0  # seconds between two retention steps
# A tuning and testing knob: seconds between retention steps instead of RETENTION_INTERVAL
# (tests cannot patch a constant inside worker processes they start).
RETENTION_INTERVAL_VARIABLE = "QUEUECTL_RETENTION_INTERVAL"
RETENTION_BATCH = 500  # jobs one retention step may delete
RETRY_AFTER_ERROR = 3.0  # seconds; the store could not be reached
MAX_TICK = 0.5  # seconds; how soon a shortened lease-timeout is noticed
SCHEDULE_INTERVAL = 1.0  # seconds between looks for due schedule firings
# Of lease-timeout, between two looks for stale jobs: a dead worker's job is rescued at most
# lease-timeout * (1 + RESCUE_FRACTION) after its last heartbeat (one cheap query a look).
RESCUE_FRACTION = 0.25


class Heartbeat(threading.Thread):
    """Runs beside the job loop with its own store connection (SQLite connections are not
    shared across threads), so a long job never delays the heartbeat."""

    def __init__(
        self,
        service: QueueService,
        worker_id: str,
        current: Callable[[], tuple[Job, ShellRun] | None],
        on_stop_request: Callable[[], None],
        status: Callable[[], str],
    ) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.service = service
        self.worker_id = worker_id
        self.current = current
        self.on_stop_request = on_stop_request
        self.status = status
        self._wake = threading.Event()
        self._finished = False
        self._next = {
            "beat": 0.0,
            "output": 0.0,
            "rescue": 0.0,
            "retention": time.monotonic() + retention_interval(),
            "schedules": 0.0,
        }
        self._saved: tuple[str, str] | None = None  # (job id, output) last written
        self._lease = float("inf")  # the lease-timeout the last beat was paced for

    def wake(self) -> None:
        """Beat now (another process just cancelled our job, say); signal-handler safe."""
        self._wake.set()

    def finish(self) -> None:
        self._finished = True
        self._wake.set()

    def run(self) -> None:
        try:
            while not self._finished:
                woken = self._wake.is_set()
                self._wake.clear()
                delay = self._tick(force_beat=woken)
                self._wake.wait(delay)
        finally:
            self.service.store.close()

    def _tick(self, *, force_beat: bool) -> float:
        """Do whatever is due; returns the seconds until something is due again."""
        now = time.monotonic()
        try:
            current = self.service.settings()
            # A shorter lease applies to this worker at once: beat now, or a rescuer using
            # the new lease could take a live worker for a dead one.
            if current.lease_timeout < self._lease:
                force_beat = True
            self._lease = current.lease_timeout
            if force_beat or now >= self._next["beat"]:
                self._beat()
                self._next["beat"] = now + min(current.lease_timeout / 3, MAX_HEARTBEAT_INTERVAL)
            if now >= self._next["output"]:
                self._save_output()
                self._next["output"] = now + OUTPUT_SAVE_INTERVAL
            if now >= self._next["rescue"]:
                self._rescue(current)
                self._next["rescue"] = now + current.lease_timeout * RESCUE_FRACTION
            if now >= self._next["retention"]:
                self.service.prune_by_retention(current, RETENTION_BATCH)
                self._next["retention"] = now + retention_interval()
            if now >= self._next["schedules"]:
                fire_schedules(self.service)
                self._next["schedules"] = now + SCHEDULE_INTERVAL
        except QueuectlError as exc:
            log.warning("%s: heartbeat failed: %s", self.worker_id, exc.message)
            self._next["beat"] = now + RETRY_AFTER_ERROR
            return RETRY_AFTER_ERROR
        return max(0.01, min(MAX_TICK, min(self._next.values()) - time.monotonic()))

    def _beat(self) -> None:
        store = self.service.store
        status = self.status()
        if store.heartbeat(self.worker_id, self._current_job_id(), status):
            self.on_stop_request()
            if status != "stopping":
                # Report "stopping" now, not a beat later: a `worker stop` on another
                # host sees this row only, and `--wait` shows the request was heard.
                self._wake.set()
        running = self.current()
        if running is not None and not store.holds_claim(running[0], self.worker_id):
            self._lost(*running)

    def _save_output(self) -> None:
        running = self.current()
        if running is None:
            return
        job, run = running
        output = run.output_so_far()
        if self._saved == (job.id, output) or (not output and self._saved is None):
            return
        if self.service.store.save_output(job, self.worker_id, output):
            self._saved = (job.id, output)
        elif not self.service.store.holds_claim(job, self.worker_id):
            self._lost(job, run)

    def _lost(self, job: Job, run: ShellRun) -> None:
        """The claim is gone (cancelled, or rescued from a worker thought dead): the run
        must not go on, and its result will not be recorded (finish is fenced)."""
        if run.kill_reason is None:
            log.warning(
                "%s: job %s was cancelled or taken from this worker; killing it",
                self.worker_id,
                job.id,
            )
            run.kill("the job was cancelled or taken from this worker")

    def _rescue(self, current: Settings) -> None:
        for job in self.service.rescue_stale(current):
            log.warning(
                "%s: rescued job %s from %s (heartbeat stale)",
                self.worker_id,
                job.id,
                job.locked_by,
            )

    def _current_job_id(self) -> str | None:
        running = self.current()
        return running[0].id if running else None


def fire_schedules(service: QueueService) -> None:
    """Enqueue due schedule firings (scheduling.py keeps each one to a single job)."""
    from queuectl.scheduling import ScheduleService

    ScheduleService(service.store).fire_due()


def retention_interval() -> float:
    """Seconds between retention steps: $QUEUECTL_RETENTION_INTERVAL if it is a positive
    number, else RETENTION_INTERVAL (a bad value must not stop a worker)."""
    text = os.environ.get(RETENTION_INTERVAL_VARIABLE, "")
    try:
        seconds = float(text)
    except ValueError:
        return RETENTION_INTERVAL
    return seconds if math.isfinite(seconds) and seconds > 0 else RETENTION_INTERVAL
