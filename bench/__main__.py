"""`python -m bench [--quick] [--[no-]peers] [--backend sqlite|postgres|both] [--out FILE]`.

Runs every figure on every backend asked for, prints the table and writes the report.
Exits 0 whatever the numbers (timings on a shared machine are no reason to fail a build)
and 1 only when a measurement crashed. The peers (task-spooler, huey, pgqueuer) are
measured, and installed first if they are missing, in a full run or with --peers; a quick
run leaves them out unless asked, so that it installs nothing.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from bench import enqueue, footprint, latency, scale, startup, throughput
from bench.env import PYTHON, ROOT, Context, PgServer, compile_sources, find_pg_server
from bench.machine import load_average, machine_facts
from bench.peers.install import Peers, find_peers
from bench.report import Run, print_table, write_markdown
from bench.results import BenchError, Result, Sizes

Figure = Callable[[Context, str], list[Result]]
FIGURES: list[tuple[str, Figure]] = [
    (throughput.FIGURE, throughput.run),
    (enqueue.PER_CALL, enqueue.run_per_call),
    (enqueue.BULK, enqueue.run_bulk),
    (latency.FIGURE, latency.run),
    (scale.FIGURE, scale.run),
    (footprint.FIGURE, footprint.run),
    (startup.FIGURE, startup.run),
]
PEER_FIGURES = {1, 7}  # the figures that measure peers beside queuectl
ONLY_ON = {startup.FIGURE: {"postgres"}}  # figures about one backend (it brings the other)
BACKENDS = {"sqlite": ["sqlite"], "postgres": ["postgres"], "both": ["sqlite", "postgres"]}
LOADED = 0.5  # a 1-minute load average above this many per core before we start: busy


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (about 2 minutes)")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="both")
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "BENCHMARKS.md",
        help="where to write the markdown report (default: docs/BENCHMARKS.md)",
    )
    parser.add_argument(
        "--only",
        metavar="N[,N...]",
        help=f"run only these figures (1-{len(FIGURES)}), e.g. --only 1,4",
    )
    parser.add_argument(
        "--peers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure task-spooler, huey and pgqueuer beside queuectl, installing them"
        " (apt-get; a scratch venv under ~/.cache/queuectl-bench) if missing"
        " (default: on for a full run, off with --quick)",
    )
    parser.add_argument("--note", default="", help="a line to add to the report's header")
    return parser.parse_args(argv)


def _stop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl+C: workers stopped, databases dropped, folders removed."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    began = time.monotonic()
    wanted = {int(n) for n in args.only.split(",")} if args.only else set(range(1, 99))
    backends = list(BACKENDS[args.backend])
    compile_sources()
    pg: PgServer | None = None
    skipped: list[str] = []
    if "postgres" in backends:
        pg, reason = find_pg_server()
        if pg is None:
            backends.remove("postgres")
            skipped.append(f"PostgreSQL: {reason}")
            print(f"skipping PostgreSQL: {reason}", flush=True)
    sizes = Sizes.pick(args.quick)
    peers = pick_peers(args, wanted)
    facts = machine_facts(pg)
    facts["Peers"] = peers.summary()
    facts["Sizes"] = (
        f"throughput {sizes.throughput_jobs:,} jobs x {sizes.throughput_rounds} rounds; "
        f"enqueue {sizes.enqueue_runs} runs; "
        f"bulk {sizes.bulk_jobs:,} jobs; latency {sizes.latency_samples} samples, idle CPU "
        f"over {sizes.idle_cpu_seconds:g} s; scale {sizes.scale_finished:,} finished + "
        f"{sizes.scale_pending:,} pending; footprint {sizes.footprint_jobs:,} jobs"
    )
    results: list[Result] = []
    scratch = Path(tempfile.mkdtemp(prefix="queuectl-bench-"))
    ctx = Context(sizes, scratch, pg, peers)
    try:
        for number, (figure, measure) in enumerate(FIGURES, start=1):
            if number not in wanted:
                continue
            for backend in backends:
                if backend in ONLY_ON.get(figure, {backend}):
                    results += run_one(ctx, figure, measure, backend)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if pg is not None:
            pg.close()
    facts["Load average at end"] = load_average()
    facts["Run time"] = f"{time.monotonic() - began:.0f} s"
    run = Run(
        results,
        facts,
        reproduce_command(args),
        args.quick,
        skipped,
        loaded=_was_loaded(facts["Load average at start"]),
        note=args.note,
    )
    print_table(run)
    write_markdown(run, args.out)
    print(f"report written to {args.out}")
    return 1 if any(result.error is not None for result in results) else 0


def pick_peers(args: argparse.Namespace, wanted: set[int]) -> Peers:
    """The peers for the figures that compare with them (1 and 7), installed when a full
    run or --peers asks for them."""
    measure = (not args.quick) if args.peers is None else args.peers
    if not measure:
        why = "--no-peers" if args.peers is False else "a quick run leaves them out (--peers)"
        return Peers.off(why)
    if not wanted & PEER_FIGURES:
        return Peers.off("no figure here compares with them")
    return find_peers(PYTHON, install=True)


def run_one(ctx: Context, figure: str, measure: Figure, backend: str) -> list[Result]:
    """One figure on one backend; a crash becomes an ERROR line, not the end of the run."""
    print(f"{figure} on {backend} ...", flush=True)
    start = time.monotonic()
    try:
        found = measure(ctx, backend)
    except Exception as exc:
        if not isinstance(exc, BenchError):
            traceback.print_exc()
        message = f"{type(exc).__name__}: {exc}"
        print(f"  error: {message}", flush=True)
        return [Result(figure, "—", "did not complete", backend, None, "", error=message)]
    print(f"  done in {time.monotonic() - start:.1f} s", flush=True)
    return found


def reproduce_command(args: argparse.Namespace) -> str:
    parts = [".venv/bin/python -m bench"]
    if args.quick:
        parts.append("--quick")
    if args.backend != "both":
        parts.append(f"--backend {args.backend}")
    if args.only:
        parts.append(f"--only {args.only}")
    if args.peers is not None:
        parts.append("--peers" if args.peers else "--no-peers")
    return " ".join(parts)


def _was_loaded(load: str) -> bool:
    import os

    try:
        return float(load.split()[0]) > LOADED * (os.cpu_count() or 1)
    except (ValueError, IndexError):
        return False


if __name__ == "__main__":
    sys.exit(main())
