"""Figure 1: how fast two burst workers get through many trivial jobs, against the best
a shell can do with the same two slots (`xargs -P2`) on the same machine, right then."""

from __future__ import annotations

from bench.env import Context, Store, child_env, fresh_store, timed
from bench.results import BenchError, Result, Target, median
from bench.workers import Workers

FIGURE = "1. Throughput"
TARGETS = {
    "sqlite": Target("ratio_min", 0.80, "≥ 80% of xargs"),
    "postgres": Target("ratio_min", 0.65, "≥ 65% of xargs"),
}


def xargs_rate(jobs: int) -> float:
    """Jobs/s of `seq N | xargs -P2 -I{} sh -c true`: a fork+exec per job, two at a time,
    no bookkeeping. The ceiling for any queue that runs each job in a shell."""
    elapsed = timed(
        ["sh", "-c", f"seq {jobs} | xargs -P2 -I{{}} sh -c true"],
        child_env(),
        timeout=60 + jobs / 10,
    )
    return jobs / elapsed


def drain(store: Store, jobs: int, after_seq: int) -> tuple[float, float, float]:
    """Run `worker start --count 2 --burst` until it exits by itself.

    Returns (jobs/s from the first claim to the last completion, that span, wall seconds
    of the whole command including start-up and the final empty claims).
    """
    workers = Workers(store, 2, burst=True)
    wall = workers.wait(timeout=120 + jobs / 10)
    done, first, last = store.span(after_seq)
    if done != jobs:
        raise BenchError(f"{jobs - done} of {jobs} jobs were not completed")
    span = last - first
    return jobs / span, span, wall


def run(ctx: Context, backend: str) -> list[Result]:
    jobs = ctx.sizes.throughput_jobs
    runs = ctx.sizes.reference_runs
    # The reference brackets the measurement, so a change of load hits both.
    references = [xargs_rate(jobs) for _ in range((runs + 1) // 2)]
    with fresh_store(ctx, backend, "throughput") as store:
        store.prepare()
        store.cli("enqueue", "-", stdin=store.jobs_file(jobs))
        rate, span, wall = drain(store, jobs, 0)
    references += [xargs_rate(jobs) for _ in range(runs // 2)]
    reference = median(references)
    return [
        Result(
            FIGURE,
            "burst drain rate",
            f"{jobs:,} `true` jobs, 2 burst workers, first claim → last completion",
            backend,
            rate,
            "jobs/s",
            reference,
            f"`seq {jobs} | xargs -P2 -I{{}} sh -c true` (median of {runs})",
            TARGETS[backend],
            f"span {span:.2f} s; whole `worker start --burst` {wall:.2f} s "
            f"({jobs / wall:,.0f} jobs/s with start-up); xargs runs "
            + ", ".join(f"{rate:,.0f}" for rate in references)
            + " jobs/s",
        )
    ]
