"""`queuectl wait [ID...]`: block until jobs are finished, with a progress bar on a terminal."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import open_service
from queuectl.core.errors import WaitTimedOut

if TYPE_CHECKING:
    from datetime import datetime

    from queuectl.service import QueueService

POLL = 0.2  # seconds between two looks at the store
# After this long, waiting on jobs that no active worker would claim is said on stderr (once):
# a wait that can only end when someone starts a worker must not look like a slow queue.
NO_WORKER_WARNING_AFTER = 3.0  # seconds


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    failed: int  # ended dead or cancelled

    @property
    def finished(self) -> bool:
        return self.done >= self.total


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "wait",
        help="block until jobs are finished",
        description="Block until the given jobs (default: every unfinished job, including "
        "those enqueued meanwhile) are completed, dead or cancelled. Exit 0 when "
        "all completed, 1 when any ended dead or cancelled, 124 on --timeout.",
    )
    parser.add_argument("ids", metavar="ID", nargs="*")
    parser.add_argument("--queue", metavar="Q", help="only jobs of this queue")
    parser.add_argument("--timeout", metavar="S", help="give up after this long (90, 30s, 5m)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from queuectl.core.fields import check_queue, parse_duration

    timeout = parse_duration(args.timeout) if args.timeout is not None else None
    queue = check_queue(args.queue) if args.queue is not None else None
    service = open_service(args)
    ids = tuple(dict.fromkeys(args.ids))
    for job_id in ids:
        service.get_job(job_id)  # an unknown id is an error now, not a wait forever
    started_at = service.store.now()
    deadline = None if timeout is None else time.monotonic() + timeout

    warn_at: float | None = time.monotonic() + NO_WORKER_WARNING_AFTER

    def look() -> Progress:
        nonlocal warn_at
        service.rescue_stale()
        progress = _progress(service, ids, queue, started_at)
        if warn_at is not None and not progress.finished and time.monotonic() >= warn_at:
            warn_at = None
            _warn_if_unserved(service, ids, queue)
        return progress

    if sys.stdout.isatty():
        progress = _wait_with_bar(look, deadline)
    else:
        progress = _wait_quietly(look, deadline)
    print(
        f"{progress.done} of {progress.total} job{'' if progress.total == 1 else 's'} "
        f"finished, {progress.failed} dead or cancelled."
    )
    return 1 if progress.failed else 0


def _progress(
    service: QueueService, ids: tuple[str, ...], queue: str | None, since: datetime
) -> Progress:
    from queuectl.core.models import FINISHED_STATES
    from queuectl.core.states import JobState
    from queuectl.store.base import JobFilter

    if ids:
        counts = service.count_jobs(JobFilter(ids=ids, queue=queue))
        total = sum(counts.values())
        finished = {state: counts[state] for state in FINISHED_STATES}
    else:
        open_states = (JobState.PENDING, JobState.PROCESSING, JobState.FAILED)
        waiting = service.count_jobs(JobFilter(states=open_states, queue=queue))
        finished = service.count_jobs(
            JobFilter(states=FINISHED_STATES, queue=queue, updated_since=since)
        )
        total = sum(waiting.values()) + sum(finished.values())
    failed = finished[JobState.DEAD] + finished[JobState.CANCELLED]
    return Progress(sum(finished.values()), total, failed)


def _warn_if_unserved(service: QueueService, ids: tuple[str, ...], queue: str | None) -> None:
    """Say on stderr which queues of the awaited jobs no active worker serves."""
    from queuectl.core.states import JobState
    from queuectl.store.base import JobFilter

    open_states = (JobState.PENDING, JobState.PROCESSING, JobState.FAILED)
    if ids:
        jobs = service.list_jobs(JobFilter(ids=ids, states=open_states, queue=queue, limit=0))
        queues = {job.queue for job in jobs}
    else:
        queues = {
            info.name
            for info in service.list_queues()
            if (queue is None or info.name == queue)
            and any(info.counts.get(state, 0) for state in open_states)
        }
    workers = service.active_workers()
    if any(worker.queues is None for worker in workers):
        return  # a worker serves every queue
    served = {name for worker in workers for name in worker.queues or ()}
    unserved = sorted(queues - served)
    if not unserved:
        return
    names = ", ".join(unserved)
    noun = "queue" if len(unserved) == 1 else "queues"
    start = "start one: queuectl worker start" + (
        f" --queue {','.join(unserved)}" if workers else ""
    )
    print(
        f"warning: still waiting, but no active worker serves {noun} {names}: {start}",
        file=sys.stderr,
        flush=True,
    )


def _wait_quietly(look: Callable[[], Progress], deadline: float | None) -> Progress:
    while True:
        progress = look()
        if progress.finished:
            return progress
        _check_deadline(deadline, progress)
        time.sleep(POLL)


def _wait_with_bar(look: Callable[[], Progress], deadline: float | None) -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import (
        Progress as Bar,
    )

    columns = (
        TextColumn("waiting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    started = time.monotonic()
    first = look()
    with Bar(*columns, transient=False) as bar:
        task = bar.add_task("jobs", total=first.total, completed=first.done, rate="")
        while True:
            progress = look()
            elapsed = max(time.monotonic() - started, 1e-6)
            rate = (progress.done - first.done) / elapsed
            bar.update(
                task, total=progress.total, completed=progress.done, rate=f"{rate:.1f} jobs/s"
            )
            if progress.finished:
                return progress
            _check_deadline(deadline, progress)
            time.sleep(POLL)


def _check_deadline(deadline: float | None, progress: Progress) -> None:
    if deadline is not None and time.monotonic() > deadline:
        left = progress.total - progress.done
        raise WaitTimedOut(f"timed out with {left} job{'' if left == 1 else 's'} unfinished")
