"""Crash points for testing recovery: $QUEUECTL_FAULT names a point where the process dies.

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

_armed: str | None = os.environ.get(FAULT_VARIABLE) or None


def crash_point(name: str) -> None:
    """Exit the process abruptly if $QUEUECTL_FAULT names this point."""
    if _armed is not None and _armed == name:
        os._exit(CRASH_EXIT_STATUS)
