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
