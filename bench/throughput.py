"""Figure 1: how fast two burst workers get through many trivial jobs, against the best
a shell can do with the same two slots (`xargs -P2`) and against the tools people would
pick instead, all in interleaved rounds on the same machine, right then."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.env import Context, Store, child_env, fresh_store, scratch_database, timed
from bench.peers import drains
from bench.peers.drains import Drain
from bench.peers.install import TSP
from bench.results import BenchError, Result, Target, median
from bench.workers import Workers

FIGURE = "1. Throughput"
TARGETS = {
    "sqlite": Target("ratio_min", 0.60, "≥ 0.60x xargs"),
    "postgres": Target("ratio_min", 0.50, "≥ 0.50x xargs"),
}
PGQUEUER_SLOTS = ("limit", "semaphore")
AHEAD_OF_HUEY = Target("ratio_min", 1.0, "ahead of huey (≥ 1.0x)")
MATCH_TSP = Target("ratio_min", 1.0, "stretch: ≥ 1.0x task-spooler")
BEYOND_PGQUEUER = Target("ratio_min", 1.25, "≥ 1.25x pgqueuer")
XARGS = "xargs"
QUEUECTL = "queuectl"
HUEY_KINDS = ("thread", "process")


def xargs_rate(jobs: int) -> float:
    """Jobs/s of `seq N | xargs -P2 -I{} sh -c true`: a fork+exec per job, two at a time,
    no bookkeeping. The ceiling for any queue that runs each job in a shell."""
    return jobs / xargs_seconds(jobs)


def xargs_seconds(jobs: int) -> float:
    return timed(
        ["sh", "-c", f"seq {jobs} | xargs -P2 -I{{}} sh -c true"],
        child_env(),
        timeout=60 + jobs / 10,
    )


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


@dataclass
class Contender:
    """One thing that drains N jobs in a round; `peer` names what it needs installed."""

    label: str
    measure: Callable[[Path], Drain]  # given an empty folder of its own
    peer: str | None = None
    drains: list[Drain] = field(default_factory=list)
    failed: str | None = None

    @property
    def rate(self) -> float:
        return median([d.rate for d in self.drains])


def contenders(ctx: Context, backend: str, jobs: int) -> list[Contender]:
    def queuectl(_workdir: Path) -> Drain:
        with fresh_store(ctx, backend, "throughput") as store:
            store.prepare()
            store.cli("enqueue", "-", stdin=store.jobs_file(jobs))
            _, span, wall = drain(store, jobs, 0)
        return Drain(jobs, span, wall)

    def xargs(_workdir: Path) -> Drain:
        seconds = xargs_seconds(jobs)
        return Drain(jobs, seconds, seconds)

    found = [Contender(XARGS, xargs), Contender(QUEUECTL, queuectl)]
    peers = ctx.peers
    if backend == "sqlite":
        found.append(Contender(TSP, lambda d: drains.tsp_drain(peers.program(TSP), d, jobs), TSP))
        for kind in HUEY_KINDS:
            found.append(Contender(f"huey ({kind})", huey_measure(ctx, jobs, kind), "huey"))
    else:
        for slots in PGQUEUER_SLOTS:
            found.append(
                Contender(f"pgqueuer ({slots})", pgqueuer_measure(ctx, jobs, slots), "pgqueuer")
            )
    return found


def pgqueuer_measure(ctx: Context, jobs: int, slots: str) -> Callable[[Path], Drain]:
    def measure(workdir: Path) -> Drain:
        with scratch_database(ctx.pg, "peer") as url:
            drains.pgqueuer_install(ctx.peers, url, workdir)
            return drains.pgqueuer_drain(ctx.peers, url, workdir, jobs, slots)

    return measure


def huey_measure(ctx: Context, jobs: int, kind: str) -> Callable[[Path], Drain]:
    return lambda workdir: drains.huey_drain(ctx.peers, workdir, jobs, kind)


def run_rounds(ctx: Context, everyone: list[Contender], rounds: int) -> None:
    """Each round runs every contender once, the order turned by one each round, so
    that none is always first after a pause or last in a warm cache."""
    active = [c for c in everyone if c.peer is None or ctx.peers.why_not(c.peer) is None]
    for number in range(rounds):
        shift = number % len(active)
        for contender in active[shift:] + active[:shift]:
            if contender.failed is not None:
                continue
            workdir = Path(tempfile.mkdtemp(prefix="round-", dir=ctx.scratch))
            try:
                contender.drains.append(contender.measure(workdir))
            except Exception as exc:
                if contender.peer is None:
                    raise
                # A peer that breaks is reported as not measured, and the rounds go on.
                contender.failed = str(exc) if isinstance(exc, BenchError) else repr(exc)
                print(f"  {contender.label} failed: {exc}", flush=True)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)


def run(ctx: Context, backend: str) -> list[Result]:
    jobs = ctx.sizes.throughput_jobs
    rounds = ctx.sizes.throughput_rounds
    everyone = contenders(ctx, backend, jobs)
    run_rounds(ctx, everyone, rounds)
    by_label = {c.label: c for c in everyone}
    xargs, queuectl = by_label[XARGS], by_label[QUEUECTL]
    reference = f"`seq {jobs} | xargs -P2 -I{{}} sh -c true` (median of {rounds} rounds)"
    spans = ", ".join(f"{d.span:.2f}" for d in queuectl.drains)
    walls = ", ".join(f"{d.wall:.2f}" for d in queuectl.drains)
    results = [
        Result(
            FIGURE,
            "burst drain rate",
            f"{jobs:,} `true` jobs, 2 burst workers, first claim → last completion,"
            f" median of {rounds} interleaved rounds",
            backend,
            queuectl.rate,
            "jobs/s",
            xargs.rate,
            reference,
            TARGETS[backend],
            f"spans {spans} s; whole `worker start --burst` {walls} s. " + per_round(everyone),
        )
    ]
    for peer in everyone[2:]:
        results.append(peer_result(ctx, backend, peer, xargs, reference, jobs))
    results += comparisons(ctx, backend, everyone)
    return results


def per_round(everyone: list[Contender]) -> str:
    """Every round's rates, each as a ratio to that round's xargs."""
    xargs = everyone[0].drains
    parts = []
    for number, base in enumerate(xargs):
        cells = [f"xargs {base.rate:,.0f}"]
        for contender in everyone[1:]:
            if number < len(contender.drains):
                rate = contender.drains[number].rate
                cells.append(f"{contender.label} {rate:,.0f} ({rate / base.rate:.2f}x)")
        parts.append(f"round {number + 1}: " + ", ".join(cells))
    return "Jobs/s, " + "; ".join(parts)


def peer_result(
    ctx: Context, backend: str, peer: Contender, xargs: Contender, reference: str, jobs: int
) -> Result:
    """A peer's own drain rate against xargs: no target, it is the yardstick."""
    result = Result(
        FIGURE,
        f"{peer.label} drain rate",
        f"{jobs:,} `sh -c true` jobs, 2 slots, first start → last end ({METHODS[peer.label]})",
        backend,
        None,
        "jobs/s",
        xargs.rate,
        reference,
    )
    missing = why_not(ctx, peer)
    if missing is not None:
        result.not_measured = missing
        return result
    result.value = peer.rate
    result.detail = "spans " + ", ".join(f"{d.span:.2f}" for d in peer.drains) + " s"
    return result


