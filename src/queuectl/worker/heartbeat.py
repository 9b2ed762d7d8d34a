"""The heartbeat thread: proves the worker alive, picks up stop requests, rescues others."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from queuectl.core.errors import QueuectlError
from queuectl.service import QueueService

log = logging.getLogger("queuectl.worker")

MAX_HEARTBEAT_INTERVAL = 2.0  # seconds; SPEC: at least every lease-timeout / 3


class Heartbeat(threading.Thread):
    """Runs beside the job loop with its own store connection (SQLite connections are not
    shared across threads), so a long job never delays the heartbeat."""

    def __init__(
        self,
        service: QueueService,
        worker_id: str,
        current_job: Callable[[], str | None],
        on_stop_request: Callable[[], None],
        status: Callable[[], str],
    ) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.service = service
        self.worker_id = worker_id
        self.current_job = current_job
        self.on_stop_request = on_stop_request
        self.status = status
        self.finished = threading.Event()
        self._last_rescue = 0.0

    def run(self) -> None:
        try:
            while not self.finished.is_set():
                lease = self._beat()
                self.finished.wait(min(lease / 3, MAX_HEARTBEAT_INTERVAL))
        finally:
            self.service.store.close()

    def _beat(self) -> float:
        """One heartbeat and, every half lease, a rescue pass. Returns the lease timeout."""
        try:
            current = self.service.settings()
            if self.service.store.heartbeat(self.worker_id, self.current_job(), self.status()):
                self.on_stop_request()
            if time.monotonic() - self._last_rescue >= current.lease_timeout / 2:
                self._last_rescue = time.monotonic()
                for job in self.service.rescue_stale(current):
                    log.warning("rescued job %s from %s (heartbeat stale)", job.id, job.locked_by)
        except QueuectlError as exc:
            log.warning("heartbeat failed: %s", exc.message)
            return 3.0
        return current.lease_timeout
