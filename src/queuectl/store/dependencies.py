"""Job dependencies, the decisions both backends share: what a new job waits for, which dead
jobs a bulk retry may bring back. The stores run the SQL; this module only decides."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from queuectl.core.errors import DependencyEnded, UnknownDependency
from queuectl.core.models import JobState, NewJob

ENDED = (JobState.DEAD.value, JobState.CANCELLED.value)


def outside_batch(jobs: Sequence[NewJob]) -> list[str]:
    """Ids that jobs of this batch depend on and that the batch does not hold itself."""
    batch = {job.id for job in jobs}
    return sorted({dep for job in jobs for dep in job.depends_on if dep not in batch})


def waiting_counts(jobs: Sequence[NewJob], stored: Mapping[str, str]) -> list[int]:
    """For each new job, how many of its dependencies have not completed yet, given the
    states of the stored ones. Refuses an unknown dependency (UnknownDependency) and one
    that ended dead or cancelled (DependencyEnded): its dependent could never run."""
    batch = {job.id for job in jobs}
    counts = []
    for job in jobs:
        waiting = 0
        for dep in job.depends_on:
            if dep in batch:
                waiting += 1
                continue
            state = stored.get(dep)
            if state is None:
                raise UnknownDependency(
                    f"{job.name} depends on {dep!r}, but no job has that id", job.id
                )
            if state in ENDED:
                raise DependencyEnded(
                    f"{job.name} depends on {dep!r}, which is {state} and will never "
                    f"complete: retry {dep!r} first",
                    job.id,
                )
            waiting += state != JobState.COMPLETED.value
        counts.append(waiting)
    return counts


def ended_dependency(job_id: str, dependencies: Iterable[tuple[str, str]]) -> None:
    """Refuse to retry a job while one of its (dependency id, state) pairs is dead or
    cancelled: it would only die again at once."""
    for dep, state in dependencies:
        if state in ENDED:
            raise DependencyEnded(
                f"job {job_id!r} depends on {dep!r}, which is {state}: retry {dep!r} first "
                "(`queuectl dlq retry --all` retries every dead job at once)",
                job_id,
            )


def blocked_by_ended(edges: Iterable[tuple[str, str, str, str]], queue: str | None) -> set[str]:
    """Dead jobs a bulk DLQ retry must leave dead, from (job, dependency, its state, its
    queue) edges of the dead jobs: those with a cancelled dependency, or a dead one that
    this retry does not bring back (another queue, or itself blocked)."""
    edges = list(edges)
    blocked: set[str] = set()
    changed = True
    while changed:  # a fixpoint: blocking one job may block those that wait for it
        changed = False
        for job_id, dep, state, dep_queue in edges:
            if job_id in blocked or state not in ENDED:
                continue
            retried = (
                state == JobState.DEAD.value
                and (queue is None or dep_queue == queue)
                and dep not in blocked
            )
            if not retried:
                blocked.add(job_id)
                changed = True
    return blocked


def dependency_error(dependency: str, state: str) -> str:
    """The last_error of a job that died because `dependency` ended in `state`."""
    return f"dependency {dependency} ended {state}"


def kill_dependents(job_id: str, state: JobState, kill: Callable[[str, str], list[str]]) -> None:
    """After `job_id` ended dead or cancelled, the jobs that wait for it die, then the jobs
    that wait for those, and so on. `kill(cause, error)` runs the backend's statement for
    the dependents of one cause, and returns the ids it killed."""
    ended = [(job_id, state.value)]
    while ended:
        cause, how = ended.pop()
        killed = kill(cause, dependency_error(cause, how))
        ended += [(dependent, JobState.DEAD.value) for dependent in killed]


def waiting_after_retry(job_id: str, edges: Sequence[tuple[str, str]]) -> int:
    """How many dependencies a job retried now waits for, from its (dependency, state)
    edges; DependencyEnded while one of them is dead or cancelled."""
    ended_dependency(job_id, edges)
    return sum(state != JobState.COMPLETED.value for _, state in edges)


def bulk_retry(
    candidates: Sequence[str], edges: Iterable[tuple[str, str, str, str]], queue: str | None
) -> tuple[list[str], list[str]]:
    """Of the dead jobs a bulk DLQ retry may bring back (`candidates`, their dedupe keys
    free), those it brings back, and those of them whose waits must be recounted, from the
    (job, dependency, its state, its queue) edges of the dead jobs. A dead dependency that
    stays dead (not a candidate) blocks like a cancelled one."""
    coming_back = set(candidates)
    edges = [
        (job, dep, "cancelled" if state == "dead" and dep not in coming_back else state, q)
        for job, dep, state, q in edges
    ]
    blocked = blocked_by_ended(edges, queue)
    ids = [job_id for job_id in candidates if job_id not in blocked]
    return ids, sorted({edge[0] for edge in edges} & set(ids))
