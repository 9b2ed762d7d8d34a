"""The screen of `queuectl top`: one snapshot of the queue, drawn with rich."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rich.console import RenderableType
from rich.layout import Layout
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from queuectl.cli.context import counted
from queuectl.cli.render import duration
from queuectl.core.models import Job, JobState, WorkerInfo
from queuectl.core.redact import redact
from queuectl.store.base import QueueInfo, ThroughputBucket

SPARK_LEVELS = "▁▂▃▄▅▆▇█"
WIDE = 110  # columns from which the queues sit beside the counts instead of below them
SUMMARY_ROWS = 7  # one per count: total and the six states
QUEUE_ROWS = 7  # at most, on a narrow screen (a wide one has SUMMARY_ROWS beside the counts)
WORKER_ROWS = 12  # at most, the last one saying "+N more" when there are more
MIN_FAILURE_ROWS = 2
PANEL_CHROME = 3  # rows a panel adds to its table: two borders and the header row

COUNT_ROWS = (
    ("Pending", JobState.PENDING),
    ("Processing", JobState.PROCESSING),
    ("Completed", JobState.COMPLETED),
    ("Failed", JobState.FAILED),
    ("Dead (DLQ)", JobState.DEAD),
    ("Cancelled", JobState.CANCELLED),
)
QUEUE_COLUMNS = (
    ("pending", JobState.PENDING),
    ("running", JobState.PROCESSING),
    ("completed", JobState.COMPLETED),
    ("failed", JobState.FAILED),
    ("dead", JobState.DEAD),
)
STATE_STYLES = {
    JobState.PENDING: "yellow",
    JobState.PROCESSING: "cyan",
    JobState.COMPLETED: "green",
    JobState.FAILED: "red",
    JobState.DEAD: "bold red",
    JobState.CANCELLED: "dim",
}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one refresh read from the store."""

    now: datetime
    counts: dict[JobState, int]
    queues: list[QueueInfo]
    throughput: list[ThroughputBucket]  # per minute, oldest first
    workers: list[WorkerInfo]
    running: dict[str, Job]  # the job each worker holds, by worker id
    failures: list[Job]  # failed and dead jobs, the latest change first

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def sparkline(values: Sequence[int], top: int | None = None) -> str:
    """One character per value: ▁ for zero up to █ for `top` (default: the largest value).

    Any value above zero shows at least ▂, so a quiet minute never looks like an idle one.
    """
    peak = max(values, default=0) if top is None else top
    steps = len(SPARK_LEVELS) - 1
    chars = []
    for value in values:
        if value <= 0 or peak <= 0:
            chars.append(SPARK_LEVELS[0])
        else:
            chars.append(SPARK_LEVELS[max(1, math.ceil(min(value, peak) / peak * steps))])
    return "".join(chars)


def one_line(text: str) -> str:
    """Multi-line messages (tracebacks, driver errors) squeezed into one row."""
    return " ".join(text.split())


def view(
    snapshot: Snapshot | None,
    *,
    target: str,
    interval: float,
    width: int,
    height: int,
    error: str | None = None,
) -> Layout:
    """The whole screen: header, counts and queues, workers, failures, footer."""
    parts = [Layout(_header(snapshot, interval), name="header", size=1)]
    if error is not None:
        error = redact(error, target)  # a driver's message may quote the target
        parts.append(Layout(_error_line(error, snapshot, interval), name="error", size=1))
    if snapshot is None:
        parts.append(Layout(Text("Reading the store…", style="dim"), name="body", ratio=1))
    else:
        parts += _body(snapshot, width, height - len(parts) - 1)
    parts.append(Layout(_footer(target), name="footer", size=1))
    root = Layout(name="root")
    root.split_column(*parts)
    return root


