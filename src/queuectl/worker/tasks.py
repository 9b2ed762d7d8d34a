"""The base of a worker's background threads: a periodic loop whose failure ends the worker.

Any exception a task did not expect is handed to the worker (`on_crash`), which stops
claiming, kills the running job, records its attempt and exits non-zero so that the
supervisor starts a replacement. A task never dies quietly while the job loop goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from queuectl.core.settings import Settings
from queuectl.service import QueueService
from queuectl.worker.config_cache import ConfigCache

log = logging.getLogger("queuectl.worker")

OnCrash = Callable[[str, BaseException], None]


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
        self._config = ConfigCache(service.settings)

    def settings(self) -> Settings:
        """The config, re-read at most once a second (see worker.config_cache)."""
        return self._config.fresh()

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
