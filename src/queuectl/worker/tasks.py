"""The base of a worker's background threads: a periodic loop whose failure ends the worker.

Any exception a task did not expect is handed to the worker (`on_crash`), which stops
claiming, kills the running job, records its attempt and exits non-zero so that the
supervisor starts a replacement. A task never dies quietly while the job loop goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from queuectl.core.settings import Settings
from queuectl.service import QueueService

log = logging.getLogger("queuectl.worker")

OnCrash = Callable[[str, BaseException], None]
SETTINGS_MAX_AGE = 1.0  # seconds a task trusts its copy of the config


class PeriodicTask(threading.Thread):
    """Calls `tick()` until finished; `tick` returns the seconds until it is due again.
    Owns a store connection of its own (SQLite connections are not shared across threads)."""

    task_name = "task"

    def __init__(self, service: QueueService, worker_id: str, on_crash: OnCrash) -> None:
        super().__init__(name=self.task_name, daemon=True)
        self.service = service
        self.worker_id = worker_id
        self.on_crash = on_crash
        self._wake = threading.Event()
        self._finished = False
        self._settings: Settings | None = None
        self._settings_read_at = 0.0

    def settings(self) -> Settings:
        """The config, re-read at most every SETTINGS_MAX_AGE seconds: an idle worker's
        threads then cost next to nothing."""
        now = time.monotonic()
        if self._settings is None or now - self._settings_read_at > SETTINGS_MAX_AGE:
            self._settings = self.service.settings()
            self._settings_read_at = now
        return self._settings

    def wake(self) -> None:
        """Tick now; safe from any thread."""
        self._wake.set()

    def finish(self) -> None:
        self._finished = True
        self._wake.set()

    def run(self) -> None:
        try:
            while not self._finished:
                woken = self._wake.is_set()
                self._wake.clear()
                delay = self.tick(woken=woken)
                self._wake.wait(delay)
        except BaseException as exc:  # any bug: the worker must not go on without this task
            self.on_crash(self.task_name, exc)
        finally:
            try:
                self.service.store.close()
            except Exception:  # closing a broken connection; nothing left to protect
                log.debug("%s: closing the %s connection failed", self.worker_id, self.name)

    def tick(self, *, woken: bool) -> float:
        raise NotImplementedError