def _body(snapshot: Snapshot, width: int, height: int) -> list[Layout]:
    """The panels, given rows in order of importance: the counts always, the workers
    before the queues (on a narrow screen, where these sit below the counts), and the
    failures whatever is left."""
    summary_height = SUMMARY_ROWS + PANEL_CHROME
    spare = height - summary_height - (MIN_FAILURE_ROWS + PANEL_CHROME)
    worker_rows = min(len(snapshot.workers), WORKER_ROWS, max(1, spare - PANEL_CHROME))
    workers = _workers_panel(snapshot, worker_rows)
    spare -= _height(worker_rows)
    counts = _counts_panel(snapshot)
    if width >= WIDE:
        counts.height = queues_height = summary_height
        queues = _queues_panel(snapshot, SUMMARY_ROWS, queues_height)
        row = Table.grid(expand=True)
        row.add_column()
        row.add_column(ratio=1)
        row.add_row(counts, queues)
        top = [Layout(row, name="summary", size=summary_height)]
    else:
        counts.expand = True
        top = [Layout(counts, name="summary", size=summary_height)]
        queue_rows = min(len(snapshot.queues), QUEUE_ROWS, spare - PANEL_CHROME)
        if queue_rows >= (1 if snapshot.queues else 0) and _height(queue_rows) <= spare:
            queues = _queues_panel(snapshot, queue_rows, _height(queue_rows))
            top.append(Layout(queues, name="queues", size=_height(queue_rows)))
    return [
        *top,
        Layout(workers, name="workers", size=_height(worker_rows)),
        Layout(_failures_panel(snapshot), name="failures", ratio=1),
    ]


def _height(rows: int) -> int:
    """Rows of a panel holding a table of `rows` rows (or, for none, one line of text)."""
    return rows + PANEL_CHROME if rows else PANEL_CHROME


def _clip(count: int, rows: int) -> int:
    """How many of `count` items to show in `rows` rows, keeping one for "+N more"."""
    return count if count <= rows else max(0, rows - 1)


def _header(snapshot: Snapshot | None, interval: float) -> RenderableType:
    grid = Table.grid(expand=True)
    grid.add_column()
    grid.add_column(justify="right")
    left = Text.assemble(("queuectl top", "bold"))
    if snapshot is not None:
        left.append(
            f"   {counted(snapshot.total, 'job')}, {counted(len(snapshot.workers), 'worker')}, "
            f"{counted(len(snapshot.queues), 'queue')}"
        )
    clock = snapshot.now.astimezone().strftime("%H:%M:%S") if snapshot is not None else ""
    grid.add_row(left, Text(f"{clock}  refresh {interval:g}s", style="dim"))
    return grid


def _error_line(error: str, snapshot: Snapshot | None, interval: float) -> RenderableType:
    text = Text(f"store error: {one_line(error)}", style="bold red")
    text.append(f" (retrying every {interval:g}s", style="red")
    if snapshot is not None:
        text.append(f"; data of {snapshot.now.astimezone():%H:%M:%S}", style="red")
    text.append(")", style="red")
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


def _footer(target: str) -> RenderableType:
    grid = Table.grid(expand=True)
    grid.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    grid.add_column(justify="right", no_wrap=True)
    grid.add_row(
        Text(f"store: {redact(target, target)}", style="dim"),
        Text.assemble(("q", "bold reverse"), " to quit"),
    )
    return grid


def _counts_panel(snapshot: Snapshot) -> Panel:
    minutes = len(snapshot.throughput)
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("state", no_wrap=True)
    table.add_column("jobs", justify="right", no_wrap=True)
    table.add_column("attempts per minute", no_wrap=True, min_width=minutes)
    table.add_column(f"{minutes} min", justify="right", no_wrap=True)
    table.add_row(Text("Total", style="bold"), Text(str(snapshot.total), style="bold"))
    finished = {
        JobState.COMPLETED: [bucket.completed for bucket in snapshot.throughput],
        JobState.FAILED: [bucket.failed for bucket in snapshot.throughput],
    }
    for label, state in COUNT_ROWS:
        style = STATE_STYLES[state]
        cells = [Text(label, style=style), Text(str(snapshot.counts[state]))]
        if state in finished:
            per_minute = finished[state]
            cells += [Text(sparkline(per_minute), style=style), Text(str(sum(per_minute)))]
        table.add_row(*cells)
    return Panel(table, title="Jobs", title_align="left", expand=False)