def why_not(ctx: Context, contender: Contender) -> str | None:
    if contender.peer is not None and (missing := ctx.peers.why_not(contender.peer)):
        return missing
    if contender.failed is not None:
        return f"it failed: {contender.failed}"
    return None if contender.drains else "no round completed"


def comparisons(ctx: Context, backend: str, everyone: list[Contender]) -> list[Result]:
    """queuectl's median drain rate against each peer's, in the same rounds."""
    queuectl = everyone[1]
    wanted: list[tuple[str, list[Contender], Target]]
    if backend == "sqlite":
        hueys = [c for c in everyone if c.label.startswith("huey")]
        wanted = [
            ("huey", hueys, AHEAD_OF_HUEY),
            (TSP, [c for c in everyone if c.label == TSP], MATCH_TSP),
        ]
    else:
        # Against pgqueuer as documented (the entrypoint's concurrency_limit); the tuned
        # semaphore variant, which picks whole batches ahead, is reported beside it.
        documented = [c for c in everyone if c.label == "pgqueuer (limit)"]
        wanted = [("pgqueuer", documented, BEYOND_PGQUEUER)]
    results = []
    for name, candidates, target in wanted:
        measured = [c for c in candidates if why_not(ctx, c) is None]
        result = Result(
            FIGURE, f"vs {name}", f"queuectl's drain rate against {name}'s, same rounds",
            backend, queuectl.rate, "jobs/s", target=target,
        )  # fmt: skip
        if not measured:
            reasons = {why_not(ctx, c) for c in candidates}
            result.not_measured = "; ".join(sorted(r for r in reasons if r)) or "not run"
        else:
            best = max(measured, key=lambda c: c.rate)
            result.reference = best.rate
            result.reference_label = f"{best.label}, median of {len(best.drains)} rounds"
            if len(measured) > 1:
                result.reference_label += (
                    " (the fastest of " + ", ".join(c.label for c in measured) + ")"
                )
        results.append(result)
    return results


METHODS = {
    TSP: "`tsp -S 2` on a private socket; a gate job holding both slots is released"
    " once all are queued, and the clock runs until the last is reported finished",
    "huey (thread)": "SqliteHuey, `huey_consumer -k thread -w 2`, started after the"
    " enqueue; each task runs `subprocess.run(['sh', '-c', 'true'])`",
    "huey (process)": "SqliteHuey, `huey_consumer -k process -w 2`, started after the"
    " enqueue; each task runs `subprocess.run(['sh', '-c', 'true'])`",
    "pgqueuer (limit)": "one consumer in drain mode on a fresh database, asyncpg driver,"
    " each job an `asyncio.create_subprocess_exec('sh', '-c', 'true')`, the entrypoint's"
    " documented `concurrency_limit=2`",
    "pgqueuer (semaphore)": "as above, but two slots kept by a semaphore in the handler:"
    " faster, and the consumer holds a whole batch picked ahead of the two running jobs",
}
