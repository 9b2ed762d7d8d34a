"""`queuectl why ID` through the real command (issue 8, item 5): each reason a job is not
running, in words and in `--json`. Workers are registered (and jobs claimed) straight in the
store, so each case is exact; no worker process runs here."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from queuectl.store import open_store
from queuectl.store.base import Store
from tests.conftest import Queuectl, assert_error, parse_time

pytestmark = pytest.mark.in_process


@contextlib.contextmanager
def store_of(q: Queuectl) -> Iterator[Store]:
    store = open_store(q.target)
    try:
        yield store
    finally:
        store.close()


def register(q: Queuectl, worker_id: str, queues: list[str] | None = None) -> None:
    with store_of(q) as store:
        store.register_worker(worker_id, "host-a", 4242, queues)


def claim(q: Queuectl, worker_id: str, queues: list[str] | None = None) -> str:
    with store_of(q) as store:
        job = store.claim_job(worker_id, queues)
        assert job is not None
        return job.id


def age_heartbeat(q: Queuectl, worker_id: str, seconds: float) -> None:
    """Make a worker's last heartbeat `seconds` old, as if it had gone silent then."""
    if q.target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(q.target, autocommit=True) as server:
            server.execute(
                "UPDATE queuectl.workers SET last_heartbeat = now() - %s * interval '1 second'"
                " WHERE id = %s",
                (seconds, worker_id),
            )
    else:
        with contextlib.closing(sqlite3.connect(q.target)) as database, database:
            database.execute(
                "UPDATE workers SET last_heartbeat = last_heartbeat - ? WHERE id = ?",
                (seconds, worker_id),
            )


def beat(q: Queuectl, worker_id: str) -> None:
    with store_of(q) as store:
        store.heartbeat(worker_id, None)


def why(q: Queuectl, job_id: str, alive: str | None = None) -> tuple[str, dict[str, Any]]:
    """The text and the JSON explanation of one job; worker `alive` beats before each."""
    if alive:
        beat(q, alive)
    text = q.ok("why", job_id)
    if alive:
        beat(q, alive)
    return text, json.loads(q.ok("why", job_id, "--json"))


def reason(explained: dict[str, Any], code: str) -> dict[str, Any]:
    found = [r for r in explained["reasons"] if r["code"] == code]
    assert found, f"no {code} reason in {explained['reasons']}"
    return found[0]  # type: ignore[no-any-return]


def codes(explained: dict[str, Any]) -> list[str]:
    return [r["code"] for r in explained["reasons"]]


def test_why_unknown_job_exits_1(q_shared: Queuectl) -> None:
    assert "no job with id 'nope'" in assert_error(q_shared.run("why", "nope"), 1)
    assert_error(q_shared.run("why", "nope", "--json"), 1)


def test_why_runnable_job_says_a_worker_should_pick_it_up(q: Queuectl) -> None:
    register(q, "w-idle")
    q.ok("add", "--id", "ready", "--", "true")
    text, explained = why(q, "ready")
    assert text.startswith("ready: pending and runnable now; a worker should pick it up")
    assert explained["runnable"] is True
    assert codes(explained) == ["runnable"]
    assert explained["state"] == "pending"


def test_why_without_any_worker(q: Queuectl) -> None:
    q.ok("add", "--id", "lonely", "--", "true")
    text, explained = why(q, "lonely")
    assert "no worker is active: start one with `queuectl worker start`" in text
    assert (explained["runnable"], codes(explained)) == (False, ["no_worker"])


def test_why_no_worker_serves_its_queue(q: Queuectl) -> None:
    register(q, "w-other", ["other", "more"])
    q.ok("add", "--id", "here", "--queue", "reports", "--", "true")
    text, explained = why(q, "here")
    assert "no active worker serves queue reports (they serve only more, other)" in text
    assert reason(explained, "no_worker")["queue"] == "reports"


