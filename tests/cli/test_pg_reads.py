"""`status` and `show` on PostgreSQL read through psycopg2 (store/postgres/reads.py) and print
exactly what the full path prints; they take the full path when psycopg2 is missing, when a
silent worker's run must be rescued first, or when the schema is not this release's."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from queuectl.core.lifecycle import Outcome
from queuectl.core.models import AttemptOutcome, JobState, NewJob
from queuectl.store import open_store
from queuectl.store.records import AttemptRecord
from tests import pgtools
from tests.cli.startup import traced
from tests.cli.test_doctor import plant_stuck_job
from tests.conftest import Queuectl
from tests.storetools import age_worker

pytestmark = pytest.mark.postgres

# A relative hint (`(3s ago)`, `(in 2m 5s)`, `uptime: 4s`): a second may tick between two runs.
RELATIVE = re.compile(r"\((?:in )?\d+[smhd](?: \d+[smhd])?(?: ago)?\)|uptime: [^)]*")
SHOWN = ["plain", "policy", "done", "dead", "running", "waiting"]


def plant_jobs(q: Queuectl) -> None:
    """Jobs in most states, with every field `show` prints, and a live worker running one."""
    store = open_store(q.target)
    try:
        store.insert_jobs(
            [
                NewJob(id="done", command="echo hello", priority=9),
                NewJob(id="dead", command="exit 3", max_retries=0, priority=8),
                NewJob(id="running", command="sleep 1000", priority=7),
                NewJob(id="plain", command="true"),
                NewJob(
                    id="policy",
                    command="printf 'a\\tb'\nexit 75",
                    queue="night",
                    cwd="/tmp",
                    env={"A": "1", "B": "two words"},
                    retry_on_exit=(75,),
                    fatal_on_exit=(2, 3),
                    dedupe_key="key é",
                    timeout=2.5,
                ),
                NewJob(id="waiting", command="true", depends_on=("plain", "running")),
            ]
        )
        store.register_worker("worker-live", socket.gethostname(), 4321, ("default", "night"))
        for outcome, record in (
            (Outcome(JobState.COMPLETED, None, None), AttemptRecord(0, "hello\n")),
            (
                Outcome(JobState.DEAD, None, "exited with code 3"),
                AttemptRecord(3, "oops", AttemptOutcome.FAILED),
            ),
        ):
            job = store.claim_job("worker-live", None)
            assert job is not None
            assert store.finish_attempt(job, "worker-live", outcome, record)
        assert store.claim_job("worker-live", None) is not None  # `running`, held
    finally:
        store.close()


def both_paths(q: Queuectl, *args: str) -> tuple[tuple[int, str, str], set[str]]:
    """The command's (status, stdout, stderr) through the lean path, checked against the
    full path's; and the modules the lean run imported."""
    lean, modules = traced(q.env, *args)
    full, full_modules = traced(q.env, *args, full=True)
    assert "psycopg" in full_modules
    seen = [
        (result.returncode, RELATIVE.sub("(…)", result.stdout), result.stderr)
        for result in (lean, full)
    ]
    assert seen[0] == seen[1]
    return (lean.returncode, lean.stdout, lean.stderr), modules


@pytest.mark.parametrize("as_json", [False, True])
def test_status_and_show_print_what_the_full_path_prints(q_pg: Queuectl, as_json: bool) -> None:
    plant_jobs(q_pg)
    flag = ["--json"] if as_json else []
    (code, out, _), modules = both_paths(q_pg, "status", *flag)
    assert code == 0
    assert "psycopg2" in modules
    assert "psycopg" not in modules
    assert "worker-live" in out
    for job_id in SHOWN:
        (code, out, _), modules = both_paths(q_pg, "show", job_id, *flag)
        assert code == 0
        assert "psycopg" not in modules
        assert job_id in out
    if as_json:
        shown = json.loads(both_paths(q_pg, "show", "policy", "--json")[0][1])
        assert shown["env"] == {"A": "1", "B": "two words"}
        assert [attempt["exit_code"] for attempt in q_pg.history("dead")] == [3]


def test_show_of_an_unknown_or_impossible_id_says_so_as_before(q_pg: Queuectl) -> None:
    plant_jobs(q_pg)
    for job_id in ("nope", "bad id!", "x" * 200):
        (code, out, err), _ = both_paths(q_pg, "show", job_id)
        assert (code, out) == (1, "")
        assert err.startswith("error: no job with id")


def test_a_run_to_rescue_sends_status_and_show_down_the_full_path(q_pg: Queuectl) -> None:
    q_pg.config("lease-timeout", "5")
    plant_stuck_job(q_pg, "held", "worker-killed", heartbeat_age=60)
    result, modules = traced(q_pg.env, "show", "held", "--json")
    assert result.returncode == 0, result.stderr
    assert "psycopg" in modules  # PostgresStore rescued the job
    assert json.loads(result.stdout)["state"] == "failed"
    result, modules = traced(q_pg.env, "status")
    assert result.returncode == 0, result.stderr
    assert "psycopg" not in modules  # nothing left to rescue


def test_a_worker_silent_for_less_than_the_lease_is_left_alone(q_pg: Queuectl) -> None:
    q_pg.config("lease-timeout", "300")
    plant_stuck_job(q_pg, "held", "worker-slow", heartbeat_age=60)
    (code, out, _), modules = both_paths(q_pg, "status", "--json")
    assert code == 0
    assert "psycopg" not in modules
    assert json.loads(out)["jobs"]["processing"] == 1
    age_worker(q_pg.target, "worker-slow", 600)
    assert q_pg.json("status")["jobs"]["processing"] == 0


def test_status_on_an_empty_database_creates_the_schema_as_before(tmp_path: Path) -> None:
    with pgtools.fresh_database(migrated=False) as url:
        q = Queuectl(url, tmp_path / "home")
        result, modules = traced(q.env, "status", "--json")
        assert result.returncode == 0, result.stderr
        assert "psycopg" in modules
        assert json.loads(result.stdout)["jobs"]["total"] == 0
        result, modules = traced(q.env, "status", "--json")
        assert "psycopg" not in modules
