"""PostgresStore: the shared store for workers on several machines, claims by SKIP LOCKED."""

from __future__ import annotations

from queuectl.store.postgres.claims import PostgresClaims
from queuectl.store.postgres.health import PostgresHealth
from queuectl.store.postgres.hooks import PostgresHooks
from queuectl.store.postgres.jobs import PostgresJobs
from queuectl.store.postgres.queues import PostgresQueues
from queuectl.store.postgres.schedules import PostgresSchedules
from queuectl.store.postgres.transfer import PostgresTransfer
from queuectl.store.postgres.workers import PostgresWorkers


class PostgresStore(
    PostgresJobs,
    PostgresClaims,
    PostgresQueues,
    PostgresWorkers,
    PostgresHealth,
    PostgresSchedules,
    PostgresTransfer,
    PostgresHooks,
):
    """Every role of the store (store/base.py) on one PostgreSQL database, shared by
    workers on any number of hosts: each part is a class of its own module over
    PostgresConnection, which holds the connection. (PostgresHealth brings PostgresWakeup,
    whose listener its notification check uses.)"""
