"""Dedupe keys through the real command: `add --dedupe-key`, `enqueue` with `dedupe_key`,
`--if-exists skip`, batches and racing enqueuers (issue 8, item 4)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import Queuectl, assert_error

pytestmark = pytest.mark.in_process

RACERS = 6


def lines(*jobs: dict[str, object]) -> str:
    return "".join(json.dumps(job) + "\n" for job in jobs)


def test_add_with_a_held_key_is_refused_and_names_the_holder(q: Queuectl) -> None:
    first = q.ok("add", "--dedupe-key", "nightly-report", "--", "make", "report").strip()
    refused = q.run("add", "--dedupe-key", "nightly-report", "--", "make", "report")
    message = assert_error(refused, 2)
    assert message == f"a job with dedupe key 'nightly-report' is already pending ({first})"
    assert [job["id"] for job in q.jobs()] == [first]
    assert q.job(first)["dedupe_key"] == "nightly-report"


def test_add_if_exists_skip_prints_the_existing_id(q: Queuectl) -> None:
    first = q.ok("add", "--dedupe-key", "k", "--", "true").strip()
    again = q.run("add", "--dedupe-key", "k", "--if-exists", "skip", "--", "echo", "other")
    assert (again.returncode, again.stdout, again.stderr) == (0, f"{first}\n", "")
    shown = json.loads(q.ok("add", "--dedupe-key", "k", "--if-exists", "skip", "--json", "--", "x"))
    assert (shown["id"], shown["command"]) == (first, "true")
    assert len(q.jobs()) == 1


def test_enqueue_with_a_held_key_is_refused(q: Queuectl) -> None:
    q.enqueue(id="a", command="true", dedupe_key="k")
    refused = q.run("enqueue", json.dumps({"id": "b", "command": "true", "dedupe_key": "k"}))
    assert assert_error(refused, 2) == "a job with dedupe key 'k' is already pending (a)"
    assert assert_error(q.run("show", "b"), 1)


def test_enqueue_if_exists_skip_prints_the_existing_id(q: Queuectl) -> None:
    q.enqueue(id="a", command="true", dedupe_key="k")
    job = json.dumps({"id": "b", "command": "true", "dedupe_key": "k"})
    # The option after the JSON, where the fast start-up path of `enqueue` also looks.
    assert q.ok("enqueue", job, "--if-exists", "skip") == "a\n"
    assert q.ok("enqueue", "--if-exists", "skip", job) == "a\n"
    assert q.ok("enqueue", "--if-exists=skip", job) == "a\n"
    assert json.loads(q.ok("enqueue", job, "--if-exists", "skip", "--json"))["id"] == "a"
    assert [j["id"] for j in q.jobs()] == ["a"]
    # When the key is free, skip just enqueues.
    free = json.dumps({"id": "c", "command": "true", "dedupe_key": "free"})
    assert q.ok("enqueue", free, "--if-exists", "skip") == "c\n"


def test_if_exists_refuses_an_unknown_choice(q: Queuectl) -> None:
    job = json.dumps({"command": "true", "dedupe_key": "k"})
    assert "--if-exists" in assert_error(
        q.run("enqueue", job, "--if-exists", "update"), 2, usage=True
    )
    assert q.jobs() == []


def test_a_finished_job_frees_its_key(q: Queuectl) -> None:
    q.enqueue(id="old", command="true", dedupe_key="k")
    q.ok("cancel", "old")
    assert q.enqueue(id="new", command="true", dedupe_key="k") == "new"
    q.ok("add", "--id", "done", "--dedupe-key", "d", "--", "true")
    code = q.run("worker", "start", "--burst").returncode
    assert code == 0
    assert q.state("done") == "completed"
    assert q.ok("add", "--id", "done-again", "--dedupe-key", "d", "--", "true") == "done-again\n"


def test_bulk_enqueue_with_a_held_key_adds_nothing(q: Queuectl) -> None:
    q.enqueue(id="holder", command="true", dedupe_key="k")
    batch = lines(
        {"id": "x", "command": "true"},
        {"id": "y", "command": "true", "dedupe_key": "k"},
    )
    message = assert_error(q.run("enqueue", "-", input=batch), 2)
    assert message == "line 2: a job with dedupe key 'k' is already pending (holder)"
    assert [job["id"] for job in q.jobs()] == ["holder"]


def test_bulk_enqueue_with_a_key_twice_adds_nothing(q: Queuectl) -> None:
    batch = lines(
        {"id": "x", "command": "true", "dedupe_key": "k"},
        {"id": "y", "command": "true"},
        {"id": "z", "command": "true", "dedupe_key": "k"},
    )
    message = assert_error(q.run("enqueue", "-", input=batch), 2)
    assert message == "line 3: duplicate dedupe key 'k' (also on line 1)"
    assert q.jobs() == []


def test_bulk_enqueue_if_exists_skip_adds_the_rest(q: Queuectl) -> None:
    q.enqueue(id="holder", command="true", dedupe_key="k")
    batch = lines(
        {"id": "x", "command": "true"},
        {"id": "y", "command": "true", "dedupe_key": "k"},
        {"id": "z", "command": "true", "dedupe_key": "new"},
        {"id": "w", "command": "true", "dedupe_key": "new"},
    )
    out = q.ok("enqueue", "-", "--if-exists", "skip", input=batch)
    assert out.split() == ["x", "holder", "z", "z"]  # one id per line, in order
    assert [job["id"] for job in q.jobs()] == ["holder", "x", "z"]


def test_dlq_retry_of_a_job_whose_key_is_held_is_refused(q: Queuectl) -> None:
    q.enqueue(id="old", command="exit 1", dedupe_key="k", max_retries=1)
    assert q.run("worker", "start", "--burst").returncode == 0
    assert q.state("old") == "dead"
    q.enqueue(id="new", command="true", dedupe_key="k")
    message = assert_error(q.run("dlq", "retry", "old"), 1)
    assert (
        message == "job 'old' cannot be retried: a job with dedupe key 'k' is already pending (new)"
    )
    assert q.state("old") == "dead"
    assert q.ok("dlq", "retry", "--all") == (
        "Moved 0 jobs from the DLQ to pending.\n1 job stays in the DLQ: a job it depends on stays"
        " dead or cancelled, or another job holds its dedupe key (`queuectl dlq retry ID` says"
        " which).\n"
    )
    assert q.state("old") == "dead"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--dedupe-key", ""], "dedupe_key must not be empty"),
        (["--dedupe-key", "k" * 257], "at most 256 characters"),
    ],
)
def test_add_refuses_a_bad_key(q: Queuectl, args: list[str], fragment: str) -> None:
    assert fragment in assert_error(q.run("add", *args, "--", "true"), 2)
    assert q.jobs() == []


def test_list_and_show_json_carry_the_key(q: Queuectl) -> None:
    q.enqueue(id="keyed", command="true", dedupe_key="report:2026-01-31")
    q.enqueue(id="plain", command="true")
    listed = {job["id"]: job["dedupe_key"] for job in q.jobs()}
    assert listed == {"keyed": "report:2026-01-31", "plain": None}
    assert "dedupe key: report:2026-01-31" in q.ok("show", "keyed")
    assert "dedupe key" not in q.ok("show", "plain")


def test_racing_enqueues_of_one_key_create_exactly_one_job(q: Queuectl) -> None:
    job = json.dumps({"command": "sleep 1", "dedupe_key": "once"})
    racers = [
        subprocess.Popen(
            q.argv("enqueue", job, *(["--if-exists", "skip"] if n % 2 else [])),
            env=q.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(RACERS)
    ]
    results = [(racer.wait(timeout=60), *racer.communicate()) for racer in racers]
    (created,) = q.jobs()
    winner = created["id"]
    for n, (code, out, err) in enumerate(results):
        if code == 0:
            assert out == f"{winner}\n", (out, err)
        else:
            assert n % 2 == 0, "a racer with --if-exists skip was refused"
            assert (code, out) == (2, "")
            assert err == f"error: a job with dedupe key 'once' is already pending ({winner})\n"
