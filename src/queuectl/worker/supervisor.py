"""`worker start --count N`: fork N worker processes, forward stop signals, wait for all."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType

from queuectl.runner import set_parent_death_signal
from queuectl.worker.loop import Worker, run_worker

log = logging.getLogger("queuectl.worker")

RESTART_DELAY = 0.5  # seconds before replacing a crashed worker, doubling while they crash
RESTART_DELAY_MAX = 30.0  # seconds
RESTART_CALM = 60.0  # seconds without a crash after which the delay starts over


def start_workers(target: str | None, count: int, queues: Sequence[str] | None, burst: bool) -> int:
    """Run `count` workers in the foreground until they have all exited.

    Workers are forked after the store has been opened and closed once (so a bad target
    fails here, once), and open their own connections: none crosses a fork.
    """
    children: set[int] = set()
    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
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

    def spawn() -> None:
        # Blocked across the fork, so that the child sees no signal before its own handlers.
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
        pid = os.fork()
        if pid == 0:
            _become_worker(target, queues, burst, stop_signals)
        children.add(pid)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)

    for _ in range(count):
        spawn()
    log.info(
        "started %d worker%s (supervisor pid %d)", count, "" if count == 1 else "s", os.getpid()
    )
    failures = 0
    restarts = RestartPacer()
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        children.discard(pid)
        code = os.waitstatus_to_exitcode(status)
        if code == 0:
            continue
        failures += 1
        if code < 0:
            # Killed (the OOM killer, a job that shot its worker): its job is rescued once
            # the lease runs out; keep the pool at full strength meanwhile. (A worker that
            # exits, even at a test crash point, stays gone: it would only do it again.)
            log.warning("worker pid %d died (%s); starting another", pid, _describe(code))
            restarts.wait(lambda: stopping)
            if not stopping:
                spawn()
    return 1 if failures else 0


class RestartPacer:
    """Spaces out restarts of killed workers: half a second after a calm spell, then
    doubling delays while they keep dying, so that a crash loop cannot spin."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.last = float("-inf")

    def wait(self, stopping: Callable[[], bool]) -> None:
        now = time.monotonic()
        if now - self.last > RESTART_CALM:
            self.delay = 0.0
        self.delay = min(max(self.delay * 2, RESTART_DELAY), RESTART_DELAY_MAX)
        deadline = now + self.delay
        while not stopping() and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        self.last = time.monotonic()


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


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
