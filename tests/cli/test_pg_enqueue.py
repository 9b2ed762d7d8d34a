"""`enqueue` on PostgreSQL takes the lean path (psycopg2, no Store machinery) for plain jobs,
and the full path for the rest, or when psycopg2 is missing, with the same results (issue 15)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.cli.startup import WITHOUT_PSYCOPG2, traced
from tests.conftest import Queuectl

pytestmark = pytest.mark.postgres


def imported(q: Queuectl, *args: str) -> set[str]:
    """The modules a `queuectl` command imported (python -X importtime)."""
    result, modules = traced(q.env, *args)
    assert result.returncode == 0, result.stderr
    return modules


def test_a_plain_enqueue_loads_neither_psycopg_nor_the_store(q_pg: Queuectl) -> None:
    q_pg.ok("status")  # the store exists: the lean path applies
    modules = imported(q_pg, "enqueue", json.dumps({"id": "lean", "command": "echo hi"}))
    assert "psycopg2" in modules
    assert "psycopg" not in modules
    assert "queuectl.store.postgres" not in modules
    assert q_pg.job("lean")["command"] == "echo hi"


def test_a_job_with_dependencies_takes_the_full_path(q_pg: Queuectl) -> None:
    q_pg.enqueue(id="first", command="true")
    modules = imported(
        q_pg, "enqueue", json.dumps({"id": "then", "command": "true", "depends_on": ["first"]})
    )
    assert "queuectl.store.postgres" in modules
    assert q_pg.job("then")["depends_on"] == ["first"]


def test_without_psycopg2_enqueue_takes_the_full_path(q_pg: Queuectl) -> None:
    lines = "".join(json.dumps({"id": f"job-{n}", "command": "true"}) + "\n" for n in range(3))
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_PSYCOPG2, "enqueue", "-"],
        input=lines,
        capture_output=True,
        text=True,
        env=q_pg.env,
        check=False,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "job-0\njob-1\njob-2\n", "")


def test_a_taken_id_in_a_large_batch_names_its_line_and_stores_nothing(q_pg: Queuectl) -> None:
    q_pg.enqueue(id="taken", command="true")
    jobs = [{"command": "true"} for _ in range(300)]
    jobs[250] = {"id": "taken", "command": "true"}
    text = "".join(json.dumps(job) + "\n" for job in jobs)
    result = q_pg.run("enqueue", "-", input=text)
    assert result.returncode == 2, result.stderr
    assert result.stderr == "error: line 251: job id 'taken' already exists\n"
    assert q_pg.job_count() == 1
