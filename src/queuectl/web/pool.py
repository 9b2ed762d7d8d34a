"""A small pool of QueueServices shared by the request threads.

The stores are synchronous and a connection serves one caller at a time, so each request
borrows a service for its duration. Opening a store per request would cost a connection
(and, for PostgreSQL, a round of authentication) on every 2-second refresh of every open page.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from queuectl.core.errors import StoreUnavailable
from queuectl.service import QueueService
from queuectl.store import open_store

BORROW_TIMEOUT = 30.0  # seconds a request waits for a free connection before a 503


class ServicePool:
    """At most `size` open stores; a store that failed is closed rather than reused."""

    def __init__(self, target: str | None, size: int = 4) -> None:
        self.target = target
        self._idle: queue.LifoQueue[QueueService] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._closed = False

    def open(self) -> None:
        """Create or migrate the schema once, so that borrowed stores can skip that step."""
        service = QueueService(open_store(self.target, migrate=True))
        self._give_back(service, healthy=True)

    @contextmanager
    def service(self) -> Iterator[QueueService]:
        if not self._slots.acquire(timeout=BORROW_TIMEOUT):
            raise StoreUnavailable("the dashboard is busy: every store connection is in use")
        try:
            try:
                service = self._idle.get_nowait()
            except queue.Empty:
                service = QueueService(open_store(self.target, migrate=False))
            healthy = False
            try:
                yield service
                healthy = True
            except StoreUnavailable:
                raise
            except Exception:
                healthy = True  # a refused request leaves the connection as good as it was
                raise
            finally:
                self._give_back(service, healthy=healthy)
        finally:
            self._slots.release()

    def _give_back(self, service: QueueService, *, healthy: bool) -> None:
        with self._lock:
            if healthy and not self._closed:
                self._idle.put(service)
                return
        service.store.close()

    def close(self) -> None:
        """Close the idle stores; those still lent out are closed when they come back."""
        with self._lock:
            self._closed = True
        while True:
            try:
                self._idle.get_nowait().store.close()
            except queue.Empty:
                return
