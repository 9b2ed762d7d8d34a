"""Queue settings (pause, limit) and the config table on PostgreSQL."""

from __future__ import annotations

from queuectl.store.postgres.connection import CHANNEL, NOTIFY, PostgresConnection
from queuectl.store.postgres.statements import GET_CONFIG
from queuectl.store.records import QueueInfo
from queuectl.store.rows import queue_infos

# Jobs per queue and state: jobs_queue_state.
QUEUE_COUNTS = "SELECT queue, state, count(*) FROM jobs GROUP BY queue, state"
# Every queue's pause, limit and rate: the queues table is small.
QUEUE_SETTINGS = "SELECT name, paused, max_running, rate_count, rate_period FROM queues"
# Pause or resume a queue: the queues primary key.
SET_PAUSED = (
    "INSERT INTO queues (name, paused) VALUES (%s, %s)"
    " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused"
)
# Set or remove a queue's limit: the queues primary key.
SET_LIMIT = (
    "INSERT INTO queues (name, max_running) VALUES (%s, %s)"
    " ON CONFLICT (name) DO UPDATE SET max_running = excluded.max_running"
)
# One config value: the config primary key.
SET_CONFIG = (
    "INSERT INTO config (key, value) VALUES (%s, %s)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


class PostgresQueues(PostgresConnection):
    """Queue settings and config."""

    def list_queues(self) -> list[QueueInfo]:
        return queue_infos(
            self._read(QUEUE_COUNTS),
            self._read(QUEUE_SETTINGS),
        )

    def set_queue_paused(self, name: str, paused: bool) -> None:
        self._execute(SET_PAUSED, (name, paused))
        if not paused:
            self._execute(NOTIFY, (CHANNEL,))

    def set_queue_limit(self, name: str, max_running: int | None) -> None:
        self._execute(SET_LIMIT, (name, max_running))
        self._limits_read_at = float("-inf")
        # A raised or removed limit may open the queue: idle workers should look now.
        self._execute(NOTIFY, (CHANNEL,))

    def get_config(self) -> dict[str, str]:
        return dict(self._read(GET_CONFIG))

    def set_config(self, key: str, value: str) -> None:
        self._execute(SET_CONFIG, (key, value))
