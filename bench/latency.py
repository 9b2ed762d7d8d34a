"""Figure 4: how soon an idle worker starts a new job, and what idling costs in CPU.

Latency is read from the store's own timestamps (created_at → started_at), so it is the
queue's delay and not the benchmark's: on SQLite both come from the same machine clock,
on PostgreSQL both from the server's now().
"""

from __future__ import annotations

import random
import time

from bench.env import Context, Store, fresh_store
from bench.procfs import children_of, cpu_seconds
from bench.results import BenchError, Result, Target, median, percentile
from bench.workers import Workers

FIGURE = "4. Pickup latency"
MEDIAN_TARGETS = {
    "sqlite": Target("value_max", 10.0, "≤ 10 ms"),
    "postgres": Target("value_max", 5.0, "≤ 5 ms"),
}
P99_TARGET = Target("value_max", 50.0, "≤ 50 ms")
CPU_TARGET = Target("value_max", 2.0, "< 2% of a core")
SAMPLE_TIMEOUT = 30.0  # seconds one job may take from enqueue to completion
# A random pause between samples, so the worker is idle again and the enqueues do not
# fall into step with its polling period.
PAUSE = (0.05, 0.15)


def sample(store: Store) -> float:
    """Enqueue one job, wait for it to finish; its created_at → started_at in ms."""
    job_id = store.cli("enqueue", '{"command":"true"}').strip()
    times: list[tuple[float, float | None, float | None]] = []

    def finished() -> bool:
        times[:] = [store.job_times(job_id)]
        return times[0][2] is not None

    store.wait_for(f"job {job_id} to finish", finished, SAMPLE_TIMEOUT, interval=0.005)
    created, started, _ = times[0]
    assert started is not None
    return (started - created) * 1000


def idle_cpu(pids: list[int], seconds: float) -> float:
    """CPU the worker processes use while idle, in % of one core (utime+stime)."""
    before = sum(cpu_seconds(pid) for pid in pids)
    start = time.monotonic()
    time.sleep(seconds)
    used = sum(cpu_seconds(pid) for pid in pids) - before
    return used / (time.monotonic() - start) * 100


def run(ctx: Context, backend: str) -> list[Result]:
    sizes = ctx.sizes
    with fresh_store(ctx, backend, "latency") as store:
        store.prepare()
        with Workers(store, 1) as workers:
            pids = workers.ready()
            time.sleep(sizes.latency_idle_wait)
            samples = []
            for _ in range(sizes.latency_samples):
                samples.append(sample(store))
                time.sleep(random.uniform(*PAUSE))
            time.sleep(0.5)  # let the last job's bookkeeping settle
            alive = children_of(workers.proc.pid)
            if gone := [pid for pid in pids if pid not in alive]:
                raise BenchError(f"worker process {gone} exited while idle")
            cpu = idle_cpu(pids, sizes.idle_cpu_seconds)
    count = len(samples)
    spread = f"min {min(samples):.1f} ms, max {max(samples):.1f} ms over {count} samples"
    return [
        Result(
            FIGURE,
            "median",
            f"median created_at → started_at, 1 idle worker, {count} single enqueues"
            " (it includes the enqueuing transaction's commit)",
            backend,
            median(samples),
            "ms",
            target=MEDIAN_TARGETS[backend],
            detail=spread,
        ),
        Result(
            FIGURE,
            "p99",
            f"p99 created_at → started_at ({count} samples)",
            backend,
            percentile(samples, 99),
            "ms",
            target=P99_TARGET,
            detail=spread
            + ("; with under 100 samples p99 is close to the maximum" * (count < 100)),
        ),
        Result(
            FIGURE,
            "idle worker CPU",
            f"idle worker CPU over {sizes.idle_cpu_seconds:g} s (/proc utime+stime)",
            backend,
            cpu,
            "% core",
            target=CPU_TARGET,
        ),
    ]
