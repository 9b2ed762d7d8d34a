"""Queue settings (pause, limit) and the config table on SQLite."""

from __future__ import annotations

from queuectl.store.records import QueueInfo
from queuectl.store.rows import queue_infos
from queuectl.store.sqlite.connection import SqliteConnection

# Jobs per queue and state: jobs_queue_state.
QUEUE_COUNTS = "SELECT queue, state, count(*) FROM jobs GROUP BY queue, state"
# Every queue's pause, limit and rate: the queues table is small.
QUEUE_SETTINGS = "SELECT name, paused, max_running, rate_count, rate_period FROM queues"
# Pause or resume a queue: the queues primary key.
SET_PAUSED = (
    "INSERT INTO queues (name, paused) VALUES (?, ?)"
    " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused"
)
# Set or remove a queue's limit: the queues primary key.
SET_LIMIT = (
    "INSERT INTO queues (name, max_running) VALUES (?, ?)"
    " ON CONFLICT (name) DO UPDATE SET max_running = excluded.max_running"
)
# The config table, whole: it is small.
GET_CONFIG = "SELECT key, value FROM config"
# One config value: the config primary key.
SET_CONFIG = (
    "INSERT INTO config (key, value) VALUES (?, ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


class SqliteQueues(SqliteConnection):
    """Queue settings and config."""

    def list_queues(self) -> list[QueueInfo]:
        return queue_infos(
            self._read(QUEUE_COUNTS),
            self._read(QUEUE_SETTINGS),
        )

    def set_queue_paused(self, name: str, paused: bool) -> None:
        with self._write() as conn:
            conn.execute(SET_PAUSED, (name, paused))

    def set_queue_limit(self, name: str, max_running: int | None) -> None:
        with self._write() as conn:
            conn.execute(SET_LIMIT, (name, max_running))

    def get_config(self) -> dict[str, str]:
        return dict(self._read(GET_CONFIG))

    def set_config(self, key: str, value: str) -> None:
        with self._write() as conn:
            conn.execute(SET_CONFIG, (key, value))
