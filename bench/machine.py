"""What a reader needs to judge the numbers: the machine, the versions, the load."""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.env import PYTHON, ROOT, PgServer, child_env, queuectl_script
from bench.procfs import memory_kb
from bench.results import BenchError


def bare_python_rss_kb() -> int:
    """VmRSS of this interpreter doing nothing: the floor under any Python worker."""
    proc = subprocess.Popen(
        [PYTHON, "-c", "import sys; sys.stdin.read()"],
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        return memory_kb(proc.pid)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "unknown"


def git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' (with uncommitted changes)' if dirty else ''}"


def queuectl_version() -> str:
    try:
        return subprocess.run(
            [str(queuectl_script()), "--version"],
            env=child_env(), capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError, BenchError):
        return "unknown"


def machine_facts(pg: PgServer | None) -> dict[str, str]:
    """What a reader needs to judge the numbers: hardware, versions, load, when."""
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return {
        "CPU": cpu_model(),
        "Cores": f"{cores}" + (f" ({usable} usable)" if usable != cores else ""),
        "Memory": _memory_total(),
        "Kernel": platform.release(),
        "Python": f"{platform.python_version()} ({PYTHON})",
        "SQLite": sqlite3.sqlite_version,
        "PostgreSQL server": pg.version if pg else "not available",
        "queuectl": f"{queuectl_version()}, commit {git_revision()}",
        "Date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "Load average at start": load_average(),
    }


def _memory_total() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"
