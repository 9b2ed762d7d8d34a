"""SqliteStore: the embedded default, one file in WAL mode shared by every local process."""

from __future__ import annotations

from queuectl.store.sqlite.claims import SqliteClaims
from queuectl.store.sqlite.health import SqliteHealth
from queuectl.store.sqlite.hooks import SqliteHooks
from queuectl.store.sqlite.jobs import SqliteJobs
from queuectl.store.sqlite.queues import SqliteQueues
from queuectl.store.sqlite.schedules import SqliteSchedules
from queuectl.store.sqlite.transfer import SqliteTransfer
from queuectl.store.sqlite.wakeup import SqliteWakeup
from queuectl.store.sqlite.workers import SqliteWorkers


class SqliteStore(
    SqliteJobs,
    SqliteClaims,
    SqliteQueues,
    SqliteWorkers,
    SqliteWakeup,
    SqliteHealth,
    SqliteSchedules,
    SqliteTransfer,
    SqliteHooks,
):
    """Every role of the store (store/base.py) on one SQLite file: each part is a class
    of its own module over SqliteConnection, which holds the connection."""
