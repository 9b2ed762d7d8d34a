"""What /proc says about a process: its children, CPU time and memory."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from bench.results import BenchError

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def is_guard(pid: int) -> bool:
    """True for the guard process `worker start` keeps beside its workers."""
    try:
        return b"queuectl.worker.guard" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def guard_of(pid: int) -> int | None:
    """The guard process of the `worker start` with this pid, if it has one."""
    return next((child for child in children_of(pid) if is_guard(child)), None)


def worker_children(pid: int) -> list[int]:
    """The worker processes of the `worker start` with this pid: its children but the guard."""
    return [child for child in children_of(pid) if not is_guard(child)]


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return sorted(int(p) for p in text.split())
    except OSError:
        pass
    found = []  # kernels without CONFIG_PROC_CHILDREN: scan every process's parent
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return sorted(found)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime field 14 and stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_kb(pid: int, key: str = "VmRSS") -> int:
    """A line of /proc/PID/status (VmRSS, VmHWM), or of smaps_rollup for Pss."""
    source = "smaps_rollup" if key == "Pss" else "status"
    for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise BenchError(f"no {key} in /proc/{pid}/{source}")