def _queues_panel(snapshot: Snapshot, rows: int, height: int) -> RenderableType:
    title = "Queues"
    if not snapshot.queues:
        return Panel(Text("No queues yet.", style="dim"), title=title, title_align="left")
    table = Table(box=None, pad_edge=False, expand=True, header_style="bold")
    table.add_column("queue", no_wrap=True, overflow="ellipsis", ratio=1, min_width=8)
    for name, _ in QUEUE_COLUMNS:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    shown = _clip(len(snapshot.queues), rows)
    for queue in snapshot.queues[:shown]:
        marks = []
        if queue.paused:
            marks.append(Text("paused", style="bold yellow"))
        if queue.max_running is not None:
            marks.append(Text(f"limit {queue.max_running}", style="magenta"))
        if queue.rate is not None:
            marks.append(Text(f"rate {queue.rate}", style="magenta"))
        table.add_row(
            Text(queue.name),
            *(Text(str(queue.counts[state])) for _, state in QUEUE_COLUMNS),
            Text(" ").join(marks),
        )
    if shown < len(snapshot.queues):
        table.add_row(Text(f"+{len(snapshot.queues) - shown} more", style="dim"))
    return Panel(table, title=title, title_align="left", height=height)


def _workers_panel(snapshot: Snapshot, rows: int) -> RenderableType:
    workers = snapshot.workers
    title = f"Workers ({len(workers)} active)"
    if not workers:
        hint = Text("No active workers: start some with `queuectl worker start`.", style="dim")
        return Panel(hint, title=title, title_align="left")
    table = Table(box=None, pad_edge=False, expand=True, header_style="bold")
    table.add_column("worker", no_wrap=True, overflow="ellipsis")
    table.add_column("host", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("pid", justify="right", no_wrap=True)
    table.add_column("uptime", justify="right", no_wrap=True)
    table.add_column("job", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("running for", justify="right", no_wrap=True)
    table.add_column("command", no_wrap=True, overflow="ellipsis", ratio=1)
    shown = _clip(len(workers), rows)
    for worker in workers[:shown]:
        name = Text(worker.id)
        if worker.status != "running":
            name.append(f" ({worker.status})", style="yellow")
        job = snapshot.running.get(worker.id)
        job_id = job.id if job is not None else worker.current_job_id
        started = job.started_at if job is not None else None
        table.add_row(
            name,
            Text(worker.host),
            Text(str(worker.pid)),
            Text(duration((snapshot.now - worker.started_at).total_seconds())),
            Text(job_id, style="cyan") if job_id else Text("idle", style="dim"),
            Text(duration((snapshot.now - started).total_seconds()) if started else ""),
            Text(one_line(job.command) if job is not None else "", style="dim"),
        )
    if shown < len(workers):
        table.add_row(Text(f"+{len(workers) - shown} more", style="dim"))
    return Panel(table, title=title, title_align="left")


def _failures_panel(snapshot: Snapshot) -> RenderableType:
    title = "Latest failures"
    if not snapshot.failures:
        return Panel(Text("No failed or dead jobs.", style="dim"), title=title, title_align="left")
    table = Table(box=None, pad_edge=False, expand=True, header_style="bold")
    table.add_column("when", justify="right", no_wrap=True)
    table.add_column("job", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("state", no_wrap=True)
    table.add_column("attempts", justify="right", no_wrap=True)
    table.add_column("error", no_wrap=True, overflow="ellipsis", ratio=3)
    table.add_column("command", no_wrap=True, overflow="ellipsis", ratio=2)
    for job in snapshot.failures:
        ago = duration((snapshot.now - job.updated_at).total_seconds()) + " ago"
        table.add_row(
            Text(ago, style="dim"),
            Text(job.id),
            Text(job.state.value, style=STATE_STYLES[job.state]),
            Text(f"{job.attempts}/{job.max_retries}"),
            Text(one_line(job.last_error or "")),
            Text(one_line(job.command), style="dim"),
        )
    return Panel(table, title=title, title_align="left")
