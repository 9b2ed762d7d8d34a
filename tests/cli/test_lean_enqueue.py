"""A plain `enqueue` on SQLite starts with what it needs and no more: the CLI start-up that a
shell loop of enqueues pays per job (docs/BENCHMARKS.md, figure 2)."""

from __future__ import annotations

import json

from tests.cli.startup import traced
from tests.conftest import Queuectl

# What the lean path must not load: each costs a noticeable share of a bare interpreter's
# start-up (json brings re; Settings brings dataclasses, typing and inspect).
HEAVY = {"json", "re", "dataclasses", "typing", "enum", "argparse", "queuectl.core.settings"}


def imported(q: Queuectl, *args: str) -> set[str]:
    result, modules = traced(q.env, *args)
    assert result.returncode == 0, result.stderr
    return modules


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


def test_lines_are_split_on_line_feeds_only(q_sqlite: Queuectl) -> None:
    # U+2028 ends a line for str.splitlines, never for JSON lines; the last may have no end.
    lines = '{"id": "a", "command": "echo \u2028"}\r\n{"id": "b", "command": "true"}'
    assert q_sqlite.ok("enqueue", "-", input=lines) == "a\nb\n"
    assert q_sqlite.job("a")["command"] == "echo \u2028"
    bad = '{"id": "c", "command": "true"}\r\n\u2028\x0c\n{"command": 5}'
    result = q_sqlite.run("enqueue", "-", input=bad)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("error: line 3: ")  # line 2 is blank (white space only)
    assert q_sqlite.job_count() == 2
