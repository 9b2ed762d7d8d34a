"""Code the peers run, in the scratch environment: each module records, for every job,
when it started and ended (one line `START END` appended to `$PEER_LOG`), so a drain is
timed from the first start to the last end exactly as queuectl's is."""

from __future__ import annotations

import os
import time


def record(log: int, start: float) -> None:
    """One job done: an O_APPEND write of one short line is atomic between processes."""
    os.write(log, f"{start:.6f} {time.time():.6f}\n".encode())


def open_log() -> int:
    return os.open(os.environ["PEER_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
