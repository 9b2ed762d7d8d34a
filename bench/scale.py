"""Figure 5: does a long history slow the queue down? A store with many finished jobs
(built by direct SQL, since running them for real would take hours) against an empty one.
"""

from __future__ import annotations

import time

from bench.enqueue import python_pass
from bench.env import Context, Store, fresh_store
from bench.results import Result, Target, median
from bench.throughput import drain

FIGURE = "5. Scale"
CLAIM_TARGET = Target("ratio_min", 0.90, "≥ 90% of the empty store's")
STATUS_TARGET = Target("value_max", 200.0, "< 200 ms")
LIST_TARGET = Target("value_max", 100.0, "< 100 ms")
SHOW_TARGET = Target("excess_max", 50.0, "≤ `python -c pass` + 50 ms")
HISTORY_DAYS = 30  # finished jobs are spread over this many days before now
WORKER = "worker-bench0"


def finished_id(number: int) -> str:
    return f"done-{number:07d}"


def build_history(store: Store, jobs: int) -> float:
    """Insert `jobs` completed jobs, one attempt each, as queuectl would have left them;
    seconds taken. The schema is queuectl's own (a `status` has created it)."""
    start = time.perf_counter()
    if store.backend == "sqlite":
        _sqlite_history(store, jobs)
    else:
        _postgres_history(store, jobs)
    return time.perf_counter() - start


def _sqlite_history(store: Store, jobs: int) -> None:
    """Rows generated inside SQLite (a recursive CTE feeding INSERT ... SELECT): no Python
    per row, so a million take seconds."""
    conn = store.conn
    conn.execute("PRAGMA synchronous = OFF")  # a build step, not a measurement
    conn.execute("PRAGMA cache_size = -262144")  # 256 MB: the id index takes many pages
    params = {
        "jobs": jobs,
        "first": time.time() - HISTORY_DAYS * 86400,
        "step": (HISTORY_DAYS - 1) * 86400 / max(jobs, 1),
        "worker": WORKER,
    }
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n + 1 < :jobs)"
        " INSERT INTO jobs (id, command, state, queue, priority, attempts, max_retries,"
        " timeout, created_at, updated_at, run_at, started_at, finished_at, exit_code, output)"
        " SELECT printf('done-%07d', n), 'true', 'completed', 'default', 0, 1, 3, 300.0,"
        " :first + n * :step, :first + n * :step + 0.02, :first + n * :step,"
        " :first + n * :step + 0.005, :first + n * :step + 0.02, 0, '' FROM g ORDER BY n",
        params,
    )
    conn.execute(
        "WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n + 1 < :jobs)"
        " INSERT INTO attempts (job_id, attempt, worker_id, started_at, finished_at,"
        " exit_code, output) SELECT printf('done-%07d', n), 1, :worker,"
        " :first + n * :step + 0.005, :first + n * :step + 0.02, 0, '' FROM g ORDER BY n",
        params,
    )
    conn.execute("COMMIT")
    # A long-lived store has its WAL checkpointed as it goes: no giant WAL left behind.
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA synchronous = FULL")


def _postgres_history(store: Store, jobs: int) -> None:
    """Rows generated server-side (generate_series): faster still than COPY."""
    conn = store.conn
    conn.execute("SET statement_timeout = '15min'")
    conn.execute("SET synchronous_commit = off")
    params = {
        "jobs": jobs,
        "days": HISTORY_DAYS,
        "step": (HISTORY_DAYS - 1) * 86400 / max(jobs, 1),
        "worker": WORKER,
    }
    rows = (
        " FROM generate_series(0, %(jobs)s - 1) AS g, LATERAL (SELECT now()"
        " - %(days)s * interval '1 day' + g * %(step)s * interval '1 second' AS t) AS moment"
        " ORDER BY g"
    )
    conn.execute(
        "INSERT INTO jobs (id, command, state, queue, priority, attempts, max_retries,"
        " timeout, created_at, updated_at, run_at, started_at, finished_at, exit_code, output)"
        " SELECT 'done-' || lpad(g::text, 7, '0'), 'true', 'completed', 'default', 0, 1, 3,"
        " 300, t, t + interval '20 ms', t, t + interval '5 ms', t + interval '20 ms', 0, ''" + rows,
        params,
    )
    conn.execute(
        "INSERT INTO attempts (job_id, attempt, worker_id, started_at, finished_at, exit_code,"
        " output) SELECT 'done-' || lpad(g::text, 7, '0'), 1, %(worker)s,"
        " t + interval '5 ms', t + interval '20 ms', 0, ''" + rows,
        params,
    )
    # Autovacuum would have analysed tables this size long since: the steady state.
    conn.execute("VACUUM ANALYZE jobs")
    conn.execute("VACUUM ANALYZE attempts")


