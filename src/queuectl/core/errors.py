"""Error tree of queuectl; each class carries the exit status the SPEC gives it."""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (enqueue start-up)
if TYPE_CHECKING:
    from typing import ClassVar


class QueuectlError(Exception):
    """Unexpected queuectl error."""

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)

    @property
    def message(self) -> str:
        return str(self.args[0])


class UsageError(QueuectlError):
    """Invalid usage."""

    exit_code = 2


class InvalidJobSpec(UsageError):
    """Invalid job."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


class DuplicateJobId(UsageError):
    """A job with this id already exists."""


class DuplicateDedupeKey(UsageError):
    """A job with this dedupe key is already pending, failed or processing."""

    def __init__(
        self,
        key: str,
        existing_id: str | None,
        state: str | None = None,
        *,
        line: int | None = None,
    ) -> None:
        holder = f"already {state} ({existing_id})" if existing_id else "given twice"
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}a job with dedupe key {key!r} is {holder}")
        self.key = key
        self.existing_id = existing_id
        self.state = state


class InvalidConfig(UsageError):
    """Invalid configuration key or value."""


class JobNotFound(QueuectlError):
    """No job with this id."""


class WrongState(QueuectlError):
    """The job is not in a state that allows this."""


class StoreUnavailable(QueuectlError):
    """The job store cannot be reached."""


class MissingDependency(QueuectlError):
    """An optional dependency is not installed."""


class DuplicateSchedule(UsageError):
    """A schedule with this name already exists."""


class ScheduleNotFound(QueuectlError):
    """No schedule with this name."""


class UnknownDependency(UsageError):
    """A job depends on a job that does not exist."""

    def __init__(self, message: str, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id  # the job whose dependency is missing


class DependencyEnded(WrongState):
    """A job depends on a job that ended dead or cancelled, so it could never run."""

    def __init__(self, message: str, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id  # the job that would wait forever


class WaitTimedOut(QueuectlError, TimeoutError):
    """Timed out waiting for jobs."""

    exit_code = 124  # as timeout(1)