def test_why_scheduled_for_later_says_when(q: Queuectl) -> None:
    register(q, "w1")
    q.ok("add", "--id", "later", "--delay", "2h", "--", "true")
    text, explained = why(q, "later")
    run_at = q.job("later")["run_at"]
    assert re.search(rf"scheduled to start at {re.escape(run_at)} \(in (1h 59m|2h 0m)\)", text)
    assert reason(explained, "scheduled")["run_at"] == run_at
    assert codes(explained) == ["scheduled"]


def test_why_waiting_for_a_retry_says_when_and_after_which_failure(q: Queuectl) -> None:
    q.config("backoff-base", "1000")
    q.ok("add", "--id", "flaky", "--max-retries", "3", "--", "exit 4")
    code, err = q.finish(q.start_workers("--burst"))
    assert code == 0, err
    job = q.job("flaky")
    assert job["state"] == "failed"
    text, explained = why(q, "flaky")
    assert f"waiting to retry at {job['run_at']} (in 16m" in text
    assert "attempt 1 of 3 failed at " in text
    assert "exited with code 4" in text
    retry = reason(explained, "retry_wait")
    assert (retry["attempt"], retry["last_error"]) == (1, "exited with code 4")


def test_why_waiting_on_dependencies_names_them_with_their_states(q: Queuectl) -> None:
    register(q, "w1", ["build"])
    q.ok("add", "--id", "compile", "--queue", "build", "--", "true")
    q.ok("add", "--id", "lint", "--queue", "build", "--", "true")
    q.ok("add", "--id", "package", "--queue", "build", "--after", "compile,lint", "--", "true")
    assert claim(q, "w1", ["build"]) == "compile"
    text, explained = why(q, "package")
    assert "waiting on 2 of 2 dependencies: compile (processing), lint (pending)" in text
    assert reason(explained, "dependencies")["dependencies"] == [
        {"id": "compile", "state": "processing"},
        {"id": "lint", "state": "pending"},
    ]
    assert codes(explained) == ["dependencies"]


def test_why_queue_paused(q: Queuectl) -> None:
    register(q, "w1")
    q.ok("add", "--id", "held", "--queue", "mail", "--", "true")
    q.ok("queue", "pause", "mail")
    text, explained = why(q, "held")
    assert "queue mail is paused: `queuectl queue resume mail` resumes it" in text
    assert codes(explained) == ["queue_paused"]


def test_why_queue_at_its_limit_names_who_holds_the_slots(q: Queuectl) -> None:
    register(q, "w-busy")
    q.ok("queue", "limit", "gpu", "1")
    q.ok("add", "--id", "train", "--queue", "gpu", "--", "sleep 60")
    q.ok("add", "--id", "eval", "--queue", "gpu", "--", "true")
    assert claim(q, "w-busy") == "train"
    text, explained = why(q, "eval")
    assert "queue gpu is at its limit of 1 running job, held by train on w-busy" in text
    full = reason(explained, "queue_full")
    assert full["held_by"] == [{"job_id": "train", "worker_id": "w-busy"}]
    assert full["max_running"] == 1


def test_why_queue_out_of_starts_names_its_rate_and_the_next_slot(q: Queuectl) -> None:
    register(q, "w-busy")
    q.ok("queue", "rate", "api", "2/h")
    for job_id in ("call-1", "call-2", "call-3"):
        q.ok("add", "--id", job_id, "--queue", "api", "--", "true")
    assert [claim(q, "w-busy") for _ in range(2)] == ["call-1", "call-2"]
    first_start = parse_time(q.json("show", "call-1")["started_at"])
    text, explained = why(q, "call-3", alive="w-busy")
    assert re.search(
        r"queue api has started as many jobs as its rate limit allows \(2/h\): "
        r"the next slot opens at \S+ \(in (59m \d+s|1h 0m)\)",
        text,
    ), text
    assert codes(explained) == ["queue_rate"]
    spent = reason(explained, "queue_rate")
    assert (spent["queue"], spent["rate"]) == ("api", "2/h")
    # The oldest start in the window, one period on.
    assert parse_time(spent["next_slot_at"]) == first_start + timedelta(hours=1)
    q.ok("queue", "rate", "api", "3/h")
    _, explained = why(q, "call-3", alive="w-busy")
    assert codes(explained) == ["runnable"]


