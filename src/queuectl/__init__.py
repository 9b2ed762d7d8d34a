"""queuectl: a background job queue for shell commands.

The Python API (`from queuectl import Queue`, docs/python-api.md) loads on first use:
`import queuectl` itself imports nothing, since every `queuectl enqueue` starts here.
"""

from __future__ import annotations

__version__ = "0.1.0"

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (enqueue start-up)
if TYPE_CHECKING:
    from queuectl.api import JobOptions, Queue, Status
    from queuectl.core.errors import (
        DependencyEnded,
        DuplicateDedupeKey,
        DuplicateJobId,
        InvalidJobSpec,
        JobNotFound,
        MissingDependency,
        QueuectlError,
        StoreUnavailable,
        UnknownDependency,
        UsageError,
        WaitTimedOut,
        WrongState,
    )
    from queuectl.core.models import Job, JobState, WorkerInfo

# Each public name and the module that defines it.
_LAZY = {
    "Queue": "queuectl.api",
    "Status": "queuectl.api",
    "JobOptions": "queuectl.api",
    "Job": "queuectl.core.models",
    "JobState": "queuectl.core.models",
    "WorkerInfo": "queuectl.core.models",
    "QueuectlError": "queuectl.core.errors",
    "UsageError": "queuectl.core.errors",
    "InvalidJobSpec": "queuectl.core.errors",
    "DuplicateJobId": "queuectl.core.errors",
    "DuplicateDedupeKey": "queuectl.core.errors",
    "UnknownDependency": "queuectl.core.errors",
    "JobNotFound": "queuectl.core.errors",
    "WrongState": "queuectl.core.errors",
    "DependencyEnded": "queuectl.core.errors",
    "StoreUnavailable": "queuectl.core.errors",
    "MissingDependency": "queuectl.core.errors",
    "WaitTimedOut": "queuectl.core.errors",
}

__all__ = [
    "DependencyEnded",
    "DuplicateDedupeKey",
    "DuplicateJobId",
    "InvalidJobSpec",
    "Job",
    "JobNotFound",
    "JobOptions",
    "JobState",
    "MissingDependency",
    "Queue",
    "QueuectlError",
    "Status",
    "StoreUnavailable",
    "UnknownDependency",
    "UsageError",
    "WaitTimedOut",
    "WorkerInfo",
    "WrongState",
    "__version__",
]


def __getattr__(name: str) -> object:
    """Load a public name from its module the first time it is asked for."""
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'queuectl' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module_name), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
