"""The worker loop: rescue, claim, run, finish; until stopped (or idle, in burst mode).

Four threads beside the job loop, each with its own store connection: the heartbeat
(beats only), maintenance (rescue, retention, schedules, live output), hook delivery and
the signal reader. A bug in any of them ends the worker safely (see `crash`).
"""

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

from queuectl.core import lifecycle
from queuectl.core.errors import QueuectlError, StoreUnavailable
from queuectl.core.ids import new_worker_id
from queuectl.core.models import AttemptOutcome, Job
from queuectl.core.run_env import job_environment
from queuectl.core.settings import Settings
from queuectl.crashpoint import crash_point, fault_point
from queuectl.runner import ShellRun, become_subreaper
from queuectl.service import QueueService
from queuectl.store import open_store
from queuectl.store.base import AttemptRecord
from queuectl.worker.config_cache import ConfigCache
from queuectl.worker.heartbeat import Heartbeat
from queuectl.worker.hooks import Deliverer
from queuectl.worker.maintenance import Maintenance, fire_schedules
from queuectl.worker.signals import (
    GRACEFUL_STOP_SIGNAL,
    STOP_SIGNALS,
    WAKE_SIGNAL,
    StopCounter,
    source_of,
)

log = logging.getLogger("queuectl.worker")

IDLE_SLICE = 0.1  # seconds; an idle worker checks its stop flag at least this often
EXIT_CRASHED = 70  # a worker ended by a bug (EX_SOFTWARE): the supervisor replaces it
READ_SIGNALS = STOP_SIGNALS | {GRACEFUL_STOP_SIGNAL, WAKE_SIGNAL}


