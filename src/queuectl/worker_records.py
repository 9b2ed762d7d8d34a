"""Use cases of the workers' records: listing them, asking the active ones to stop, and
forgetting those of dead workers."""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from typing import Any

from queuectl.core.errors import QueuectlError, WrongState
from queuectl.core.models import JobState, WorkerInfo
from queuectl.service import QueueService, is_queuectl_process
from queuectl.store.base import JobFilter

ACTIVE, STALE, STOPPED = "active", "stale", "stopped"


class WorkerNotFound(QueuectlError):
    """No worker with this id."""


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A registered worker and what it is now: active, stale (died without stopping:
    no heartbeat for lease-timeout) or stopped."""

    info: WorkerInfo
    state: str
    held_job_ids: tuple[str, ...]  # processing jobs it still holds (a stale one: unrescued)

    def to_json(self) -> dict[str, Any]:
        return self.info.to_json() | {"state": self.state}


class WorkerRecords:
    def __init__(self, service: QueueService) -> None:
        self.service = service
        self.store = service.store

    def records(self) -> list[WorkerRecord]:
        """Every registered worker, oldest first (stopped ones stay about a day)."""
        lease = self.service.settings().lease_timeout
        active = {worker.id for worker in self.store.list_workers(lease)}
        held: dict[str, list[str]] = {}
        processing = self.store.list_jobs(JobFilter(states=(JobState.PROCESSING,), limit=0))
        for job in processing:
            if job.locked_by:
                held.setdefault(job.locked_by, []).append(job.id)
        records = []
        for info in self.store.list_worker_records():
            state = ACTIVE if info.id in active else STALE
            if info.status == "stopped":
                state = STOPPED
            records.append(WorkerRecord(info, state, tuple(held.get(info.id, ()))))
        return records

    def stop_active(self) -> list[WorkerInfo]:
        """Ask every active worker to stop gracefully: by signal on this host, through the
        store everywhere (a host cannot see another host's processes)."""
        workers = self.service.active_workers()
        self.store.request_stop([worker.id for worker in workers])
        import socket

        host = socket.gethostname()
        for worker in workers:
            if worker.host == host and is_queuectl_process(worker.pid):
                # SIGUSR2, not SIGTERM: however often `worker stop` is run, it only ever
                # asks for a graceful stop (a second SIGTERM kills the running job).
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(worker.pid, signal.SIGUSR2)
        return workers

    def forget(self, worker_ids: list[str]) -> list[str]:
        """Delete the records of these workers, each stopped or dead with its jobs rescued
        (the stale runs of dead workers are rescued first, as any command does). Every id is
        checked before any record goes, so a typo forgets nothing."""
        self.service.rescue_stale()
        by_id = {record.info.id: record for record in self.records()}
        for worker_id in worker_ids:
            record = by_id.get(worker_id)
            if record is None:
                raise WorkerNotFound(f"no worker with id {worker_id!r} (see queuectl worker list)")
            if record.state == ACTIVE:
                raise WrongState(
                    f"worker {worker_id!r} is active: stop it first (queuectl worker stop)"
                )
            if record.held_job_ids:
                raise WrongState(
                    f"worker {worker_id!r} still holds job {record.held_job_ids[0]!r}: it is "
                    "rescued once the worker's lease is out, then the worker can be forgotten"
                )
        return self._delete(worker_ids)

    def forget_stale(self) -> list[str]:
        """Delete the records of every dead worker whose jobs were rescued."""
        self.service.rescue_stale()
        gone = [
            record.info.id
            for record in self.records()
            if record.state == STALE and not record.held_job_ids
        ]
        return self._delete(gone)

    def _delete(self, worker_ids: list[str]) -> list[str]:
        return self.store.delete_workers(worker_ids, self.service.settings().lease_timeout)
