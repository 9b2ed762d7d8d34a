"""Figures 2 and 3: what one `enqueue` costs a script that calls it in a loop, and how
fast `enqueue -` loads a large batch."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

from bench.env import PYTHON, Context, Store, child_env, fresh_store, timed
from bench.results import BenchError, Result, Target, median

PER_CALL = "2. Per-call enqueue"
BULK = "3. Bulk enqueue"
PER_CALL_TARGETS = {
    "sqlite": Target("ratio_max", 2.2, "≤ 2.2x `python -c pass`"),
    # The reference for PostgreSQL is pgqueuer's CLI at ~660 ms: half of it.
    "postgres": Target("value_max", 330.0, "≤ 330 ms"),
}
BULK_TARGETS = {
    "sqlite": Target("value_min", 50_000, "≥ 50,000 jobs/s"),
    # Against the driver's own COPY of the same rows, measured right after it.
    "postgres": Target("ratio_min", 0.4, "≥ 0.4x the driver's COPY"),
}
WARM_UP = 2  # runs of each command thrown away: page cache, first connection (1 if quick)


def python_pass() -> float:
    """Wall seconds of `python -c pass` on the same interpreter: the floor of any CLI."""
    return timed([PYTHON, "-c", "pass"], child_env())


def run_per_call(ctx: Context, backend: str) -> list[Result]:
    runs = ctx.sizes.enqueue_runs
    warm_up = 1 if ctx.sizes.quick else WARM_UP
    with fresh_store(ctx, backend, "enqueue") as store:
        store.prepare()
        job = '{"command":"true"}'
        for _ in range(warm_up):
            store.timed("enqueue", job)
            python_pass()
        # Interleaved, so that a burst of load from elsewhere hits both sides alike.
        enqueue, floor = [], []
        for _ in range(runs):
            enqueue.append(store.timed("enqueue", job))
            floor.append(python_pass())
        stored = store.count("pending")
    if stored != runs + warm_up:
        raise BenchError(f"{stored} jobs stored after {runs + warm_up} enqueues")
    value, reference = median(enqueue) * 1000, median(floor) * 1000
    return [
        Result(
            PER_CALL,
            "one `enqueue`",
            f"median wall time of `queuectl enqueue '{job}'` ({runs} runs)"
            + (
                "; the PostgreSQL target is half of pgqueuer's CLI (~660 ms when it was set;"
                " figure 7 measures `pgq queue` beside it in the same run)"
                * (backend == "postgres")
            ),
            backend,
            value,
            "ms",
            reference,
            f"`python -c pass` (median of {runs}, interleaved)",
            PER_CALL_TARGETS[backend],
            f"min {min(enqueue) * 1000:.1f} ms, max {max(enqueue) * 1000:.1f} ms",
        )
    ]


def run_bulk(ctx: Context, backend: str) -> list[Result]:
    jobs = ctx.sizes.bulk_jobs
    with fresh_store(ctx, backend, "bulk") as store:
        store.prepare()
        source = store.jobs_file(jobs)
        elapsed = store.timed("enqueue", "-", stdin=source, timeout=120 + jobs / 500)
        stored = store.count("pending")
        # What start-up alone costs (an empty batch), to show the rate net of it too:
        # at --quick sizes start-up is most of the wall time.
        nothing = store.jobs_file(0, "empty.jsonl")
        startup = median([store.timed("enqueue", "-", stdin=nothing) for _ in range(3)])
    if stored != jobs:
        raise BenchError(f"{stored} of {jobs} jobs stored by enqueue -")
    with fresh_store(ctx, backend, "bulk-raw") as raw:
        raw.prepare()
        raw_rate = jobs / raw_insert(raw, jobs)
    return [
        Result(
            BULK,
            "`enqueue -` rate",
            f"`queuectl enqueue -` of {jobs:,} jobs from a file, wall time incl. start-up",
            backend,
            jobs / elapsed,
            "jobs/s",
            raw_rate,
            "the driver's fastest insert of the same rows, in-process "
            + ("(executemany, one transaction)" if backend == "sqlite" else "(COPY)"),
            BULK_TARGETS[backend],
            f"{elapsed:.2f} s for {jobs:,} jobs; an empty `enqueue -` takes {startup * 1000:.0f}"
            f" ms, so net of start-up {jobs / max(elapsed - startup, 1e-6):,.0f} jobs/s",
        )
    ]


def raw_insert(store: Store, jobs: int) -> float:
    """Seconds the driver alone needs to insert `jobs` pending rows, random ids like
    queuectl's, into the same schema with the same durability: the backend's ceiling."""
    ids = [secrets.token_hex(5) for _ in range(jobs)]
    conn = store.conn
    if store.backend == "sqlite":
        now = time.time()
        rows = [
            (job_id, "true", "pending", "default", 0, 3, 300.0, now, now, now) for job_id in ids
        ]
        conn.execute("PRAGMA synchronous = FULL")
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout,"
            " created_at, updated_at, run_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute("COMMIT")
        return time.perf_counter() - start
    stamp = datetime.now(UTC)
    pg_rows = [
        (job_id, "true", "pending", "default", 0, 3, 300.0, stamp, stamp, stamp) for job_id in ids
    ]
    start = time.perf_counter()
    with (
        conn.transaction(),
        conn.cursor() as cursor,
        cursor.copy(
            "COPY jobs (id, command, state, queue, priority, max_retries, timeout,"
            " created_at, updated_at, run_at) FROM STDIN"
        ) as copy,
    ):
        for row in pg_rows:
            copy.write_row(row)
    return time.perf_counter() - start
