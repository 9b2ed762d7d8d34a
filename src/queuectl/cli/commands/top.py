"""`queuectl top`: a full-screen live view of the queue, like htop, until `q` or Ctrl+C.

rich, termios and the store are imported only once the command runs, so that building the
parser stays cheap for every other command.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NoReturn

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import open_service
from queuectl.core.errors import QueuectlError, UsageError

if TYPE_CHECKING:
    from types import FrameType

    from queuectl.cli.live import Snapshot
    from queuectl.service import QueueService

REFRESH_INTERVAL = 1.0  # seconds between two refreshes
INTERVAL_RANGE = (0.1, 3600.0)  # seconds
THROUGHPUT_MINUTES = 30  # the width of the sparklines, one character a minute
FAILURE_ROWS = (3, 50)  # failed and dead jobs read per refresh: about what fits, bounded
OTHER_ROWS = 20  # screen rows that are not failures, when a few workers run
QUIT_KEYS = b"qQ"

WaitForQuit = Callable[[float], bool]  # waits up to S seconds; True when the user quits


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "top",
        help="a full-screen live view of the queue (q quits)",
        description="A full-screen view of the queue, refreshed every second: counts per "
        "state and per queue, throughput over the last 30 minutes, the active workers and "
        "their jobs, the latest failures. Press q or Ctrl+C to quit. Needs a terminal; "
        "elsewhere use `queuectl status --watch`.",
    )
    parser.add_argument(
        "--interval",
        metavar="S",
        help=f"seconds between refreshes (default {REFRESH_INTERVAL:g}; 0.5, 2s, 1m)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from queuectl.core.fields import parse_duration
    from queuectl.store import default_target

    interval = REFRESH_INTERVAL if args.interval is None else parse_duration(args.interval)
    low, high = INTERVAL_RANGE
    if not low <= interval <= high:
        raise UsageError(f"--interval must be between {low:g}s and {high:g}s")
    if not sys.stdout.isatty():
        raise UsageError(
            "top needs a terminal to draw on; to follow the queue in a pipe or a log, "
            "use `queuectl status --watch`"
        )
    target = args.db or default_target()
    try:
        service = open_service(args)  # an unreachable store fails here, before the screen
    except KeyboardInterrupt:
        return 0
    try:
        with _sigterm_as_interrupt(), _keyboard() as wait_for_quit:
            _show(service, target, interval, wait_for_quit)
    except KeyboardInterrupt:  # Ctrl+C (or SIGTERM) is a way to quit, not a failure
        pass
    finally:
        with contextlib.suppress(QueuectlError):
            service.store.close()
    return 0


def _show(service: QueueService, target: str, interval: float, wait: WaitForQuit) -> None:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from queuectl.cli.live import view

    console = Console()
    snapshot: Snapshot | None = None
    # Redrawn only here, once a refresh: no refresh thread of rich's own.
    with Live(
        Text("queuectl top"),
        console=console,
        screen=True,
        auto_refresh=False,
        redirect_stdout=False,
        redirect_stderr=False,
    ) as live:
        while True:
            low, high = FAILURE_ROWS
            failure_rows = max(low, min(high, console.height - OTHER_ROWS))
            snapshot, error = refresh(service, snapshot, failure_rows)
            screen = view(
                snapshot,
                target=target,
                interval=interval,
                width=console.width,
                height=console.height,
                error=error,
            )
            live.update(screen, refresh=True)
            if wait(interval):
                return


def refresh(
    service: QueueService, previous: Snapshot | None, failure_rows: int = FAILURE_ROWS[0]
) -> tuple[Snapshot | None, str | None]:
    """A new snapshot, or the previous one and why the store could not give a new one:
    a store that is down or busy is shown on the screen and tried again, never fatal."""
    try:
        return take_snapshot(service, failure_rows), None
    except QueuectlError as exc:
        return previous, exc.message


def take_snapshot(service: QueueService, failure_rows: int) -> Snapshot:
    """Everything one screen shows, in a handful of bounded queries: never all jobs."""
    from queuectl.cli.live import Snapshot
    from queuectl.core.states import JobState
    from queuectl.store.base import JobFilter

    service.rescue_stale()  # as `status` does: a dead worker's job is not shown running
    report = service.status()
    running = []
    if report.workers:
        # The claims themselves, not the heartbeats' current_job_id, which lags a claim by
        # up to a heartbeat. A worker holds one job, so this reads about one row a worker;
        # the slack covers jobs of dead workers awaiting rescue.
        limit = 2 * len(report.workers) + 10
        running = service.list_jobs(JobFilter(states=(JobState.PROCESSING,), limit=limit))
    failures = service.list_jobs(
        JobFilter(states=(JobState.FAILED, JobState.DEAD), limit=failure_rows)
    )
    return Snapshot(
        now=report.now,
        counts=report.counts,
        queues=service.list_queues(),
        throughput=service.throughput(THROUGHPUT_MINUTES),
        workers=report.workers,
        running={job.locked_by: job for job in running if job.locked_by},
        failures=sorted(failures, key=lambda job: job.updated_at, reverse=True),
    )


@contextlib.contextmanager
def _keyboard() -> Iterator[WaitForQuit]:
    """Single keys, unechoed (cbreak mode), while the view runs. The terminal's settings
    come back on every way out: `q`, Ctrl+C, SIGTERM or an error."""
    if not sys.stdin.isatty():  # keys cannot be read: only Ctrl+C quits
        yield _sleep
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        # cbreak keeps ISIG: Ctrl+C still raises KeyboardInterrupt.
        tty.setcbreak(fd, termios.TCSANOW)
        yield lambda seconds: _wait_for_quit(fd, seconds)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _wait_for_quit(fd: int, seconds: float) -> bool:
    """Read keys for up to `seconds`; True as soon as a quit key comes."""
    import select

    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        try:
            typed = os.read(fd, 64)
        except OSError:  # the terminal went away
            return True
        if not typed:
            return True
        if any(key in QUIT_KEYS for key in typed):
            return True
    return False


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """`kill` quits as Ctrl+C does, so that the terminal is restored then too."""
    import signal

    def interrupt(signum: int, frame: FrameType | None) -> NoReturn:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
