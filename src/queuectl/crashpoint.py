"""Crash points for testing recovery: $QUEUECTL_FAULT names a point where the process dies
(or, for `raise-in-<task>`, where a worker task raises as a bug would).

Read once at import; when the variable is unset, `crash_point()` is one comparison. A crash
here is `os._exit`: no cleanup, no goodbye to the store, as with a SIGKILL or power loss.
"""

from __future__ import annotations

import os

FAULT_VARIABLE = "QUEUECTL_FAULT"
CRASH_EXIT_STATUS = 86
# after-claim: a job is claimed but its command not started.
# before-record: the command has ended; its result is not recorded yet.
# after-record: the result is recorded; the worker dies before its next step.
# during-rescue: a stale job's leftover processes are killed but the lost run not recorded.
# between-finish-and-release: inside the store's finish transaction, after the job's row is
#   written and before its dependents are released: a crash here must roll back both.
POINTS = (
    "after-claim",
    "before-record",
    "after-record",
    "during-rescue",
    "between-finish-and-release",
)
# Faults that raise an unexpected exception instead, inside one task of a worker, to prove
# that any bug there ends the worker safely: raise-in-heartbeat, raise-in-rescue,
# raise-in-retention, raise-in-schedules, raise-in-output, raise-in-job-loop.
FAULTS = (
    "heartbeat",
    "rescue",
    "retention",
    "schedules",
    "output",
    "job-loop",
)

# Seconds after start-up before a `raise-in-<task>` fault fires (default at once): lets a
# test have a job running when a background task breaks. Counted again from each fork, so
# that every worker (a replacement too) has that long to take a job, however slowly the
# process before the fork started.
FAULT_AFTER_VARIABLE = "QUEUECTL_FAULT_AFTER"

_armed: str | None = os.environ.get(FAULT_VARIABLE) or None
_armed_at = 0.0


def _arm() -> None:
    global _armed_at
    import time

    try:
        _armed_at = time.monotonic() + float(os.environ.get(FAULT_AFTER_VARIABLE) or 0)
    except ValueError:
        _armed_at = 0.0


if _armed is not None and _armed.startswith("raise-in-"):
    _arm()
    os.register_at_fork(after_in_child=_arm)


def crash_point(name: str) -> None:
    """Exit the process abruptly if $QUEUECTL_FAULT names this point."""
    if _armed is not None and _armed == name:
        os._exit(CRASH_EXIT_STATUS)


class InjectedFault(RuntimeError):
    """The exception a `raise-in-...` fault raises: stands for any bug in that task."""


def fault_point(task: str) -> None:
    """Raise InjectedFault if $QUEUECTL_FAULT is `raise-in-<task>`."""
    if _armed is not None and _armed == f"raise-in-{task}":
        import time

        if time.monotonic() >= _armed_at:
            raise InjectedFault(f"injected fault in the {task} task")
