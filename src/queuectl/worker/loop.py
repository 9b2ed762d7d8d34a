"""The worker loop: rescue, claim, run, finish; until stopped (or idle, in burst mode)."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Sequence
from types import FrameType

from queuectl.core import lifecycle
from queuectl.core.errors import QueuectlError, StoreUnavailable
from queuectl.core.ids import new_worker_id
from queuectl.core.models import Job
from queuectl.core.settings import Settings
from queuectl.crashpoint import crash_point
from queuectl.runner import ShellRun, become_subreaper
from queuectl.service import QueueService, job_environment
from queuectl.store import open_store
from queuectl.store.base import AttemptRecord
from queuectl.worker.heartbeat import Heartbeat, fire_schedules

log = logging.getLogger("queuectl.worker")

SETTINGS_MAX_AGE = 1.0  # seconds a worker trusts its copy of the config
IDLE_SLICE = 0.1  # seconds; an idle worker checks its stop flag at least this often
SIGNAL_DEDUPE_WINDOW = 1.0  # seconds; signals closer than this count as one request
# (Ctrl+C reaches the supervisor and every worker, and the supervisor forwards it too.)


class Worker:
    def __init__(
        self,
        target: str | None,
        queues: Sequence[str] | None = None,
        *,
        burst: bool = False,
        worker_id: str | None = None,
    ) -> None:
        self.target = target
        self.queues = tuple(queues) if queues else None
        self.burst = burst
        self.id = worker_id or new_worker_id()
        self.stopping = threading.Event()
        self._stop_requests = 0
        self._last_signal = 0.0
        self._current: tuple[Job, ShellRun] | None = None
        self._settings: Settings | None = None
        self._heartbeat: Heartbeat | None = None
        self._settings_read_at = 0.0

    # -- stopping ---------------------------------------------------------------------

    def request_stop(self) -> None:
        """Graceful: claim nothing new, let the running job finish and be recorded."""
        self.stopping.set()

    def handle_signal(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self._stop_requests and now - self._last_signal < SIGNAL_DEDUPE_WINDOW:
            return
        self._last_signal = now
        self._stop_requests += 1
        if self._stop_requests == 1:
            log.info("%s: stopping after the current job (signal again to kill it)", self.id)
            self.request_stop()
        elif self._current is not None:
            job, run = self._current
            log.info("%s: killing job %s", self.id, job.id)
            run.kill(f"killed: worker {self.id} was told to stop now")

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self.handle_signal)
        signal.signal(signal.SIGTERM, self.handle_signal)
        # Sent by `cancel` on this host: check the claim now instead of at the next beat.
        signal.signal(signal.SIGUSR1, self.wake_heartbeat)

    # -- running ----------------------------------------------------------------------

    def run(self) -> int:
        """Serve jobs until stopped; returns the process exit status."""
        become_subreaper()
        service = QueueService(open_store(self.target, durable=False))
        store = service.store
        store.register_worker(self.id, socket.gethostname(), os.getpid(), self.queues)
        heartbeat = Heartbeat(
            QueueService(open_store(self.target, durable=False)),
            self.id,
            lambda: self._current,
            self.request_stop,
            self._status,
        )
        self._heartbeat = heartbeat
        heartbeat.start()
        log.info("%s started (pid %d)", self.id, os.getpid())
        try:
            service.rescue_stale()
            fire_schedules(service)  # now, not a beat later: a --burst worker runs them too
            self._serve(service)
        finally:
            heartbeat.finish()
            heartbeat.join(timeout=5)
            try:
                store.deregister_worker(self.id)
            finally:
                store.close()
            log.info("%s stopped", self.id)
        return 0

    def _serve(self, service: QueueService) -> None:
        store = service.store
        while not self.stopping.is_set():
            try:
                # Inside the try: the config is read from the store, which may be down.
                current = self._fresh_settings(service)
                job = store.claim_job(self.id, self.queues)
                if job is not None:
                    # While busy, each finish claims the next job in the same transaction.
                    while job is not None:
                        crash_point("after-claim")
                        job = self._run_job(service, job, current)
                        # The next job is already claimed: if the store is down, run it
                        # with the settings at hand.
                        with contextlib.suppress(StoreUnavailable):
                            current = self._fresh_settings(service)
                    continue
                if self.burst:
                    return
                self._idle(service, current)
            except StoreUnavailable as exc:
                # A database restart, a full disk: keep the worker, try again shortly.
                pause = self._settings.poll_interval if self._settings else IDLE_SLICE
                log.warning("%s: %s; retrying in %gs", self.id, exc.message, pause)
                self.stopping.wait(pause)

    def _idle(self, service: QueueService, current: Settings) -> None:
        """Sleep until a job may be due: woken early by a change to the store."""
        due_in = service.store.seconds_until_next_job(self.queues)
        timeout = current.poll_interval if due_in is None else min(due_in, current.poll_interval)
        deadline = time.monotonic() + timeout
        while not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if service.store.wait_for_jobs(min(left, IDLE_SLICE)):
                return

    def _run_job(self, service: QueueService, job: Job, current: Settings) -> Job | None:
        """Run and record one job; the next job, when recording it could claim one."""
        env = dict(os.environ, **(job.env or {}))
        env.update(job_environment(job, self.id))
        run = ShellRun(
            job.command,
            timeout=job.timeout,
            output_limit=current.output_limit,
            env=env,
            cwd=job.cwd,
            reap_orphans=True,
            die_with_parent=True,
        )
        self._current = (job, run)
        log.info("%s: job %s attempt %d: %s", self.id, job.id, job.attempts, job.command)
        try:
            result = run.run()
        finally:
            self._current = None
        killed = run.kill_reason is not None
        # A run its worker killed exits as the signal left it: no exit code to judge.
        policy = lifecycle.NO_POLICY if killed else lifecycle.ExitPolicy.of(job)
        outcome = lifecycle.after_attempt(
            job.attempts, job.max_retries, result, job.timeout, current, policy=policy
        )
        if run.kill_reason is not None and outcome.last_error is not None:
            outcome = lifecycle.Outcome(outcome.state, outcome.retry_delay, run.kill_reason)
        kind, signal_name = lifecycle.classify(result, killed=killed)
        record = AttemptRecord(result.exit_code, result.output, kind, signal_name)
        crash_point("before-record")
        finished, next_job = self._finish_and_claim(service, job, outcome, record)
        crash_point("after-record")
        if not finished:
            log.warning(
                "%s: job %s was cancelled or taken from this worker; result dropped",
                self.id,
                job.id,
            )
            return next_job
        log.info(
            "%s: job %s %s%s (%.2fs)",
            self.id,
            job.id,
            outcome.state.value,
            f": {outcome.last_error}" if outcome.last_error else "",
            result.duration,
        )
        return next_job

    def _finish_and_claim(
        self, service: QueueService, job: Job, outcome: lifecycle.Outcome, record: AttemptRecord
    ) -> tuple[bool, Job | None]:
        """Record the attempt and, unless stopping, claim the next job with it. When the
        store fails, fall back to _finish alone, which waits for the store."""
        if not self.stopping.is_set():
            try:
                return service.store.finish_and_claim(job, self.id, outcome, record, self.queues)
            except StoreUnavailable as exc:
                log.warning("%s: cannot record job %s yet: %s", self.id, job.id, exc.message)
        return self._finish(service, job, outcome, record), None

    def _finish(
        self, service: QueueService, job: Job, outcome: lifecycle.Outcome, record: AttemptRecord
    ) -> bool:
        """Record the attempt, retrying while the store is unreachable (a restart, a full
        disk): a result that was paid for is worth waiting for, until it lands or the lease
        was rescued meanwhile (then the guard says False). Given up only when a second
        signal asks the worker to stop now: a worker that moved on would leave the job
        `processing` for as long as its heartbeat kept the lease alive."""
        delay = 0.1
        while True:
            try:
                return service.store.finish_attempt(job, self.id, outcome, record)
            except StoreUnavailable as exc:
                if self._stop_requests > 1:
                    raise
                log.warning("%s: cannot record job %s yet: %s", self.id, job.id, exc.message)
                time.sleep(random.uniform(delay / 2, delay))  # noqa: S311 - jitter
                delay = min(delay * 2, 5.0)

    def wake_heartbeat(self, signum: int, frame: FrameType | None) -> None:
        if self._heartbeat is not None:
            self._heartbeat.wake()

    def _fresh_settings(self, service: QueueService) -> Settings:
        now = time.monotonic()
        if self._settings is None or now - self._settings_read_at > SETTINGS_MAX_AGE:
            self._settings = service.settings()
            self._settings_read_at = now
        return self._settings

    def _status(self) -> str:
        return "stopping" if self.stopping.is_set() else "running"


def run_worker(worker: Worker) -> int:
    """Run one worker process's loop, turning expected failures into a log line."""
    try:
        return worker.run()
    except QueuectlError as exc:
        log.error("%s: %s", worker.id, exc.message)
        return 1