def test_why_several_reasons_are_all_given(q: Queuectl) -> None:
    q.ok("add", "--id", "first", "--", "true")
    q.ok("add", "--id", "second", "--delay", "1h", "--after", "first", "--", "true")
    q.ok("queue", "pause", "default")
    text, explained = why(q, "second")
    assert text.startswith("second is pending and not running because:\n  - ")
    assert codes(explained) == ["scheduled", "dependencies", "queue_paused", "no_worker"]


def test_why_running_on_a_live_worker(q: Queuectl) -> None:
    register(q, "w-live")
    q.ok("add", "--id", "busy", "--", "sleep 60")
    claim(q, "w-live")
    text, explained = why(q, "busy", alive="w-live")
    started = q.job("busy")["started_at"]
    assert text.startswith(f"busy: running on worker w-live on host-a (pid 4242) since {started}")
    assert codes(explained) == ["running"]
    assert reason(explained, "running")["worker_id"] == "w-live"


def test_why_held_by_a_stale_worker_says_since_when_and_when_it_is_rescued(q: Queuectl) -> None:
    register(q, "w-silent")
    q.ok("add", "--id", "stuck", "--", "sleep 60")
    claim(q, "w-silent")
    age_heartbeat(q, "w-silent", 12)  # lease-timeout is 30 s: rescued in about 18 s
    text, explained = why(q, "stuck")
    stale = reason(explained, "stale_worker")
    beat, rescue = parse_time(stale["last_heartbeat"]), parse_time(stale["rescue_at"])
    assert rescue - beat == timedelta(seconds=30)
    last = re.escape(stale["last_heartbeat"])
    stale_text = rf"held by worker w-silent, whose heartbeat is stale: the last came at {last}"
    assert re.search(stale_text + r" \(1\ds ago\)", text), text
    assert f"unless it beats again, the job is rescued at {stale['rescue_at']} (in 1" in text
    # Past the lease, and `why` changes nothing: it says who will rescue it.
    age_heartbeat(q, "w-silent", 40)
    text, _ = why(q, "stuck")
    assert "its lease ran out at " in text
    assert "the next worker or command to look for lost runs rescues it" in text
    assert q.state("stuck") == "failed"  # `show` (as every other command) rescues it


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("completed", "done: finished: completed at "),
        ("dead", "done: finished: dead (in the DLQ) since "),
        ("cancelled", "done: finished: cancelled at "),
    ],
)
def test_why_finished_job_says_how(q: Queuectl, setup: str, expected: str) -> None:
    command = "true" if setup == "completed" else "exit 9"
    delay = ["--delay", "1h"] if setup == "cancelled" else []
    q.ok("add", "--id", "done", "--max-retries", "1", *delay, "--", command)
    if setup == "cancelled":
        q.ok("cancel", "done")
    else:
        code, err = q.finish(q.start_workers("--burst"))
        assert code == 0, err
    text, explained = why(q, "done")
    assert text.startswith(expected)
    assert codes(explained) == ["finished"]
    assert explained["state"] == setup
    if setup == "dead":
        assert "after 1 attempt: exited with code 9" in text
        assert "`queuectl dlq retry done`" in text


def test_why_dependent_that_died_with_its_dependency(q: Queuectl) -> None:
    q.ok("add", "--id", "base", "--delay", "1h", "--", "true")
    q.ok("add", "--id", "top", "--after", "base", "--", "true")
    q.ok("cancel", "base")
    text, _ = why(q, "top")
    assert "without running: dependency base ended cancelled" in text
