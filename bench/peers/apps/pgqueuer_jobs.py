"""pgqueuer with one entrypoint that runs `sh -c true` as an asyncio subprocess, as its
users would, at most two at a time.

`$PGDSN` names a database where `pgq install` has created pgqueuer's schema. `enqueue(N)`
loads N jobs in one call; `drain()` runs one consumer in drain mode, which exits by itself
once the queue is empty. It calls `PgQueuer.run` itself, as `pgq run` does: the `pgq run`
of pgqueuer 1.6.0 stops at start-up on its own `--log-level` default.

How the two slots are kept, and on which event loop, was chosen by measurement (the
fastest way that never runs more than two jobs at once): a semaphore in the handler with
the default batch size, on the standard asyncio loop. pgqueuer's own limits (an entrypoint
`concurrency_limit=2`, or `max_concurrent_tasks`) wait for its 100 ms status flush and
poll between batches, and uvloop reaps child processes slowly here: each of those was 4 to
20 times slower on this workload.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import asyncpg  # type: ignore[import-not-found]
from pgqueuer import PgQueuer  # type: ignore[import-not-found]
from pgqueuer.db import AsyncpgDriver  # type: ignore[import-not-found]
from pgqueuer.domain.types import QueueExecutionMode  # type: ignore[import-not-found]
from pgqueuer.queries import Queries  # type: ignore[import-not-found]

from bench.peers.apps import open_log, record

ENTRYPOINT = "run_true"
SLOTS = 2


async def consumer() -> Any:
    """The PgQueuer instance: the factory a `pgq run` would be given."""
    connection = await asyncpg.connect(os.environ["PGDSN"])
    pgq = PgQueuer(AsyncpgDriver(connection))
    slots = asyncio.Semaphore(SLOTS)
    log = open_log()

    async def run_true(job: Any) -> None:
        async with slots:
            start = time.time()
            process = await asyncio.create_subprocess_exec("sh", "-c", "true")
            if await process.wait() != 0:
                raise RuntimeError("sh -c true failed")
            record(log, start)

    pgq.entrypoint(ENTRYPOINT)(run_true)
    return pgq


async def _drain() -> None:
    pgq = await consumer()
    await pgq.run(mode=QueueExecutionMode.drain)


async def _enqueue(count: int) -> None:
    connection = await asyncpg.connect(os.environ["PGDSN"])
    try:
        queries = Queries(AsyncpgDriver(connection))
        await queries.enqueue([ENTRYPOINT] * count, [None] * count, [0] * count)
    finally:
        await connection.close()


def drain() -> None:
    asyncio.run(_drain())


def enqueue(count: int) -> None:
    asyncio.run(_enqueue(count))
