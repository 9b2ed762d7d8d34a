"""Killing what a run left behind, found by the marker every process of the run inherits in
its environment. Apart from the runner, the job guard uses it: a process of its own started
for every `worker start`, so this module imports nothing but the standard library's basics."""

from __future__ import annotations

import contextlib
import os
import signal
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (the guard's start-up)
if TYPE_CHECKING:
    from collections.abc import Mapping

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL for a timed-out or killed run


def kill_processes_with_environment(
    required: Mapping[str, str], *, wait: float = KILL_GRACE
) -> list[int]:
    """SIGKILL every process of this host whose environment holds all of `required`, and
    wait (up to `wait` seconds) until they are gone; returns their pids.

    Environments are inherited, so this finds a run's background processes too, even once
    the process that started them is dead and they were handed to init; their process
    groups are killed with them. Processes of other
    users cannot be read and are left alone; zombies have no environment and never match.
    """
    wanted = {f"{key}={value}".encode() for key, value in required.items()}
    killed: list[int] = []
    deadline = time.monotonic() + wait
    own_group = os.getpgid(0)
    while True:
        found = [pid for pid in _pids_with_environment(wanted) if pid not in killed]
        for pid in found:
            # Its process group too: a run's shell leads one, and a process there that
            # cleared its environment (`env -i`) still belongs to the run.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                group = os.getpgid(pid)
                if group > 1 and group != own_group:
                    os.killpg(group, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed.extend(found)
        # Scan again: a process may have forked between the scan and its kill.
        if not found and not any(_pid_alive(pid) for pid in killed):
            return killed
        if time.monotonic() > deadline:
            return killed
        time.sleep(0.01)


def _pids_with_environment(wanted: set[bytes]) -> list[int]:
    me = os.getpid()
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    found = []
    for name in names:
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:
            continue
        if wanted.issubset(environ.split(b"\0")):
            found.append(int(name))
    return found


def _pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (dead, not yet reaped) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] not in (b"Z", b"X")
