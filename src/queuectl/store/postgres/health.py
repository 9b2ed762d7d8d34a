"""What `queuectl doctor`, `top` and the dashboard read about a PostgreSQL store itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from queuectl.core.models import WorkerInfo
from queuectl.core.redact import redact
from queuectl.store.postgres.rows import worker_of
from queuectl.store.postgres.session import APPLICATION_NAME
from queuectl.store.postgres.wakeup import PostgresWakeup
from queuectl.store.records import ThroughputBucket
from queuectl.store.sql import WORKER_COLUMNS

if TYPE_CHECKING:
    from queuectl.core.health import StoreFacts
from queuectl.store.postgres.connection import SCHEMA_VERSION

# Workers not stopped whose heartbeat is old: the workers table is small.
STALE_WORKERS = (
    f"SELECT {WORKER_COLUMNS} FROM workers WHERE status <> 'stopped'"
    " AND last_heartbeat < now() - %s * interval '1 second' ORDER BY last_heartbeat, id"
)
NOTIFY_PROBE_TIMEOUT = 3.0  # seconds doctor waits for its probe notification

# The server's version, this session's user and database, its connections: to this
# database, queuectl's (by application_name) and all clients'; pg_stat_activity is small.
SERVER_FACTS = (
    "SELECT current_setting('server_version'), current_user, current_database(),"
    " (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()),"
    " current_setting('max_connections')::int,"
    " (SELECT count(*) FROM pg_stat_activity WHERE application_name = %s),"
    " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
)
# Finished attempts per minute since a moment: attempts_finished.
THROUGHPUT = (
    "SELECT floor(extract(epoch FROM finished_at) / 60)::bigint AS minute,"
    " count(*) FILTER (WHERE error IS NULL), count(*) FILTER (WHERE error IS NOT NULL)"
    " FROM attempts WHERE finished_at >= now() - %s * interval '1 second'"
    " GROUP BY minute ORDER BY minute"
)


class PostgresHealth(PostgresWakeup):
    """Stale workers, throughput and the server."""

    def find_stale_workers(self, lease_timeout: float) -> list[WorkerInfo]:
        rows = self._read(STALE_WORKERS, (float(lease_timeout),))
        return [worker_of(row) for row in rows]

    def inspect_storage(self) -> StoreFacts:
        """The server's version, this connection, the schema version, the connections in
        use and whether notifications reach a listener here."""
        from queuectl.core.health import Connections, Notifications, StoreFacts

        version, user, database, connections, limit, ours, total = self._read(
            SERVER_FACTS, (APPLICATION_NAME,)
        )[0]
        if not self.supports_notify:
            notifications = Notifications.OFF
        elif self.notifications_arrive(NOTIFY_PROBE_TIMEOUT):
            notifications = Notifications.LISTEN
        else:
            notifications = Notifications.LOST
        return StoreFacts(
            backend="postgresql",
            location=redact(self.url),
            schema_version=self._schema_version(),
            current_schema_version=SCHEMA_VERSION,
            server=(
                f"PostgreSQL {version} at {redact(self.url)} (user {user}, database {database};"
                f" connections to it: {connections}, max_connections {limit})"
            ),
            connections=Connections(queuectl=ours, total=total, limit=limit),
            notifications=notifications,
        )

    def count_finished_attempts(self, since: float) -> list[ThroughputBucket]:
        rows = self._read(THROUGHPUT, (float(since),))
        return [
            ThroughputBucket(datetime.fromtimestamp(minute * 60.0, UTC), ok, failed)
            for minute, ok, failed in rows
        ]
