"""How an idle worker learns of new jobs on PostgreSQL: LISTEN on a connection of its own,
or, where notifications cannot reach it, a sleep of the poll interval.

Notifications need a session that stays put. Behind a transaction-pooling PgBouncer the
listener's LISTEN runs on whichever server connection the pooler lends it for that one
statement, and notifications go to whoever borrows that server connection next: the
listener never sees them. A URL with `pool_mode=transaction` says so up front; otherwise
the first listen is checked with a probe, a notification on a channel of its own sent from
the main connection, which a working listener receives within moments.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Callable

import psycopg

from queuectl.store.postgres.connection import CHANNEL, Connection, first_line

log = logging.getLogger("queuectl.store")

LISTEN_RETRY_FIRST = 0.5  # seconds before the first retry of a lost listener connection
LISTEN_RETRY_MAX = 30.0  # seconds; cap of the listener's reconnect backoff
PROBE_TIMEOUT = 5.0  # seconds a probe may take before notifications count as unavailable
PROBE_PREFIX = "queuectl_probe_"
POLLING_NOTE = "idle workers poll every poll-interval"


class JobListener:
    """The listening half of a PostgresStore. `connect` opens a listener connection;
    `notify` sends a notification on a channel from the store's main connection."""

    def __init__(
        self,
        connect: Callable[[], Connection],
        notify: Callable[[str], object],
        describe: Callable[[], str],
        *,
        available: bool = True,
    ) -> None:
        self._connect = connect
        self._notify = notify
        self._describe = describe  # the server, for log lines (no password)
        self.available = available  # False: notifications cannot reach us; we poll
        self._conn: Connection | None = None
        self._has_listened = False
        self._failures = 0
        self._retry_at = 0.0
        self._warned = False
        self._probe_channel = f"{PROBE_PREFIX}{secrets.token_hex(6)}"
        self._probe_sent_at: float | None = None
        self._probe_answered = False
        self.closed = False
        self._said_polling = False

    def wait(self, timeout: float) -> bool:
        """Block until a notification or `timeout`: True when woken. Without a listener
        (notifications unavailable, or the server unreachable) it sleeps like a poll."""
        deadline = time.monotonic() + max(0.0, timeout)
        if not self.available and not self._said_polling:
            self._said_polling = True
            log.warning(
                "notifications are off for PostgreSQL at %s (pool_mode=transaction): %s",
                self._describe(),
                POLLING_NOTE,
            )
        if self.available and self._conn is None and self._listen() is not None:
            # A job inserted before LISTEN took effect notified nobody, the first time as
            # after a lost connection: look once now rather than at the next poll.
            return True
        conn = self._conn
        if conn is None:
            time.sleep(max(0.0, deadline - time.monotonic()))
            return False
        try:
            while True:
                left = max(0.0, deadline - time.monotonic())
                if self._take(conn, timeout=left, stop_after=1):
                    # A burst of inserts sends many; take the queued ones now, so they
                    # do not each cause a spurious wakeup later.
                    self._take(conn, timeout=0)
                    return True
                if self._probe_overdue():
                    self._give_up()
                    time.sleep(max(0.0, deadline - time.monotonic()))
                    return False
                if time.monotonic() >= deadline:
                    return False
        except psycopg.Error as exc:
            # No sleep: the caller's next wait reconnects at once and then says True.
            self._lost(exc)
            return False

    def probe(self, timeout: float) -> bool:
        """Whether a notification reaches a listener here, waiting at most `timeout`
        (for `doctor`; a worker's listener checks itself as it waits)."""
        if not self.available:
            return False
        if self._conn is None and self._listen() is None:
            return False
        deadline = time.monotonic() + timeout
        try:
            while not self._probe_answered and time.monotonic() < deadline:
                assert self._conn is not None
                # One at a time: notifies() would otherwise wait out the whole timeout.
                remaining = max(0.0, deadline - time.monotonic())
                self._take(self._conn, timeout=remaining, stop_after=1)
        except psycopg.Error:
            return False
        return self._probe_answered

    def close(self) -> None:
        self.closed = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _take(self, conn: Connection, *, timeout: float, stop_after: int | None = None) -> bool:
        """Receive notifications; True if one of them was about jobs."""
        woken = False
        for note in conn.notifies(timeout=timeout, stop_after=stop_after):
            if note.channel == self._probe_channel:
                self._probe_answered = True
            else:
                woken = True
        return woken

    def _listen(self) -> bool | None:
        """Open the listener. None: not now (backoff or failure); True: it came back
        after a loss; False: the first connection."""
        if self.closed or time.monotonic() < self._retry_at:
            return None
        conn: Connection | None = None
        try:
            conn = self._connect()
            conn.execute(f"LISTEN {CHANNEL}")
            if not self._probe_answered:
                conn.execute(f"LISTEN {self._probe_channel}")
        except psycopg.Error as exc:
            if conn is not None:
                conn.close()
            self._failures += 1
            delay = min(LISTEN_RETRY_MAX, LISTEN_RETRY_FIRST * 2 ** (self._failures - 1))
            # Jittered: the workers that lost their listeners together retry apart.
            self._retry_at = time.monotonic() + random.uniform(delay / 2, delay)  # noqa: S311
            if not self._warned:
                self._warned = True
                log.warning(
                    "cannot listen for new jobs on PostgreSQL at %s (%s); polling, retrying",
                    self._describe(),
                    first_line(exc),
                )
            return None
        self._conn = conn
        if not self._probe_answered and self._probe_sent_at is None:
            self._send_probe()
        reconnected = self._has_listened
        self._has_listened = True
        if self._warned:
            log.info("listening for new jobs on PostgreSQL at %s again", self._describe())
        self._failures = 0
        self._warned = False
        return reconnected

    def _send_probe(self) -> None:
        try:
            self._notify(self._probe_channel)
        except Exception:
            return
        self._probe_sent_at = time.monotonic()

    def _probe_overdue(self) -> bool:
        return (
            not self._probe_answered
            and self._probe_sent_at is not None
            and time.monotonic() - self._probe_sent_at > PROBE_TIMEOUT
        )

    def _give_up(self) -> None:
        """Notifications do not arrive: stop listening for good and say so once."""
        self.available = False
        self._said_polling = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        log.warning(
            "notifications from PostgreSQL at %s do not arrive (a transaction-pooling"
            " PgBouncer? then add %s to the store URL): %s",
            self._describe(),
            "pool_mode=transaction",
            POLLING_NOTE,
        )

    def _lost(self, exc: psycopg.Error) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._retry_at = 0.0  # the next call reconnects at once
        if self._probe_sent_at is not None and not self._probe_answered:
            self._probe_sent_at = None  # the probe went with the connection: send another
        if not self._warned:
            self._warned = True
            log.warning(
                "lost the PostgreSQL listener connection (%s); reconnecting", first_line(exc)
            )
