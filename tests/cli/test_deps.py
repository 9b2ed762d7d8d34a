"""Job dependencies through the real command (issue 8, item 2): `depends_on` in enqueue JSON,
`add --after`, what show and list print, refused input, and the DLQ with dependencies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Queuectl, assert_error

pytestmark = pytest.mark.in_process


def enqueue_lines(q: Queuectl, jobs: list[dict[str, Any]]) -> Any:
    return q.run("enqueue", "-", input="".join(json.dumps(job) + "\n" for job in jobs))


def run_burst(q: Queuectl) -> None:
    code, err = q.finish(q.start_workers("--burst"))
    assert code == 0, err


def states(q: Queuectl) -> dict[str, str]:
    return {job["id"]: job["state"] for job in q.jobs()}


def test_enqueue_depends_on_is_shown_by_show_and_list(q: Queuectl) -> None:
    q.enqueue(id="build", command="true")
    q.enqueue(id="test", command="true")
    q.enqueue(id="deploy", command="true", depends_on=["build", "test"])
    assert q.job("deploy")["depends_on"] == ["build", "test"]
    assert q.job("build")["depends_on"] == []
    listed = {job["id"]: job["depends_on"] for job in q.jobs()}
    assert listed == {"build": [], "test": [], "deploy": ["build", "test"]}
    assert "depends on: build, test" in q.ok("show", "deploy")
    assert "depends on: -" in q.ok("show", "build")


def test_add_after_is_repeatable_and_takes_commas(q: Queuectl) -> None:
    for job_id in ("a", "b", "c"):
        q.ok("add", "--id", job_id, "--", "true")
    created = json.loads(q.ok("add", "--after", "a,b", "--after", "c", "--json", "--", "true"))
    assert created["depends_on"] == ["a", "b", "c"]
    assert q.job(created["id"])["depends_on"] == ["a", "b", "c"]


def test_dependent_runs_only_after_its_dependency_completed(q: Queuectl) -> None:
    """Higher priority would run `second` first; its dependency holds it back."""
    q.ok("add", "--id", "first", "--", "sleep 0.2; echo first")
    q.ok("add", "--id", "second", "--priority", "10", "--after", "first", "--", "echo second")
    run_burst(q)
    first, second = q.job("first"), q.job("second")
    assert (first["state"], second["state"]) == ("completed", "completed")
    assert second["started_at"] >= first["finished_at"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["enqueue", '{"id": "x", "command": "true", "depends_on": ["nope"]}'], "'nope'"),
        (["add", "--after", "nope", "--", "true"], "'nope'"),
        (["add", "--after", "ok,nope", "--", "true"], "'nope'"),
        (["enqueue", '{"id": "x", "command": "true", "depends_on": ["x"]}'], "itself"),
        (["add", "--id", "x", "--after", "x", "--", "true"], "itself"),
        (["enqueue", '{"command": "true", "depends_on": "ok"}'], "array"),
        (["enqueue", '{"command": "true", "depends_on": [1]}'], "depends_on"),
        (["enqueue", '{"command": "true", "depends_on": ["bad id"]}'], "invalid job id"),
        (["add", "--after", "bad id", "--", "true"], "invalid job id"),
    ],
)
def test_bad_dependencies_are_refused_and_nothing_is_written(
    q_shared: Queuectl, args: list[str], message: str
) -> None:
    if q_shared.job_count() == 0:
        q_shared.enqueue(id="ok", command="true")
    before = q_shared.jobs()
    error = assert_error(q_shared.run(*args), 2)
    assert message in error
    assert q_shared.jobs() == before


def test_bulk_enqueue_may_depend_on_its_own_lines(q: Queuectl) -> None:
    result = enqueue_lines(
        q,
        [
            {"id": "one", "command": "echo one"},
            {"id": "two", "command": "echo two", "depends_on": ["one"]},
            {"id": "three", "command": "echo three", "depends_on": ["two", "one"]},
        ],
    )
    assert result.returncode == 0, result.stderr
    run_burst(q)
    jobs = {job["id"]: job for job in q.jobs()}
    assert [jobs[i]["state"] for i in ("one", "two", "three")] == ["completed"] * 3
    assert jobs["one"]["finished_at"] <= jobs["two"]["started_at"]
    assert jobs["two"]["finished_at"] <= jobs["three"]["started_at"]


def test_bulk_enqueue_refuses_a_cycle_or_an_unknown_id_by_line(q: Queuectl) -> None:
    q.enqueue(id="kept", command="true")
    cycle = enqueue_lines(
        q,
        [
            {"id": "a", "command": "true", "depends_on": ["c"]},
            {"id": "b", "command": "true", "depends_on": ["a"]},
            {"id": "c", "command": "true", "depends_on": ["b"]},
        ],
    )
    assert "line 1: dependency cycle: a -> c -> b -> a" in assert_error(cycle, 2)
    unknown = enqueue_lines(
        q,
        [
            {"id": "a", "command": "true", "depends_on": ["kept"]},
            {"id": "b", "command": "true"},
            {"id": "c", "command": "true", "depends_on": ["a", "missing"]},
        ],
    )
    assert "line 3: job 'c' depends on 'missing'" in assert_error(unknown, 2)
    assert [job["id"] for job in q.jobs()] == ["kept"]


def test_failing_dependency_kills_its_dependents_with_the_reason(q: Queuectl) -> None:
    q.ok("add", "--id", "build", "--max-retries", "1", "--", "exit 3")
    q.ok("add", "--id", "test", "--after", "build", "--", "true")
    q.ok("add", "--id", "deploy", "--after", "test", "--", "true")
    run_burst(q)
    assert states(q) == {"build": "dead", "test": "dead", "deploy": "dead"}
    assert q.job("test")["last_error"] == "dependency build ended dead"
    assert q.job("deploy")["last_error"] == "dependency test ended dead"
    assert q.job("deploy")["attempts"] == 0
    dlq = [job["id"] for job in q.json("dlq", "list")]
    assert dlq == ["build", "test", "deploy"]


def test_dlq_retry_of_a_dependent_alone_is_refused_until_its_dependency_is_back(
    q: Queuectl,
) -> None:
    q.ok("add", "--id", "build", "--max-retries", "1", "--", "exit 3")
    q.ok("add", "--id", "test", "--after", "build", "--", "echo tested")
    run_burst(q)
    error = assert_error(q.run("dlq", "retry", "test"), 1)
    assert "depends on 'build', which is dead" in error
    assert states(q) == {"build": "dead", "test": "dead"}
    # Retrying the dependency alone leaves the dependent in the DLQ ...
    q.ok("dlq", "retry", "build")
    assert states(q) == {"build": "pending", "test": "dead"}
    # ... and retrying it too makes it wait for its dependency again.
    q.ok("dlq", "retry", "test")
    assert states(q) == {"build": "pending", "test": "pending"}


def test_dlq_retry_all_brings_a_chain_back_and_it_runs(q: Queuectl, tmp_path: Any) -> None:
    flag = tmp_path / "fixed"
    q.ok("add", "--id", "build", "--max-retries", "1", "--", f"test -e {flag}")
    q.ok("add", "--id", "test", "--after", "build", "--", "true")
    q.ok("add", "--id", "deploy", "--after", "test", "--", "true")
    run_burst(q)
    assert set(states(q).values()) == {"dead"}
    flag.touch()
    assert "Moved 3 jobs" in q.ok("dlq", "retry", "--all")
    run_burst(q)
    assert states(q) == {"build": "completed", "test": "completed", "deploy": "completed"}


def test_dlq_retry_all_says_which_jobs_stay_behind(q: Queuectl) -> None:
    q.ok("add", "--id", "dropped", "--delay", "1h", "--", "true")
    q.ok("add", "--id", "orphan", "--after", "dropped", "--", "true")
    q.ok("add", "--id", "broken", "--max-retries", "1", "--", "exit 1")
    q.ok("cancel", "dropped")
    run_burst(q)
    assert q.ok("dlq", "retry", "--all") == (
        "Moved 1 job from the DLQ to pending.\n"
        "1 job stays in the DLQ: a job it depends on stays dead or cancelled, or another job"
        " holds its dedupe key (`queuectl dlq retry ID` says which).\n"
    )
    assert states(q) == {"dropped": "cancelled", "orphan": "dead", "broken": "pending"}


def test_cancel_of_a_dependency_kills_its_dependents(q: Queuectl) -> None:
    q.ok("add", "--id", "later", "--delay", "1h", "--", "true")
    q.ok("add", "--id", "after", "--after", "later", "--", "true")
    q.ok("cancel", "later")
    assert states(q) == {"later": "cancelled", "after": "dead"}
    assert q.job("after")["last_error"] == "dependency later ended cancelled"
    error = assert_error(q.run("add", "--after", "later", "--", "true"), 1)
    assert "'later', which is cancelled" in error