class Worker:
    def __init__(
        self,
        target: str | None,
        queues: Sequence[str] | None = None,
        *,
        burst: bool = False,
        worker_id: str | None = None,
        supervisor_pid: int | None = None,
    ) -> None:
        self.target = target
        self.queues = tuple(queues) if queues else None
        self.burst = burst
        self.id = worker_id or new_worker_id()
        self.supervisor_pid = supervisor_pid
        self.stopping = threading.Event()
        self.crashed: str | None = None  # what went wrong, once a task has crashed
        self._crash_lock = threading.Lock()
        self._stops = StopCounter()
        self._current: tuple[Job, ShellRun] | None = None
        self._heartbeat: Heartbeat | None = None
        self._deliverer: Deliverer | None = None
        # The worker's own environment, read once: every job starts from it (os.environ
        # decodes each variable on every read).
        self._environment = dict(os.environ)

    # -- stopping ---------------------------------------------------------------------

    def request_stop(self) -> None:
        """Graceful: claim nothing new, let the running job finish and be recorded."""
        self.stopping.set()

    def on_signal(self, info: signal.struct_siginfo) -> None:
        """One signal, read by the signal thread with who sent it."""
        signum = info.si_signo
        if signum == WAKE_SIGNAL:
            # Sent by `cancel` on this host: check the claim now instead of at the next beat.
            if self._heartbeat is not None:
                self._heartbeat.wake()
            return
        if signum == GRACEFUL_STOP_SIGNAL:
            if not self.stopping.is_set():
                log.info("%s: asked to stop; stopping after the current job", self.id)
            self.request_stop()
            return
        requests = self._stops.count(source_of(info, self.supervisor_pid))
        if requests == 1:
            log.info("%s: stopping after the current job (signal again to kill it)", self.id)
            self.request_stop()
        elif requests >= 2:
            self.request_stop()
            running = self._current
            if running is not None and running[1].kill_reason is None:
                job, run = running
                log.info("%s: killing job %s", self.id, job.id)
                run.kill(f"killed: worker {self.id} was told to stop now")

    def crash(self, task: str, exc: BaseException) -> None:
        """A bug in `task`: stop claiming, kill the running job (the job loop records its
        attempt as failed), show the traceback; the worker then exits EXIT_CRASHED."""
        with self._crash_lock:
            if self.crashed is not None:
                return
            self.crashed = f"worker {self.id} crashed in its {task}: {type(exc).__name__}: {exc}"
        log.error("%s: %s crashed; stopping this worker", self.id, task, exc_info=exc)
        self.stopping.set()
        running = self._current
        if running is not None:
            running[1].kill(self.crashed)

    # -- running ----------------------------------------------------------------------

    def run(self) -> int:
        """Serve jobs until stopped; returns the process exit status."""
        # Read by a thread of their own (with their sender); every thread started from here
        # inherits the block, and job shells start with an empty mask.
        signal.pthread_sigmask(signal.SIG_BLOCK, READ_SIGNALS)
        threading.Thread(target=self._read_signals, name="signals", daemon=True).start()
        become_subreaper()
        store = open_store(self.target, durable=False)
        service = QueueService(store)
        store.register_worker(self.id, socket.gethostname(), os.getpid(), self.queues)
        current = lambda: self._current  # noqa: E731 - read by both threads
        heartbeat = Heartbeat(
            QueueService(open_store(self.target, durable=False)),
            self.id,
            current,
            self.request_stop,
            self._status,
            self.crash,
        )
        maintenance = Maintenance(
            open_store(self.target, durable=False), self.id, current, self.crash
        )
        deliverer = Deliverer(open_store(self.target, durable=False), self.id, self.crash)
        self._heartbeat = heartbeat
        self._deliverer = deliverer
        heartbeat.start()
        maintenance.start()
        deliverer.start()
        log.info("%s started (pid %d)", self.id, os.getpid())
        claimed: list[Job] = []  # the job claimed and not yet recorded, if any
        try:
            service.rescue_stale()
            fire_schedules(store)  # now, not a beat later: a --burst worker runs them too
            self._serve(service, claimed)
        except QueuectlError:
            raise  # an expected failure (run_worker reports it); its job is rescued later
        except BaseException as exc:
            self.crash("job loop", exc)
            if claimed:
                self._record_crash(claimed[0])
        finally:
            for task in (heartbeat, maintenance):
                task.finish()
                task.join(timeout=5)
            # The hooks of the last jobs, if they are due (bounded by the hook timeout),
            # unless told to stop now: what is left is delivered by the next worker.
            if self._stops.requests <= 1 and self.crashed is None:
                deliverer.drain()
                deliverer.join(timeout=2 * config_timeout(service) + 5)
            deliverer.finish()
            deliverer.join(timeout=5)
            with contextlib.suppress(QueuectlError):
                store.deregister_worker(self.id)
            with contextlib.suppress(Exception):
                store.close()
            log.info("%s stopped", self.id)
        return EXIT_CRASHED if self.crashed else 0

    def _read_signals(self) -> None:
        while True:
            info = signal.sigwaitinfo(READ_SIGNALS)
            try:
                self.on_signal(info)
            except BaseException as exc:  # never lose the stop signals quietly
                self.crash("signal handling", exc)

    def _serve(self, service: QueueService, claimed: list[Job]) -> None:
        store = service.store
        config = ConfigCache(service.settings)
        while not self.stopping.is_set():
            try:
                # Inside the try: the config is read from the store, which may be down.
                current = config.fresh()
                job = store.claim_job(self.id, self.queues)
                if job is not None:
                    # While busy, each finish claims the next job in the same transaction.
                    while job is not None:
                        claimed[:] = [job]
                        crash_point("after-claim")
                        job = self._run_job(service, job, current)
                        claimed[:] = [job] if job is not None else []
                        # The next job is already claimed: if the store is down, run it
                        # with the settings at hand.
                        with contextlib.suppress(StoreUnavailable):
                            current = config.fresh()
                    continue
                if self.burst:
                    return
                self._idle(service, current)
            except StoreUnavailable as exc:
                # A database restart, a full disk: keep the worker, try again shortly.
                pause = config.last.poll_interval if config.last else IDLE_SLICE
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
        env = dict(self._environment)
        if job.env:
            env.update(job.env)
        env.update(job_environment(job, self.id))
        run = ShellRun(
            job.command,
            timeout=job.timeout,
            output_limit=current.output_limit,
            env=env,
            cwd=job.cwd,
            reap_orphans=True,
        )
        self._current = (job, run)
        if self.crashed is not None:
            run.kill(self.crashed)  # a task crashed as this job was claimed: do not run it
        log.info("%s: job %s attempt %d: %s", self.id, job.id, job.attempts, job.command)
        try:
            result = run.run()
        finally:
            self._current = None
        fault_point("job-loop")
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
        if self._deliverer is not None:
            self._deliverer.job_finished(job)
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
                if self._stops.requests > 1:
                    raise
                log.warning("%s: cannot record job %s yet: %s", self.id, job.id, exc.message)
                time.sleep(random.uniform(delay / 2, delay))  # noqa: S311 - jitter
                delay = min(delay * 2, 5.0)

    def _record_crash(self, job: Job) -> None:
        """The job loop itself crashed while holding `job`: record the attempt as failed,
        on a fresh connection (the loop's may be what broke). If even that fails, the job
        is rescued once this worker's heartbeat stops."""
        error = self.crashed or f"worker {self.id} crashed"
        try:
            service = QueueService(open_store(self.target, durable=False))
            try:
                outcome = lifecycle.after_failure(
                    job.attempts, job.max_retries, error, service.settings()
                )
                record = AttemptRecord(None, None, AttemptOutcome.FAILED, None)
                service.store.finish_attempt(job, self.id, outcome, record)
            finally:
                service.store.close()
        except Exception:
            log.exception("%s: could not record job %s; it is rescued later", self.id, job.id)

    def _status(self) -> str:
        return "stopping" if self.stopping.is_set() else "running"


def config_timeout(service: QueueService) -> float:
    """The hook timeout, or its default when the store cannot say."""
    try:
        return service.settings().hook_timeout
    except QueuectlError:
        return Settings().hook_timeout


def run_worker(worker: Worker) -> int:
    """Run one worker process's loop, turning expected failures into a log line."""
    try:
        return worker.run()
    except QueuectlError as exc:
        log.error("%s: %s", worker.id, exc.message)
        return 1
