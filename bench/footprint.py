"""Figure 6: the memory a worker process holds while idle, and whether it stays flat after
many jobs (a leak would show here long before it shows in production)."""

from __future__ import annotations

import time

from bench.env import Context, fresh_store
from bench.machine import bare_python_rss_kb
from bench.procfs import guard_of, memory_kb
from bench.results import Result, Target
from bench.workers import Workers

FIGURE = "6. Footprint"
IDLE_TARGET = Target("value_max", 30.0, "< 30 MB")
GROWTH_TARGET = Target("ratio_max", 1.10, "growth < 10%")
WORKERS = 2  # the jobs run twice as fast; each worker process is measured on its own


def run(ctx: Context, backend: str) -> list[Result]:
    sizes = ctx.sizes
    jobs = sizes.footprint_jobs
    floor = bare_python_rss_kb() / 1024
    with fresh_store(ctx, backend, "footprint") as store:
        store.prepare()
        with Workers(store, WORKERS) as workers:
            pids = workers.ready()
            time.sleep(sizes.footprint_idle_wait)
            idle = {pid: memory_kb(pid) / 1024 for pid in pids}
            guard = guard_of(workers.proc.pid)
            guard_mb = memory_kb(guard) / 1024 if guard is not None else float("nan")
            pss = {pid: memory_kb(pid, "Pss") / 1024 for pid in pids}
            start = time.perf_counter()
            store.cli("enqueue", "-", stdin=store.jobs_file(jobs), timeout=120 + jobs / 500)
            store.wait_for(
                f"{jobs:,} jobs to complete",
                lambda: store.count("completed") >= jobs,
                timeout=300 + jobs / 20,
                interval=0.5,
            )
            elapsed = time.perf_counter() - start
            time.sleep(1.0)  # idle again: the figure is what it keeps, not a transient
            after = {pid: memory_kb(pid) / 1024 for pid in pids}
            peak = {pid: memory_kb(pid, "VmHWM") / 1024 for pid in pids}
    worst_idle = max(pids, key=lambda pid: idle[pid])
    worst_growth = max(pids, key=lambda pid: after[pid] / idle[pid])
    per_worker = "; ".join(
        f"pid {pid}: {idle[pid]:.1f} → {after[pid]:.1f} MB (peak {peak[pid]:.1f})" for pid in pids
    )
    return [
        Result(
            FIGURE,
            "idle worker RSS",
            f"VmRSS of an idle worker process (largest of {WORKERS})",
            backend,
            idle[worst_idle],
            "MB",
            floor,
            "VmRSS of a bare `python` waiting on stdin",
            IDLE_TARGET,
            f"PSS {pss[worst_idle]:.1f} MB, shared pages split with the supervisor",
        ),
        Result(
            FIGURE,
            f"RSS after {jobs:,} jobs",
            f"VmRSS after {jobs:,} `true` jobs ({WORKERS} workers), vs. the same one idle",
            backend,
            after[worst_growth],
            "MB",
            idle[worst_growth],
            "its VmRSS while idle before the jobs",
            GROWTH_TARGET,
            f"{per_worker}; {jobs / elapsed:,.0f} jobs/s",
        ),
        Result(
            FIGURE,
            "guard RSS",
            "VmRSS of the guard process (one per `worker start`, not per worker)",
            backend,
            guard_mb,
            "MB",
            floor,
            "VmRSS of a bare `python` waiting on stdin",
            IDLE_TARGET,
            "kills a dead worker's jobs; runs in a session of its own",
        ),
    ]
