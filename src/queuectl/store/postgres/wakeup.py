"""How an idle PostgreSQL worker learns of new work: a JobListener (listener.py) on a
second connection, opened on the first wait; where notifications cannot arrive (a
transaction-pooling PgBouncer, a server out of reach) it sleeps like a poll."""

from __future__ import annotations

import psycopg

from queuectl.core.redact import redact
from queuectl.store.postgres import session
from queuectl.store.postgres.connection import NOTIFY, Connection, PostgresConnection
from queuectl.store.postgres.listener import JobListener

LISTEN_CONNECT_TIMEOUT = 5  # seconds; short, as an idle worker waits on it


class PostgresWakeup(PostgresConnection):
    """wait_for_jobs, for idle workers. The listener connection is opened on the first
    wait, so stores that never wait (the CLI, the heartbeat thread) never pay for it."""

    def __init__(self, url: str, *, durable: bool = True) -> None:
        super().__init__(url, durable=durable)
        self._listener = JobListener(
            self._connect_listener,
            lambda channel: self._execute(NOTIFY, (channel,)),
            lambda: redact(self.url),
            available=self.supports_notify,
        )

    def _connect_listener(self) -> Connection:
        # The URL as it is now, read again: the listener may be reopened long after start.
        conn: Connection = psycopg.connect(
            session.parse_url(self.url).conninfo,
            autocommit=True,
            connect_timeout=LISTEN_CONNECT_TIMEOUT,
            **session.connect_kwargs(self.options),
        )
        return conn

    def close(self) -> None:
        super().close()
        self._listener.close()

    def wait_for_jobs(self, timeout: float) -> bool:
        """Block on LISTEN until a NOTIFY or `timeout`; where notifications cannot arrive
        (a transaction pooler, the server unreachable) sleep like a poll instead."""
        return self._listener.wait(timeout)

    def notifications_arrive(self, timeout: float) -> bool:
        """Whether a notification sent now reaches a listener within `timeout` (doctor)."""
        return self._listener.probe(timeout)
