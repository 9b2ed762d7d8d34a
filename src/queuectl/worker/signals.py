"""Where a stop signal came from, and how many requests to stop a worker has had.

A Ctrl+C in a terminal reaches every process of the foreground group at once: the
supervisor and each worker get the same keystroke. A `kill` of the supervisor reaches it
alone, and it passes the request on. So the supervisor forwards only what a terminal did
not already deliver, and each worker counts what it gets by source, never by timing alone:
a person's second Ctrl+C kills the running jobs however soon it follows the first.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from enum import Enum

SI_KERNEL = 0x80  # si_code of a signal the kernel raised itself: a terminal's Ctrl+C
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
GRACEFUL_STOP_SIGNAL = signal.SIGUSR2  # `worker stop`: a request that never escalates
WAKE_SIGNAL = signal.SIGUSR1  # `cancel` on this host: look at the claim now
# A `kill` of the whole group reaches a worker twice, directly and forwarded; two such
# copies from the two sources within this many seconds are one request.
PAIR_WINDOW = 1.0


class Source(Enum):
    TERMINAL = "terminal"  # raised by the kernel for a terminal (Ctrl+C, Ctrl+\)
    SUPERVISOR = "supervisor"  # forwarded by this worker's `worker start`
    OTHER = "other"  # any other process: `kill`, a service manager, ...


def source_of(info: signal.struct_siginfo, supervisor_pid: int | None) -> Source:
    if info.si_code == SI_KERNEL:
        return Source.TERMINAL
    if supervisor_pid is not None and info.si_pid == supervisor_pid:
        return Source.SUPERVISOR
    return Source.OTHER


@dataclass
class StopCounter:
    """Counts stop requests: the first asks for a graceful stop, any later one for the
    running job to be killed. A copy forwarded by the supervisor and a copy sent directly
    by another process, close together, pair up into one request."""

    requests: int = 0
    _unpaired: tuple[Source, float] | None = None

    def count(self, source: Source, now: float | None = None) -> int:
        """Record one stop signal; returns the number of requests so far."""
        now = time.monotonic() if now is None else now
        unpaired = self._unpaired
        if (
            source is not Source.TERMINAL
            and unpaired is not None
            and unpaired[0] is not Source.TERMINAL
            and unpaired[0] is not source
            and now - unpaired[1] <= PAIR_WINDOW
        ):
            self._unpaired = None  # the other copy of a request already counted
            return self.requests
        self.requests += 1
        self._unpaired = (source, now)
        return self.requests
