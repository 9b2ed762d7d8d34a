"""The results as a table on the terminal (rich) and as docs/BENCHMARKS.md."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.results import Result


@dataclass
class Run:
    """Everything the report says: the results and the circumstances they were made in."""

    results: list[Result]
    facts: dict[str, str]
    command: str
    quick: bool
    skipped: list[str] = field(default_factory=list)
    loaded: bool = False
    note: str = ""


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "jobs/s":
        return f"{value:,.0f} jobs/s"
    if unit == "% core":
        return f"{value:.2f}% of a core"
    if unit == "ms":
        return f"{value:.1f} ms"
    return f"{value:.1f} {unit}"


def fmt_ratio(result: Result) -> str:
    ratio = result.ratio
    if ratio is None:
        return "—"
    # Three decimals below 10, so a ratio just under a target does not print as on it.
    return f"{ratio:.3f}x" if ratio < 10 else f"{ratio:.1f}x"


def verdict(result: Result) -> str:
    if result.error is not None:
        return "ERROR"
    if result.not_measured is not None:
        return "not measured"
    if result.passed is None:
        return "—"
    return "pass" if result.passed else "FAIL"


def _ordered(results: Sequence[Result]) -> list[Result]:
    """Figure by figure, SQLite before PostgreSQL, in the order each figure produced them."""
    figures = list(dict.fromkeys(result.figure for result in results))
    backends = ["sqlite", "postgres"]
    return sorted(
        results,
        key=lambda r: (
            figures.index(r.figure),
            backends.index(r.backend) if r.backend in backends else 9,
        ),
    )


def print_table(run: Run, console: Console | None = None) -> None:
    # Off a terminal rich assumes 80 columns, which folds every cell: give it room.
    console = console or Console(width=None if sys.stdout.isatty() else 150)
    title = "queuectl benchmarks" + (" (quick run)" if run.quick else "")
    table = Table(title=title, show_lines=False)
    for column in ("Figure", "Measure", "Backend", "Value", "Reference", "Ratio", "Target"):
        table.add_column(column, overflow="fold")
    table.add_column("Result")
    style = {"pass": "green", "FAIL": "red", "ERROR": "bold red"}
    for result in _ordered(run.results):
        outcome = verdict(result)
        table.add_row(
            result.figure,
            result.name,
            result.backend,
            fmt(result.value, result.unit),
            fmt(result.reference, result.unit),
            fmt_ratio(result),
            result.target.text if result.target else "",
            f"[{style.get(outcome, '')}]{outcome}[/]" if outcome in style else outcome,
        )
    console.print(table)
    for result in run.results:
        if result.error is not None:
            console.print(f"[bold red]error[/] {result.figure} ({result.backend}): {result.error}")
    for result in run.results:
        if result.not_measured is not None:
            console.print(
                f"[yellow]not measured[/] {result.figure} {result.name} ({result.backend}):"
                f" {result.not_measured}"
            )
    for reason in run.skipped:
        console.print(f"[yellow]skipped[/] {reason}")


def markdown(run: Run) -> str:
    """docs/BENCHMARKS.md: the summary, each figure with its method, the machine."""
    lines = ["# queuectl benchmarks", ""]
    if run.quick:
        lines += [
            "> **This is a quick run** (`--quick`: a tenth or less of the issue's sizes, fewer",
            "> samples). Its numbers show that the harness works and roughly where queuectl",
            "> stands; they are not the figures to quote. Run `make bench` for those.",
            "",
        ]
    if run.loaded:
        lines += [
            f"> **The machine was loaded** during this run (load average "
            f"{run.facts.get('Load average at start', '?')} at the start, "
            f"{run.facts.get('Load average at end', '?')} at the end, on "
            f"{run.facts.get('Cores', '?')} cores): absolute times are inflated and noisy."
            " The ratios, whose references ran in the same minutes, suffer less.",
            "",
        ]
    if run.note:
        lines += [f"> {run.note}", ""]
    lines += [
        "Each figure is measured on both backends with the installed `queuectl` console",
        "script, in subprocesses, on a fresh store (a new temporary folder for SQLite, a new",
        "database for PostgreSQL), next to a reference measured in the same run. Targets are",
        "the issue's: mostly ratios to that reference, so that they hold on any machine.",
        "",
        "## Summary",
        "",
        "| Figure | Measure | Backend | Value | Reference | Ratio | Target | Result |",
        "|---|---|---|--:|--:|--:|---|---|",
    ]
    ordered = _ordered(run.results)
    for r in ordered:
        lines.append(
            f"| {r.figure} | {r.name} | {r.backend} | {fmt(r.value, r.unit)} | "
            f"{fmt(r.reference, r.unit)} | {fmt_ratio(r)} | "
            f"{r.target.text if r.target else ''} | {_md_verdict(r)} |"
        )
    if run.skipped:
        lines += ["", *[f"- Skipped: {reason}" for reason in run.skipped]]
    lines += ["", "## What each figure measures", "", *_details(ordered)]
    lines += ["", METHOD, "", "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in run.facts.items()]
    lines += [
        "",
        "## Reproduce",
        "",
        "```sh",
        run.command,
        "```",
        "",
        "`make bench` runs the full suite on both backends (PostgreSQL from",
        "`QUEUECTL_BENCH_PG_URL`, else `QUEUECTL_TEST_PG_URL`, else",
        "`postgresql://postgres@127.0.0.1:5432/postgres`; skipped with a reason when none",
        "answers); `make bench-quick` the quick one, without the peers (`--peers` adds them).",
        "The exit status is 0 whatever the numbers and non-zero only when a measurement",
        "crashed.",
        "",
    ]
    return "\n".join(lines)


def _details(ordered: Sequence[Result]) -> list[str]:
    """Per figure: what was measured, against what, the verdict and the particulars."""
    lines: list[str] = []
    figure = None
    for r in ordered:
        if r.figure != figure:
            figure = r.figure
            if lines and lines[-1]:
                lines.append("")
            lines += [f"### {figure}", ""]
        lines.append(f"- **{r.backend}, {r.name}**: {r.metric}.")
        if r.error is not None:
            lines.append(f"  **Error**: {r.error}")
            continue
        if r.not_measured is not None:
            lines.append(f"  Not measured: {r.not_measured}.")
            continue
        lines.append(f"  Value {fmt(r.value, r.unit)}.")
        if r.reference is not None:
            lines.append(
                f"  Reference: {r.reference_label}, {fmt(r.reference, r.unit)}; "
                f"ratio {fmt_ratio(r)}."
            )
        if r.target is not None:
            lines.append(f"  Target {r.target.text}: {_md_verdict(r)}.")
        if r.detail:
            lines.append(f"  ({r.detail})")
    return lines


def _md_verdict(result: Result) -> str:
    outcome = verdict(result)
    return f"**{outcome}**" if outcome in ("FAIL", "ERROR") else outcome


METHOD = """## Method

