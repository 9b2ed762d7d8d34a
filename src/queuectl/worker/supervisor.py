"""`worker start --count N`: fork N worker processes, forward stop signals, replace workers
that die, and keep a guard that kills the jobs of any worker that dies."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence

from queuectl.core.ids import new_worker_id
from queuectl.core.run_env import WORKER_ID_VARIABLE
from queuectl.runner import set_parent_death_signal
from queuectl.worker.guard import GuardHandle
from queuectl.worker.loop import EXIT_CRASHED, Worker, run_worker
from queuectl.worker.signals import (
    GRACEFUL_STOP_SIGNAL,
    STOP_SIGNALS,
    WAKE_SIGNAL,
    Source,
    source_of,
)

log = logging.getLogger("queuectl.worker")

RESTART_DELAY = 0.5  # seconds before replacing a crashed worker, doubling while they crash
RESTART_DELAY_MAX = 30.0  # seconds
RESTART_CALM = 60.0  # seconds without a crash after which the delay starts over
GUARD_RESTARTS = 5  # guards started again within RESTART_CALM before giving up on one
WAIT_SLICE = 1.0  # seconds; the longest the supervisor sleeps without looking around
# Blocked in the supervisor (read with sigtimedwait) and, across the fork, in every worker
# until its own signal thread reads them.
SUPERVISOR_SIGNALS = STOP_SIGNALS | {signal.SIGCHLD}
WORKER_SIGNALS = STOP_SIGNALS | {GRACEFUL_STOP_SIGNAL, WAKE_SIGNAL}


class RestartPacer:
    """Spaces out restarts of dying workers: half a second after a calm spell, then
    doubling delays while they keep dying, so that a crash loop cannot spin."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.last = float("-inf")

    def next_start(self, now: float) -> float:
        """When a worker that died at `now` may be replaced."""
        if now - self.last > RESTART_CALM:
            self.delay = 0.0
        self.delay = min(max(self.delay * 2, RESTART_DELAY), RESTART_DELAY_MAX)
        self.last = now + self.delay
        return self.last


class Supervisor:
    """Runs `count` workers in the foreground until they have all exited.

    Workers are forked after the store has been opened and closed once (so a bad target
    fails there, once), and open their own connections: none crosses a fork. Signals are
    read with sigtimedwait, which says who sent them (see worker/signals.py).
    """

    def __init__(
        self, target: str | None, count: int, queues: Sequence[str] | None, burst: bool
    ) -> None:
        self.target = target
        self.count = count
        self.queues = queues
        self.burst = burst
        self.children: dict[int, str] = {}  # pid -> worker id
        self.guard = GuardHandle()
        self.stopping = False
        self.failures = 0  # workers that ended badly and were not replaced
        self.restarts: list[float] = []  # when each pending replacement may start
        self.pacer = RestartPacer()
        self.guard_deaths: list[float] = []  # when the guard ended, lately

    def run(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, SUPERVISOR_SIGNALS | WORKER_SIGNALS)
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            self.guard.start()
            for _ in range(self.count):
                self.spawn()
            log.info(
                "started %d worker%s (supervisor pid %d)",
                self.count,
                "" if self.count == 1 else "s",
                os.getpid(),
            )
            while self.children or (self.restarts and not self.stopping):
                self._step()
        finally:
            self.guard.close()
            # A late Ctrl+C still pending would raise KeyboardInterrupt once unblocked.
            while signal.sigtimedwait(SUPERVISOR_SIGNALS | WORKER_SIGNALS, 0) is not None:
                pass
            signal.pthread_sigmask(signal.SIG_UNBLOCK, SUPERVISOR_SIGNALS | WORKER_SIGNALS)
        return 1 if self.failures else 0

    def spawn(self) -> None:
        worker_id = new_worker_id()
        pid = os.fork()
        if pid == 0:
            _become_worker(self.target, self.queues, self.burst, worker_id)
        self.children[pid] = worker_id
        self.guard.watch(pid, f"{WORKER_ID_VARIABLE}={worker_id}")

    def _step(self) -> None:
        now = time.monotonic()
        due = [at for at in self.restarts if at <= now]
        if due and not self.stopping:
            self.restarts = [at for at in self.restarts if at > now]
            for _ in due:
                self.spawn()
        wait = min([WAIT_SLICE, *(at - now for at in self.restarts)])
        info = signal.sigtimedwait(SUPERVISOR_SIGNALS, max(0.0, wait))
        if info is not None and info.si_signo in STOP_SIGNALS:
            self._stop_requested(info)
        self._reap()

    def _stop_requested(self, info: signal.struct_siginfo) -> None:
        self.stopping = True
        self.restarts.clear()
        if source_of(info, None) is Source.TERMINAL:
            return  # the terminal delivered the same keystroke to every worker already
        # Each signal sent to the supervisor is one request to every worker.
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.guard.pid:
                self._guard_ended(status)
                continue
            self.children.pop(pid, None)
            self.guard.forget(pid)
            self._worker_ended(pid, os.waitstatus_to_exitcode(status))

    def _guard_ended(self, status: int) -> None:
        now = time.monotonic()
        self.guard_deaths = [at for at in self.guard_deaths if now - at < RESTART_CALM]
        self.guard_deaths.append(now)
        if len(self.guard_deaths) > GUARD_RESTARTS:
            log.error(
                "the job guard keeps ending (%s); running without it: jobs may outlive a "
                "killed worker until a rescue",
                _describe(status),
            )
            self.guard.close()
            return
        log.warning("the job guard ended (%s); starting another", _describe(status))
        self.guard.start()

    def _worker_ended(self, pid: int, code: int) -> None:
        if code == 0:
            return
        # Killed (the OOM killer, a job that shot its worker) or crashed on a bug: its job is
        # recorded (or rescued once the lease runs out); keep the pool at full strength.
        # A worker that exits for a reason it knows (a test crash point, a store it cannot
        # use) stays gone: it would only do it again.
        if (code < 0 or code == EXIT_CRASHED) and not self.stopping:
            log.warning("worker pid %d ended (%s); starting another", pid, _describe_code(code))
            self.restarts.append(self.pacer.next_start(time.monotonic()))
            return
        self.failures += 1


def start_workers(target: str | None, count: int, queues: Sequence[str] | None, burst: bool) -> int:
    return Supervisor(target, count, queues, burst).run()


def _describe(status: int) -> str:
    return _describe_code(os.waitstatus_to_exitcode(status))


def _describe_code(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _become_worker(
    target: str | None, queues: Sequence[str] | None, burst: bool, worker_id: str
) -> None:
    """The child side of the fork; never returns. Stop signals stay blocked: the worker's
    signal thread reads them."""
    code = 1
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        worker = Worker(
            target, queues, burst=burst, worker_id=worker_id, supervisor_pid=os.getppid()
        )
        # If the supervisor dies without passing the word on, stop gracefully anyway.
        set_parent_death_signal(signal.SIGTERM)
        if os.getppid() != worker.supervisor_pid:
            worker.request_stop()  # it died before the request above took effect
        code = run_worker(worker)
    except BaseException:  # a bug: show it, but never let the child return into the CLI
        log.exception("worker crashed")
        code = EXIT_CRASHED
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
