"""`worker start --count N`: fork N worker processes, forward stop signals, wait for all."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from queuectl.runner import set_parent_death_signal
from queuectl.worker.loop import Worker, run_worker

log = logging.getLogger("queuectl.worker")


def start_workers(target: str | None, count: int, queues: Sequence[str] | None, burst: bool) -> int:
    """Run `count` workers in the foreground until they have all exited.

    Workers are forked after the store has been opened and closed once (so a bad target
    fails here, once), and open their own connections: none crosses a fork.
    """
    children: set[int] = set()

    def forward(signum: int, frame: FrameType | None) -> None:
        # Each signal the supervisor gets is one stop request to every worker; workers fold
        # the copy a terminal's Ctrl+C also sent them straight into the same request.
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    sys.stdout.flush()
    sys.stderr.flush()
    stop_signals = {signal.SIGINT, signal.SIGTERM, signal.SIGUSR1}
    for _ in range(count):
        # Blocked across the fork, so that the child sees no signal before its own handlers.
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
        pid = os.fork()
        if pid == 0:
            _become_worker(target, queues, burst, stop_signals)
        children.add(pid)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
    log.info(
        "started %d worker%s (supervisor pid %d)", count, "" if count == 1 else "s", os.getpid()
    )
    failures = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        children.discard(pid)
        if os.waitstatus_to_exitcode(status) != 0:
            failures += 1
    return 1 if failures else 0


def _become_worker(
    target: str | None, queues: Sequence[str] | None, burst: bool, stop_signals: set[signal.Signals]
) -> None:
    """The child side of the fork; never returns."""
    code = 1
    try:
        worker = Worker(target, queues, burst=burst)
        worker.install_signal_handlers()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
        # If the supervisor dies without passing the word on, stop gracefully anyway.
        set_parent_death_signal(signal.SIGTERM)
        code = run_worker(worker)
    except BaseException:  # a bug: show it, but never let the child return into the CLI
        log.exception("worker crashed")
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