- **Start-up as installed.** `python -m compileall -q src` runs first, and every measured
  process runs without `PYTHONDONTWRITEBYTECODE`, so start-up loads bytecode as an
  installed package does.
- **References in the same run.** Throughput is measured in interleaved rounds: each
  round drains the same N jobs with `seq N | xargs -P2 -I{} sh -c true`, with queuectl and
  with each peer, in an order turned by one every round; each figure is the median over
  the rounds, and every round's rates are listed as ratios to that round's `xargs`.
  `python -c pass`, `pgq queue` and the SQLite commands are interleaved run by run with
  the command they are compared with, so a burst of load from elsewhere hits both.
- **Peers.** task-spooler, huey and pgqueuer drain the same `sh -c true` jobs with two
  slots, all enqueued before anything runs, timed from the first start to the last end:
  - *task-spooler* (Debian's `task-spooler`, `tsp`): a private server (its own `TS_SOCKET`
    in a temporary folder, so no user's queue is touched), `tsp -S 2`, output files as
    by default. A gate job queued with `-N 2` holds both slots, blocked on a FIFO, while
    the N jobs are queued; the clock starts when the FIFO is written and stops when
    `tsp -w` on the last job returns and `tsp -l` shows every job finished with status 0.
    Its span so includes the gate's exit and one client's wake-up (about a millisecond).
  - *huey* on `SqliteHuey`: N tasks enqueued with the consumer stopped, then
    `huey_consumer -w 2`, once with `-k thread` and once with `-k process`; each task runs
    `subprocess.run(['sh', '-c', 'true'])` and appends its start and end time to a file.
    queuectl is compared with the faster of the two.
  - *pgqueuer* on a fresh database after `pgq install`: N jobs enqueued in one call, then
    one consumer in drain mode (asyncpg driver) whose handler runs
    `asyncio.create_subprocess_exec('sh', '-c', 'true')` and records its times. Two slots
    are kept by a semaphore in the handler, with the default batch size, on the standard
    asyncio loop: the fastest configuration that never runs more than two jobs at once.
    An entrypoint `concurrency_limit=2` or `max_concurrent_tasks` (each waits for a 100 ms
    status flush or poll between batches) and uvloop (slow to reap children here) were
    several times slower.
  - *Installing them.* A full run, or `--peers`, installs what is missing: `apt-get
    install task-spooler` (as root), and huey and `pgqueuer[asyncpg]` with pip into a
    scratch virtual environment, `~/.cache/queuectl-bench/peers-venv` (or
    `$QUEUECTL_BENCH_PEERS`), never into the project's. A quick run leaves the peers out
    and installs nothing unless given `--peers`. A peer that is missing, cannot be
    installed or fails is reported as "not measured" with the reason; the rest goes on.
- **PostgreSQL start-up (figure 7).** One `enqueue`, `status` and `show ID` on a
  PostgreSQL store, against pgqueuer's CLI enqueuing one job (`pgq queue run_true`) and
  against the same command on a SQLite store: wall time of the whole command, one warm-up
  run of each thrown away, then the median of the interleaved runs.
- **Store timestamps.** Throughput spans the first `started_at` to the last `finished_at`
  of the jobs; pickup latency is `created_at` → `started_at` of each job. They are read
  with a plain driver connection at full precision (the CLI prints milliseconds).
- **Scale store.** The finished jobs (one attempt row each, spread over 30 days) are
  inserted by direct SQL into the schema a first `queuectl status` created: executemany
  for SQLite (then a WAL checkpoint), `generate_series` for PostgreSQL (then
  `VACUUM ANALYZE`, the state autovacuum keeps a table of that size in). The pending jobs
  are inserted the same way into the big store and into an empty one, and each is drained
  by `worker start --count 2 --burst`.
- **Memory and CPU** come from `/proc/PID/status` (VmRSS, VmHWM), `/proc/PID/smaps_rollup`
  (PSS) and `/proc/PID/stat` (utime+stime) of the worker processes, the children of the
  `worker start` supervisor."""


def write_markdown(run: Run, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(run))
