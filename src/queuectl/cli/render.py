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
    from queuectl.store.records import HookEvent

# Characters of a command shown by `list` at most, whatever the width: a 128 KiB command
# must not cost rich a table that wide when the output is piped.
LIST_TEXT_LIMIT = 500
TABLE_GAP = 3  # characters between two columns of a SIMPLE_HEAD table (and at its edges)
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

    headers = ("ID", "STATE", "QUEUE", "PRI", "ATTEMPTS", "UPDATED", "COMMAND", "LAST ERROR")
    rows = [
        (
            job.id,
            job.state.value,
            job.queue,
            str(job.priority),
            f"{job.attempts}/{job.max_retries}",
            duration((now - job.updated_at).total_seconds()) + " ago",
            one_line(job.command),
            one_line(job.last_error or ""),
        )
        for job in jobs
    ]
    out = console()
    widths = [
        max(len(name), *(len(row[index]) for row in rows)) for index, name in enumerate(headers)
    ]
    # The command and the last error are cut to the width the other columns leave, so
    # that each job stays on one line; `show` and --json have the full text.
    spare = max(out.width - sum(widths[:6]) - TABLE_GAP * len(headers), 12)
    error_width = min(widths[7], spare // 3)
    command_width = spare - error_width
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name, width in zip(headers, widths, strict=True):
        cut = {"COMMAND": command_width, "LAST ERROR": error_width}.get(name)
        table.add_column(
            name,
            no_wrap=True,
            overflow="ellipsis",
            min_width=width if cut is None else None,
            max_width=cut,
        )
    for row in rows:
        table.add_row(*row)
    out.print(table, markup=False)


def one_line(text: str, limit: int = LIST_TEXT_LIMIT) -> str:
    """The first line of `text`, at most `limit` characters, marked … where cut."""
    first, _, rest = text.partition("\n")
    if len(first) > limit:
        return first[: limit - 1] + "…"
    return first + " …" if rest.strip() else first


def print_job(
    job: Job, history: Sequence[Attempt], now: datetime, events: Sequence[HookEvent] = ()
) -> None:
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
        ("cwd", job.cwd or "- (the worker's)"),
        ("env", " ".join(f"{name}={value}" for name, value in (job.env or {}).items()) or "-"),
    ]
    locked = f"{job.locked_by} since {when(job.locked_at, now)}" if job.locked_by else "-"
    fields.append(("locked by", locked))
    fields += _policy_fields(job)
    out = [f"{name + ':':<12}{value}" for name, value in fields]
    out += ["", "History:"]
    if not history:
        out.append("  (no attempts yet)")
    previous = 0
    for attempt in history:
        if attempt.attempt <= previous:  # attempts were reset: `retry` or `dlq retry`
            out.append("  -- retried: a new run starts, attempts counted from 1 again --")
        previous = attempt.attempt
        ended = (
            f"{(attempt.finished_at - attempt.started_at).total_seconds():.2f}s"
            if attempt.finished_at
            else "running"
        )
        out.append(
            f"  #{attempt.attempt} {format_timestamp(attempt.started_at)} "
            f"{attempt.worker_id or '-'} {ended} {_attempt_result(attempt)}".rstrip()
        )
    if events:
        out += ["", "Hooks:", *(_event_line(event, now) for event in events)]
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
    if job.hooks:
        fields.append(("hooks", "; ".join(f"{key}: {cmd}" for key, cmd in job.hooks.items())))
    return fields


def _event_line(event: HookEvent, now: datetime) -> str:
    """One delivery of a hook or webhook: `complete hook delivered (1 try) 2s ago`, and
    its error if it failed."""
    from queuectl.core.redact import redact

    tries = f"{event.tries} {'try' if event.tries == 1 else 'tries'}"
    status = event.status
    if status == "pending" and event.tries:
        status = f"retrying at {format_timestamp(event.next_attempt_at)}"
    line = (
        f"  {event.event:<9}{event.channel:<8}{status} ({tries}) "
        f"{when(event.finished_at or event.created_at, now)}  {redact(one_line(event.target))}"
    )
    return line + (f"\n    error: {redact(event.error)}" if event.error else "")


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
