"""A ledger of job runs kept by the jobs themselves, and the checker that reads it.

Each run appends a start record, and an end record when it succeeds, to the job's own file
(`O_APPEND` writes of one short line are atomic): `S|E job-id attempt pid worker-id`. The
worker is the one whose id the run carries in its environment, not the shell's parent: a
worker killed as it started a run leaves a shell whose parent is already someone else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def ledger_command(folder: Path, work: str = "sleep 0.05") -> str:
    """A job command that records its start and successful end in `folder`."""
    fields = '"$QUEUECTL_JOB_ID $QUEUECTL_ATTEMPT $$ $QUEUECTL_WORKER_ID"'
    record = f'{fields} >> {folder}/"$QUEUECTL_JOB_ID"'
    return f"echo S {record} && {work} && echo E {record}"


@dataclass(frozen=True, slots=True)
class Run:
    attempt: int
    pid: int
    worker_id: str


@dataclass
class Report:
    lost: list[str] = field(default_factory=list)  # acknowledged, never ended successfully
    overlapping: list[str] = field(default_factory=list)  # two runs at once
    unexplained_reruns: list[str] = field(default_factory=list)  # a rerun no kill explains
    unexplained_failures: list[str] = field(default_factory=list)  # ditto, in the history
    runs: int = 0
    reruns: int = 0

    def problems(self) -> dict[str, list[str]]:
        found = {
            "lost": self.lost,
            "overlapping": self.overlapping,
            "unexplained_reruns": self.unexplained_reruns,
            "unexplained_failures": self.unexplained_failures,
        }
        return {name: ids[:10] for name, ids in found.items() if ids}


def read_runs(path: Path) -> list[tuple[str, Run]]:
    """The records of one job's file, in the order they were written."""
    records = []
    for line in path.read_text().splitlines():
        kind, _, attempt, pid, worker_id = line.split()
        records.append((kind, Run(int(attempt), int(pid), worker_id)))
    return records


def check(
    folder: Path,
    acknowledged: Iterable[str],
    jobs: dict[str, dict[str, Any]],
    killed_worker_pids: set[int],
    worker_pid_by_id: dict[str, int],
) -> Report:
    """Hold the ledger and the final jobs (state, attempts, history as `show --json` has
    them) against
    what may happen when only the workers in `killed_worker_pids` were killed."""
    report = Report()
    for job_id in acknowledged:
        path = folder / job_id
        records = read_runs(path) if path.exists() else []
        starts = [run for kind, run in records if kind == "S"]
        ended = {run for kind, run in records if kind == "E"}
        report.runs += len(starts)
        report.reruns += max(0, len(starts) - 1)
        job = jobs.get(job_id)
        if job is None or job["state"] != "completed" or not ended:
            report.lost.append(job_id)
            continue
        # Overlap: a run started while another run that went on to end was still open.
        # (A run that never ended was killed with its worker: see the rerun check.)
        open_runs: set[Run] = set()
        for kind, run in records:
            if kind == "S":
                if open_runs & ended:
                    report.overlapping.append(job_id)
                open_runs.add(run)
            else:
                open_runs.discard(run)
        # Every run but the recorded one must have been cut short by a killed worker.
        if any(
            worker_pid_by_id.get(run.worker_id) not in killed_worker_pids for run in starts[:-1]
        ):
            report.unexplained_reruns.append(job_id)
        failures = [attempt for attempt in job["history"] if attempt["error"] is not None]
        if any(
            worker_pid_by_id.get(attempt["worker_id"]) not in killed_worker_pids
            for attempt in failures
        ) or job["attempts"] != len(job["history"]):
            report.unexplained_failures.append(job_id)
    return report
