"""How an idle PostgreSQL worker learns of new work: LISTEN on a second connection, opened
on the first wait, reconnected with backoff when lost."""

from __future__ import annotations

import logging
import random
import time

import psycopg

from queuectl.core.redact import redact
from queuectl.store.postgres.connection import (
    CHANNEL,
    Connection,
    PostgresConnection,
    first_line,
)

LISTEN_CONNECT_TIMEOUT = 5  # seconds; short, as an idle worker waits on it
LISTEN_RETRY_FIRST = 0.5  # seconds before the first retry of a lost listener connection
LISTEN_RETRY_MAX = 30.0  # seconds; cap of the listener's reconnect backoff

log = logging.getLogger("queuectl.store")


class PostgresWakeup(PostgresConnection):
    """wait_for_jobs, for idle workers. The listener is opened on the first wait, so
    stores that never wait (the CLI, the heartbeat thread) never pay for it."""

    _listener: Connection | None = None
    _has_listened = False
    _listen_failures = 0
    _listen_retry_at = 0.0
    _listen_warned = False

    def close(self) -> None:
        super().close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def wait_for_jobs(self, timeout: float) -> bool:
        """Block on LISTEN until a NOTIFY or `timeout`. Without a listener connection
        (the server is unreachable) it sleeps like a poll, and retries with backoff."""
        deadline = time.monotonic() + max(0.0, timeout)
        if self._listener is None:
            reconnected = self._listen()
            if reconnected is None:
                time.sleep(max(0.0, deadline - time.monotonic()))
                return False
            if reconnected:
                return True  # notifications sent while we were away are lost: catch up
        assert self._listener is not None
        try:
            left = max(0.0, deadline - time.monotonic())
            woken = list(self._listener.notifies(timeout=left, stop_after=1))
            if woken:
                # A burst of inserts sends many; take the queued ones now, so they do
                # not each cause a spurious wakeup later.
                list(self._listener.notifies(timeout=0))
        except psycopg.Error as exc:
            # No sleep: the caller's next wait reconnects at once and then says True.
            self._listener_lost(exc)
            return False
        return bool(woken)

    def _listen(self) -> bool | None:
        """Open the listener. None: not now (backoff or failure); True: it came back
        after a loss; False: the first connection."""
        if self._closed or time.monotonic() < self._listen_retry_at:
            return None
        listener: Connection | None = None
        try:
            listener = psycopg.connect(
                self.url, autocommit=True, connect_timeout=LISTEN_CONNECT_TIMEOUT
            )
            listener.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            if listener is not None:
                listener.close()
            self._listen_failures += 1
            delay = min(LISTEN_RETRY_MAX, LISTEN_RETRY_FIRST * 2 ** (self._listen_failures - 1))
            # Jittered: the workers that lost their listeners together retry apart.
            self._listen_retry_at = time.monotonic() + random.uniform(delay / 2, delay)  # noqa: S311
            if not self._listen_warned:
                self._listen_warned = True
                log.warning(
                    "cannot listen for new jobs on PostgreSQL at %s (%s); polling, retrying",
                    redact(self.url),
                    first_line(exc),
                )
            return None
        self._listener = listener
        reconnected = self._has_listened
        self._has_listened = True
        if self._listen_warned:
            log.info("listening for new jobs on PostgreSQL at %s again", redact(self.url))
        self._listen_failures = 0
        self._listen_warned = False
        return reconnected

    def _listener_lost(self, exc: psycopg.Error) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._listen_retry_at = 0.0  # the next call reconnects at once
        if not self._listen_warned:
            self._listen_warned = True
            log.warning(
                "lost the PostgreSQL listener connection (%s); reconnecting", first_line(exc)
            )
