"""The commands people run most on a SQLite store (`show`, `list`, `status`) load only
what they use: `show ID` is held to `python -c pass` + 50 ms (docs/BENCHMARKS.md, figure 5)."""

from __future__ import annotations

import pytest

from tests.cli.startup import traced
from tests.conftest import Queuectl

# Only workers log (and import logging, with traceback and threading): about 4 ms.
WORKER_ONLY = {"logging"}


@pytest.mark.parametrize("command", [["show", "job"], ["list"], ["status"]])
def test_a_read_on_sqlite_leaves_the_workers_modules_out(
    q_sqlite: Queuectl, command: list[str]
) -> None:
    q_sqlite.enqueue(id="job", command="true")
    result, modules = traced(q_sqlite.env, *command)
    assert result.returncode == 0, result.stderr
    assert "queuectl.store.sqlite" in modules  # the full path: the store itself
    assert modules & WORKER_ONLY == set()
