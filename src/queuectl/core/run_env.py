"""The environment that names a run: which job, attempt and worker it belongs to.

Every job's shell gets these variables; they are also how a run's processes are found
again (rescue, the guard) once the worker that started them is gone.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (enqueue start-up)
if TYPE_CHECKING:
    from queuectl.core.models import Job

JOB_ID_VARIABLE = "QUEUECTL_JOB_ID"
ATTEMPT_VARIABLE = "QUEUECTL_ATTEMPT"
WORKER_ID_VARIABLE = "QUEUECTL_WORKER_ID"


def job_environment(job: Job, worker_id: str) -> dict[str, str]:
    """The variables that tell a run which job, attempt and worker it is; together they
    also identify the run's processes (and those it started) once its worker is gone. The
    worker id keeps apart jobs of the same id and attempt in two stores on one host."""
    return {
        JOB_ID_VARIABLE: job.id,
        ATTEMPT_VARIABLE: str(job.attempts),
        WORKER_ID_VARIABLE: worker_id,
    }
