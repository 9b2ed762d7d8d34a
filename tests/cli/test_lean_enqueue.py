"""A plain `enqueue` on SQLite starts with what it needs and no more: the CLI start-up that a
shell loop of enqueues pays per job (docs/BENCHMARKS.md, figure 2)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import Queuectl

# What the lean path must not load: each costs a noticeable share of a bare interpreter's
# start-up (json brings re; Settings brings dataclasses, typing and inspect).
HEAVY = {"json", "re", "dataclasses", "typing", "enum", "argparse", "queuectl.core.settings"}


def imported(q: Queuectl, *args: str) -> set[str]:
    """The modules a `queuectl` command imported (python -X importtime)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "queuectl", *args],
        capture_output=True,
        text=True,
        env=q.env,
        check=True,
        timeout=60,
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in lines}


def test_a_plain_enqueue_on_a_configured_store_loads_nothing_heavy(q_sqlite: Queuectl) -> None:
    q_sqlite.ok("config", "set", "max-retries", "7")
    q_sqlite.ok("config", "set", "job-timeout", "90")
    modules = imported(q_sqlite, "enqueue", json.dumps({"id": "lean", "command": "echo hi"}))
    assert "queuectl.store.sqlite_enqueue" in modules
    assert modules & HEAVY == set()
    job = q_sqlite.job("lean")
    assert (job["command"], job["max_retries"], job["timeout"]) == ("echo hi", 7, 90)


def test_a_job_json_cannot_read_alone_still_enqueues_the_lean_way(q_sqlite: Queuectl) -> None:
    q_sqlite.ok("status")
    text = json.dumps({"id": "esc", "command": 'echo "a\tb"', "timeout": 2.5})
    modules = imported(q_sqlite, "enqueue", text)
    assert "json" in modules
    assert "queuectl.store.sqlite" not in modules
    job = q_sqlite.job("esc")
    assert (job["command"], job["timeout"]) == ('echo "a\tb"', 2.5)
