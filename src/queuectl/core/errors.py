"""Error tree of queuectl; each class carries the exit status the SPEC gives it."""

from __future__ import annotations

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
