"""Figure 7: what a short command costs on PostgreSQL, against pgqueuer's CLI enqueuing
one job and against the same command on SQLite, all interleaved in the same run.

A user of a PostgreSQL queue pays the driver's import and the connection on every
command; the issue's goal is half of pgqueuer's `pgq queue` and at most 200 ms beyond
SQLite. Only the PostgreSQL backend has this figure (it brings its own SQLite store).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.env import Context, fresh_store, scratch_database, timed
from bench.peers import drains
from bench.results import BenchError, Result, Target, median

FIGURE = "7. PostgreSQL start-up"
HALF_OF_PGQ = Target("ratio_max", 0.5, "≤ 0.5x `pgq queue`")
NEAR_SQLITE = Target("excess_max", 200.0, "≤ SQLite's + 200 ms")
PGQUEUER = "pgqueuer"
PGQ = "pgq queue"
WARM_UP = 1  # runs of each command thrown away: page cache, first connection


def run(ctx: Context, backend: str) -> list[Result]:
    if backend != "postgres":
        return []
    runs = ctx.sizes.cli_runs
    missing = ctx.peers.why_not(PGQUEUER)
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(fresh_store(ctx, "postgres", "startup"))
        lite = stack.enter_context(fresh_store(ctx, "sqlite", "startup"))
        commands: dict[str, Callable[[], float]] = {}
        for label, store in (("postgres", pg), ("sqlite", lite)):
            store.prepare()
            job_id = store.cli("enqueue", '{"command":"true"}').strip()
            commands[f"enqueue {label}"] = _bound(store.timed, "enqueue", '{"command":"true"}')
            commands[f"status {label}"] = _bound(store.timed, "status")
            commands[f"show {label}"] = _bound(store.timed, "show", job_id)
        if missing is None:
            url = stack.enter_context(scratch_database(ctx.pg, "peer"))
            workdir = Path(tempfile.mkdtemp(prefix="pgq-", dir=ctx.scratch))
            argv = [str(ctx.peers.bin("pgq")), "queue", drains.PGQ_ENTRYPOINT]
            env = drains.pgqueuer_env(url)
            commands[PGQ] = lambda: timed(argv, env, cwd=workdir)
            try:
                drains.pgqueuer_install(ctx.peers, url, workdir)
            except BenchError as exc:
                missing = f"`pgq install` failed: {exc}"
                del commands[PGQ]
        times: dict[str, list[float]] = {name: [] for name in commands}
        for number in range(WARM_UP + runs):
            # Interleaved, so that a burst of load from elsewhere hits every command alike.
            for name, command in list(commands.items()):
                try:
                    seconds = command()
                except BenchError as exc:
                    if name != PGQ:
                        raise
                    missing = f"`pgq queue` failed: {exc}"  # the peer's fault: go on
                    del commands[PGQ]
                    continue
                if number >= WARM_UP:
                    times[name].append(seconds * 1000)
    return results(times, runs, missing)


def _bound(timed_command: Callable[..., float], *args: str) -> Callable[[], float]:
    return lambda: timed_command(*args)


def results(times: dict[str, list[float]], runs: int, missing: str | None) -> list[Result]:
    found = []
    shown = {"enqueue": "`enqueue '{...}'`", "status": "`status`", "show": "`show ID`"}
    for command, text in shown.items():
        values = times[f"{command} postgres"]
        value = median(values)
        spread = f"min {min(values):.0f} ms, max {max(values):.0f} ms"
        pgq = Result(
            FIGURE, f"{text} vs pgqueuer",
            f"median wall time of `queuectl {command}` on PostgreSQL ({runs} runs)",
            "postgres", value, "ms", target=HALF_OF_PGQ, detail=spread,
        )  # fmt: skip
        if missing is not None:
            pgq.not_measured = missing
        else:
            pgq.reference = median(times[PGQ])
            pgq.reference_label = (
                f"pgqueuer's `pgq queue {drains.PGQ_ENTRYPOINT}` (median of {runs}, interleaved)"
            )
        lite = median(times[f"{command} sqlite"])
        near = Result(
            FIGURE, f"{text} vs SQLite",
            f"median wall time of `queuectl {command}` on PostgreSQL against SQLite",
            "postgres", value, "ms", lite,
            f"the same command on a SQLite store (median of {runs}, interleaved)",
            NEAR_SQLITE, spread,
        )  # fmt: skip
        found += [pgq, near]
    return found
