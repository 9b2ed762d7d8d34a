"""The delivery thread: runs the hook commands and POSTs the webhooks of the outbox.

A thread of its own beside the job loop, with its own store connection, so that a slow or
failing hook can never hold a job or a worker slot: the state change it reports was
committed before its outbox row could be read. Rows are leased (claim_event), so each is
delivered by one worker at a time, and a worker that dies mid-delivery leaves its rows to
be taken over once the lease runs out: delivery is at least once. A hook runs once; a
webhook is tried WEBHOOK_TRIES times with backoff, the waits kept on the row (not slept
here), so one failing receiver does not hold up the others.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time

from queuectl.core.errors import QueuectlError
from queuectl.core.models import Job
from queuectl.core.redact import redact
from queuectl.core.settings import Settings
from queuectl.runner import ShellRun
from queuectl.service import QueueService
from queuectl.store.base import Store
from queuectl.store.records import HookEvent
from queuectl.worker.hook_facts import hook_environment, output_tail, webhook_body, webhook_headers
from queuectl.worker.tasks import OnCrash, PeriodicTask

log = logging.getLogger("queuectl.worker")

IDLE_POLL = 2.0  # seconds between looks for rows other processes wrote (cancel, rescue)
RETRY_AFTER_ERROR = 3.0  # seconds; the store could not be reached
BATCH = 20  # deliveries per tick before the thread looks at its stop flag again
WEBHOOK_BACKOFF = (1.0, 4.0)  # seconds before the 2nd and 3rd try of a webhook
WEBHOOK_TRIES = len(WEBHOOK_BACKOFF) + 1
LEASE_MARGIN = 30.0  # seconds a lease outlives the longest delivery
WEBHOOK_QUEUES_MAX_AGE = 5.0  # seconds the thread trusts its list of queue webhooks
PRUNE_INTERVAL = 3600.0  # seconds between two prunes of finished deliveries
KEEP_FINISHED = 7 * 86400.0  # seconds a finished delivery stays visible (show, doctor)
HOOK_OUTPUT_KEPT = 1024  # bytes of a failing hook's output kept in its error


class Deliverer(PeriodicTask):
    task_name = "hooks"

    def __init__(self, store: Store, worker_id: str, on_crash: OnCrash) -> None:
        super().__init__(QueueService(store), worker_id, on_crash)
        self.store = store
        self._environment = dict(os.environ)
        self._webhook_queues: frozenset[str] = frozenset()
        self._webhooks_read_at = -WEBHOOK_QUEUES_MAX_AGE
        self._pruned_at = time.monotonic()
        self._draining = False

    def job_finished(self, job: Job) -> None:
        """Called by the job loop after it recorded a job: deliver its hooks now, not at
        the next poll, when any may be configured. Costs the loop nothing but a flag."""
        if job.hooks or job.queue in self._webhook_queues or self._configured:
            self.wake()

    def drain(self) -> None:
        """Deliver what is due now, then end (the worker is stopping)."""
        self._draining = True
        self.wake()

    @property
    def _configured(self) -> bool:
        last = self._config.last
        return last is None or last.hooks_configured

    def tick(self, *, woken: bool) -> float:
        try:
            settings = self.settings()
            self._refresh_webhook_queues()
            for _ in range(BATCH):
                if self._finished:
                    return 0.0
                event = self.store.claim_event(self.worker_id, lease(settings))
                if event is None:
                    break
                self._deliver(event, settings)
            else:
                return 0.0  # more may be due: look again at once
            if self._draining:
                self.finish()
            self._prune()
        except QueuectlError as exc:
            log.warning("%s: hook delivery failed: %s", self.worker_id, exc.message)
            if self._draining:
                self.finish()
            return RETRY_AFTER_ERROR
        return IDLE_POLL

    def _refresh_webhook_queues(self) -> None:
        if time.monotonic() - self._webhooks_read_at > WEBHOOK_QUEUES_MAX_AGE:
            self._webhook_queues = frozenset(self.store.queue_webhooks())
            self._webhooks_read_at = time.monotonic()

    def _prune(self) -> None:
        if time.monotonic() - self._pruned_at > PRUNE_INTERVAL:
            self.store.prune_events(KEEP_FINISHED)
            self._pruned_at = time.monotonic()

    def _deliver(self, event: HookEvent, settings: Settings) -> None:
        if event.channel == "hook":
            error = run_hook(event, settings.hook_timeout, self._environment)
            retry_in = None
        else:
            error = post_webhook(event, settings.hook_timeout, settings.webhook_secret)
            tries = event.tries + 1
            retry_in = WEBHOOK_BACKOFF[tries - 1] if error and tries < WEBHOOK_TRIES else None
        if error is None:
            log.info(
                "%s: %s %s of job %s delivered",
                self.worker_id,
                event.event,
                event.channel,
                event.job_id,
            )
        else:
            again = f"; trying again in {retry_in:g}s" if retry_in is not None else ""
            log.warning(
                "%s: %s %s of job %s failed: %s%s",
                self.worker_id,
                event.event,
                event.channel,
                event.job_id,
                error,
                again,
            )
        if not self.store.finish_event(event.id, self.worker_id, error, retry_in):
            log.warning("%s: delivery %d was taken over (lease ran out)", self.worker_id, event.id)


def lease(settings: Settings) -> float:
    """Seconds a claimed delivery stays this worker's: its longest run, and a margin."""
    return 2 * settings.hook_timeout + LEASE_MARGIN


def run_hook(event: HookEvent, timeout: float, base_env: dict[str, str]) -> str | None:
    """Run the hook command with the facts in its environment; None if it exited 0, else
    what went wrong. The output file is removed after, however the hook ended."""
    try:
        import tempfile  # here: only a worker that runs a hook needs it

        handle, path = tempfile.mkstemp(prefix="queuectl-hook-", suffix=".out")
    except OSError as exc:
        return f"hook not run: cannot create its output file: {exc.strerror or exc}"
    try:
        try:
            with os.fdopen(handle, "w", encoding="utf-8", errors="replace") as file:
                file.write(output_tail(event.output))
        except OSError as exc:
            return f"hook not run: cannot write its output file: {exc.strerror or exc}"
        run = ShellRun(
            event.target,
            timeout=timeout,
            output_limit=HOOK_OUTPUT_KEPT,
            env=hook_environment(event, path, base_env),
        )
        result = run.run()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    if result.succeeded:
        return None
    tail = result.output.strip()
    said = f": {tail.splitlines()[-1]}" if tail else ""
    if result.timed_out:
        return f"hook timed out after {timeout:g}s and was killed"
    if result.spawn_error is not None:
        return f"hook could not start: {result.spawn_error}"
    if result.exit_code is None:
        return f"hook was killed by signal {result.signal}{said}"
    return f"hook exited {result.exit_code}{said}"


def post_webhook(event: HookEvent, timeout: float, secret: str) -> str | None:
    """POST the facts to the event's URL; None on a 2xx answer, else what went wrong."""
    # Here, not at the top: urllib.request brings http.client, ssl and email with it, which
    # every worker would otherwise load at start-up whether or not a webhook is set.
    import http.client
    import urllib.error
    import urllib.request

    body = webhook_body(event)
    request = urllib.request.Request(  # noqa: S310 - the URL is checked http(s) at config
        event.target, data=body, headers=webhook_headers(event, body, secret), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        return f"webhook answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return redact(f"webhook {event.target} unreachable: {reason}")
    if not 200 <= status < 300:
        return f"webhook answered HTTP {status}"
    return None