def add_pending(store: Store, jobs: int) -> int:
    """Insert `jobs` due `true` jobs the same way on either store; the seq before them."""
    before = store.max_seq()
    due = time.time() - 1
    rows = [(f"pend-{number:07d}", due, due, due) for number in range(jobs)]
    if store.backend == "sqlite":
        conn = store.conn
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout,"
            " created_at, updated_at, run_at)"
            " VALUES (?, 'true', 'pending', 'default', 0, 3, 300.0, ?, ?, ?)",
            rows,
        )
        conn.execute("COMMIT")
    else:
        store.conn.execute(
            "INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout,"
            " created_at, updated_at, run_at) SELECT 'pend-' || lpad(g::text, 7, '0'), 'true',"
            " 'pending', 'default', 0, 3, 300, now() - interval '1 second',"
            " now() - interval '1 second', now() - interval '1 second'"
            " FROM generate_series(0, %s - 1) AS g ORDER BY g",
            (jobs,),
        )
        store.conn.execute("VACUUM ANALYZE jobs")
    return before


def cli_times(store: Store, runs: int, show_id: str) -> dict[str, list[float]]:
    """status, list and show on the big store, interleaved with `python -c pass`."""
    commands = {
        "status": ("status",),
        "list": ("list", "--state", "pending", "--limit", "20"),
        "show": ("show", show_id),
    }
    times: dict[str, list[float]] = {name: [] for name in [*commands, "pass"]}
    for number in range(runs + 1):  # the first round warms the page cache: not counted
        for name, args in commands.items():
            elapsed = store.timed(*args)
            if number:
                times[name].append(elapsed * 1000)
        elapsed = python_pass()
        if number:
            times["pass"].append(elapsed * 1000)
    return times


def run(ctx: Context, backend: str) -> list[Result]:
    finished, pending = ctx.sizes.scale_finished, ctx.sizes.scale_pending
    runs = ctx.sizes.cli_runs
    with fresh_store(ctx, backend, "scale") as big:
        big.prepare()
        build = build_history(big, finished)
        big_after = add_pending(big, pending)
        times = cli_times(big, runs, finished_id(finished // 2))
        with fresh_store(ctx, backend, "scale-empty") as empty:
            empty.prepare()
            empty_after = add_pending(empty, pending)
            # The same commands without the history: what start-up and a small store cost.
            small = cli_times(empty, runs, "pend-0000001")
            empty_rate, _, _ = drain(empty, pending, empty_after)
        big_rate, span, _ = drain(big, pending, big_after)
    floor = median(times["pass"])

    def without_history(name: str) -> str:
        return f"the same command on a store without the history: {median(small[name]):.1f} ms"

    store_text = f"{finished:,} finished + {pending:,} pending jobs"
    cli_ref = f"`python -c pass` (median of {runs}, interleaved)"
    return [
        Result(
            FIGURE,
            "claim rate",
            f"claim throughput: drain {pending:,} pending `true` jobs, 2 burst workers, "
            f"with {finished:,} finished jobs in the store",
            backend,
            big_rate,
            "jobs/s",
            empty_rate,
            "the same drain on a store without the history",
            CLAIM_TARGET,
            f"history built in {build:.1f} s by direct SQL; drain span {span:.2f} s",
        ),
        Result(
            FIGURE,
            "`status`",
            f"`queuectl status` median ({store_text})",
            backend,
            median(times["status"]),
            "ms",
            floor,
            cli_ref,
            STATUS_TARGET,
            without_history("status"),
        ),
        Result(
            FIGURE,
            "`list --state pending`",
            f"`queuectl list --state pending --limit 20` median ({store_text})",
            backend,
            median(times["list"]),
            "ms",
            floor,
            cli_ref,
            LIST_TARGET,
            without_history("list"),
        ),
        Result(
            FIGURE,
            "`show ID`",
            f"`queuectl show ID` median, a finished job ({store_text})",
            backend,
            median(times["show"]),
            "ms",
            floor,
            cli_ref,
            SHOW_TARGET,
            without_history("show"),
        ),
    ]
