"""The one place that formats jobs, attempts and status for people."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from queuectl.core.clock import format_timestamp
from queuectl.core.durations import format_span
from queuectl.core.models import Attempt, Job, JobState

if TYPE_CHECKING:
    from rich.console import Console

    from queuectl.service import StatusReport

STATUS_LINES = (
    ("Pending:", JobState.PENDING),
    ("Processing:", JobState.PROCESSING),
    ("Completed:", JobState.COMPLETED),
    ("Failed:", JobState.FAILED),
    ("Dead (DLQ):", JobState.DEAD),
)


def console() -> Console:
    """A rich console that never cuts lines when the output is piped."""
    from rich.console import Console

    if sys.stdout.isatty():
        import shutil  # only here: it loads bz2 and lzma, a cost every `show` would pay

        return Console(width=shutil.get_terminal_size().columns)
    return Console(width=10_000, no_color=True, highlight=False)


def duration(seconds: float) -> str:
    """45s, 2m 5s, 1h 3m, 2d 4h (whole seconds, rounded down)."""
    return format_span(int(seconds))


def status_text(report: StatusReport) -> str:
    counts = report.counts
    lines = ["=== Job Queue Status ===", "", f"{'Total Jobs:':<17}{report.total}"]
    lines += [f"{label:<17}{counts[state]}" for label, state in STATUS_LINES]
    if counts[JobState.CANCELLED]:
        lines.append(f"{'Cancelled:':<17}{counts[JobState.CANCELLED]}")
    lines += ["", f"{'Active Workers:':<17}{len(report.workers)}"]
    if report.workers:
        lines += ["", "--- Active Workers ---"]
        for worker in report.workers:
            doing = f"Processing {worker.current_job_id}" if worker.current_job_id else "Idle"
            uptime = duration((report.now - worker.started_at).total_seconds())
            lines.append(f"  {worker.id}: {doing} (uptime: {uptime})")
    return "\n".join(lines) + "\n"


def when(value: datetime | None, now: datetime) -> str:
    """A timestamp with a relative hint: 2026-01-01T10:00:00.000Z (in 3s)."""
    if value is None:
        return "-"
    delta = (value - now).total_seconds()
    hint = f"in {duration(delta)}" if delta >= 1 else f"{duration(-delta)} ago"
    return f"{format_timestamp(value)} ({hint})"


def print_jobs(jobs: Sequence[Job], now: datetime, *, empty: str = "No jobs.") -> None:
    if not jobs:
        print(empty)
        return
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("ID", "STATE", "QUEUE", "PRI", "ATTEMPTS", "UPDATED", "COMMAND", "LAST ERROR"):
        table.add_column(name, no_wrap=name != "COMMAND", overflow="fold")
    for job in jobs:
        table.add_row(
            job.id,
            job.state.value,
            job.queue,
            str(job.priority),
            f"{job.attempts}/{job.max_retries}",
            duration((now - job.updated_at).total_seconds()) + " ago",
            job.command,
            job.last_error or "",
        )
    console().print(table, markup=False)


def print_job(job: Job, history: Sequence[Attempt], now: datetime) -> None:
    fields = [
        ("id", job.id),
        ("state", job.state.value),
        ("command", job.command),
        ("queue", job.queue),
        ("priority", str(job.priority)),
        ("attempts", f"{job.attempts} of {job.max_retries}"),
        ("timeout", f"{job.timeout:g}s"),
        ("created", when(job.created_at, now)),
        ("updated", when(job.updated_at, now)),
        ("scheduled", when(job.scheduled_at, now)),
        ("run at", when(job.run_at, now)),
        ("started", when(job.started_at, now)),
        ("finished", when(job.finished_at, now)),
        ("exit code", "-" if job.exit_code is None else str(job.exit_code)),
        ("last error", job.last_error or "-"),
        ("depends on", ", ".join(job.depends_on) or "-"),
    ]
    if job.locked_by:
        fields.append(("locked by", f"{job.locked_by} since {when(job.locked_at, now)}"))
    fields += _policy_fields(job)
    out = [f"{name + ':':<12}{value}" for name, value in fields]
    out += ["", "History:"]
    if not history:
        out.append("  (no attempts yet)")
    for attempt in history:
        ended = (
            f"{(attempt.finished_at - attempt.started_at).total_seconds():.2f}s"
            if attempt.finished_at
            else "running"
        )
        out.append(
            f"  #{attempt.attempt} {format_timestamp(attempt.started_at)} "
            f"{attempt.worker_id or '-'} {ended} {_attempt_result(attempt)}".rstrip()
        )
    out += ["", "Output:" if job.output else "Output: (none)"]
    sys.stdout.write("\n".join(out) + "\n")
    if job.output:
        sys.stdout.write(job.output if job.output.endswith("\n") else job.output + "\n")


def _policy_fields(job: Job) -> list[tuple[str, str]]:
    """The exit-code policy and dedupe key, shown only when the job has them."""
    fields = []
    if job.retry_on_exit:
        fields.append(("retry on", "exit " + ", ".join(map(str, job.retry_on_exit))))
    if job.fatal_on_exit:
        fields.append(("fatal on", "exit " + ", ".join(map(str, job.fatal_on_exit))))
    if job.dedupe_key is not None:
        fields.append(("dedupe key", job.dedupe_key))
    return fields


def _attempt_result(attempt: Attempt) -> str:
    """`ok`, or the outcome class and why: `failed  exited with code 1`,
    `killed (SIGKILL)  killed by signal SIGKILL`."""
    if attempt.finished_at is None:
        return ""
    if attempt.outcome is None:  # recorded before outcomes were kept
        return attempt.error or "ok"
    kind = attempt.outcome.value
    if attempt.signal:
        kind += f" ({attempt.signal})"
    return f"{kind:<18}{attempt.error}" if attempt.error else kind
