"""The heartbeat thread: proves the worker alive and guards its claim; nothing else.

Rescue, retention, schedules and output saving run in the maintenance thread, so nothing
they do (a slow prune, a broken schedule) can delay or stop a beat.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from queuectl.core.errors import QueuectlError
from queuectl.core.models import Job
from queuectl.crashpoint import fault_point
from queuectl.runner import ShellRun
from queuectl.service import QueueService
from queuectl.worker.tasks import OnCrash, PeriodicTask

log = logging.getLogger("queuectl.worker")

MAX_HEARTBEAT_INTERVAL = 2.0  # seconds; SPEC: at least every lease-timeout / 3
RETRY_AFTER_ERROR = 1.0  # seconds; the store could not be reached
MAX_TICK = 1.0  # seconds; how soon a shortened lease-timeout is noticed

Running = Callable[[], tuple[Job, ShellRun] | None]


class Heartbeat(PeriodicTask):
    """Beats at least every lease-timeout / 3, picks up stop requests made through the
    store, and kills the running job when its claim is gone (cancelled, or rescued from a
    worker thought dead)."""

    task_name = "heartbeat"

    def __init__(
        self,
        service: QueueService,
        worker_id: str,
        current: Running,
        on_stop_request: Callable[[], None],
        status: Callable[[], str],
        on_crash: OnCrash,
    ) -> None:
        super().__init__(service, worker_id, on_crash)
        self.current = current
        self.on_stop_request = on_stop_request
        self.status = status
        self._next_beat = 0.0
        self._lease = float("inf")  # the lease-timeout the last beat was paced for

    def tick(self, *, woken: bool) -> float:
        now = time.monotonic()
        try:
            fault_point("heartbeat")
            lease = self.settings().lease_timeout
            # A shorter lease applies to this worker at once: beat now, or a rescuer using
            # the new lease could take a live worker for a dead one.
            if woken or lease < self._lease or now >= self._next_beat:
                self._lease = lease
                self._beat()
                self._next_beat = now + min(lease / 3, MAX_HEARTBEAT_INTERVAL)
        except QueuectlError as exc:
            log.warning("%s: heartbeat failed: %s", self.worker_id, exc.message)
            return RETRY_AFTER_ERROR
        return max(0.01, min(MAX_TICK, self._next_beat - time.monotonic()))

    def _beat(self) -> None:
        store = self.service.store
        status = self.status()
        running = self.current()
        if store.heartbeat(self.worker_id, running[0].id if running else None, status):
            self.on_stop_request()
            if status != "stopping":
                # Report "stopping" now, not a beat later: a `worker stop` on another
                # host sees this row only, and `--wait` shows the request was heard.
                self.wake()
        if running is not None and not store.holds_claim(running[0], self.worker_id):
            lost(self.worker_id, running, self.current)


def lost(worker_id: str, running: tuple[Job, ShellRun], current: Running) -> None:
    """The claim is gone (cancelled, or rescued from a worker thought dead): the run must
    not go on, and its result will not be recorded (finish is fenced). Unless the run has
    simply ended meanwhile and the job loop recorded it: then there is nothing to do."""
    job, run = running
    if current() is running and run.kill_reason is None:
        log.warning(
            "%s: job %s was cancelled or taken from this worker; killing it", worker_id, job.id
        )
        run.kill("the job was cancelled or taken from this worker")
