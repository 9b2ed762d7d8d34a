"""Reaping the zombies of a worker's orphans without taking a shell that a run in another
thread (a hook, beside the job loop) waits for itself: that run would lose its status."""

from __future__ import annotations

import contextlib
import os
import threading

# Shells a run in another thread (a hook) waits for itself: reaping orphans leaves them be.
WAITED_FOR: set[int] = set()
REAPING = threading.Lock()


def reap_zombies() -> None:
    """Reap every ended child but those in WAITED_FOR."""
    with REAPING:
        if WAITED_FOR:
            for pid in _children():
                if pid not in WAITED_FOR:
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)
            return
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return


def _children() -> list[int]:
    """This process's children (none where /proc does not list them: reaped later)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError), open(f"/proc/self/task/{task}/children") as f:
                found += [int(pid) for pid in f.read().split()]
    return found
