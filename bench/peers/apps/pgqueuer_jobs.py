"""pgqueuer with one entrypoint that runs `sh -c true` as an asyncio subprocess, as its
users would, at most two at a time.

`$PGDSN` names a database where `pgq install` has created pgqueuer's schema. `enqueue(N)`
loads N jobs in one call; `drain()` runs one consumer in drain mode, which exits by itself
once the queue is empty. It calls `PgQueuer.run` itself, as `pgq run` does: the `pgq run`
of pgqueuer 1.6.0 stops at start-up on its own `--log-level` default.

Two ways of keeping two slots, chosen by `$PGQ_SLOTS`:
- `limit` (the default): the entrypoint's documented `concurrency_limit=2`, as a user who
  wants two jobs at a time writes it. It waits for pgqueuer's 100 ms status flush and polls
  between batches.
- `semaphore`: the fastest way found by measurement that never runs more than two jobs at
  once: a semaphore in the handler with the default batch size. The consumer then holds a
  whole batch picked ahead of the two running jobs.
Both on the standard asyncio loop (uvloop reaps child processes slowly here).
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
    log = open_log()

    async def run_once() -> None:
        start = time.time()
        process = await asyncio.create_subprocess_exec("sh", "-c", "true")
        if await process.wait() != 0:
            raise RuntimeError("sh -c true failed")
        record(log, start)

    if os.environ.get("PGQ_SLOTS", "limit") == "semaphore":
        slots = asyncio.Semaphore(SLOTS)

        async def run_true(job: Any) -> None:
            async with slots:
                await run_once()

        pgq.entrypoint(ENTRYPOINT)(run_true)
    else:

        async def run_limited(job: Any) -> None:
            await run_once()

        pgq.entrypoint(ENTRYPOINT, concurrency_limit=SLOTS)(run_limited)
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
