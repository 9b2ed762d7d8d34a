"""core.why without a store, and the dependency checks of enqueue input (issue 8)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from queuectl.core.errors import InvalidJobSpec
from queuectl.core.fields import split_after
from queuectl.core.models import Job, JobState, WorkerInfo
from queuectl.core.rates import Rate
from queuectl.core.settings import Settings
from queuectl.core.spec import parse_job_json, parse_job_lines
from queuectl.core.why import JobFacts, QueueFacts, explain, rate_facts

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SETTINGS = Settings()


def job(**fields: object) -> Job:
    base = Job(
        id="j",
        command="true",
        state=JobState.PENDING,
        queue="default",
        priority=0,
        attempts=0,
        max_retries=3,
        timeout=300.0,
        created_at=NOW - timedelta(minutes=1),
        updated_at=NOW - timedelta(minutes=1),
        scheduled_at=None,
        run_at=NOW - timedelta(minutes=1),
        started_at=None,
        finished_at=None,
        exit_code=None,
        last_error=None,
        output="",
        locked_by=None,
        locked_at=None,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def worker(worker_id: str = "w1", **fields: object) -> WorkerInfo:
    base = WorkerInfo(worker_id, "host", 7, "running", NOW - timedelta(hours=1), NOW, None)
    return replace(base, **fields)  # type: ignore[arg-type]


def facts(the_job: Job, **fields: object) -> JobFacts:
    base = JobFacts(
        job=the_job,
        now=NOW,
        lease_timeout=30.0,
        queue=QueueFacts(the_job.queue, False, None, ()),
        workers=(worker(),),
        holder=None,
        dependencies=(),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def test_runnable_when_nothing_blocks_it() -> None:
    explained = explain(facts(job()))
    assert explained.runnable
    assert explained.reasons[0].code == "runnable"
    assert "(1 active worker serves its queue)" in explained.summary


def test_a_stopping_worker_does_not_count_as_serving() -> None:
    explained = explain(facts(job(), workers=(worker(status="stopping"),)))
    assert [r.code for r in explained.reasons] == ["no_worker"]


def test_failed_job_past_its_run_at_is_due() -> None:
    explained = explain(facts(job(state=JobState.FAILED, attempts=1)))
    assert explained.runnable
    assert explained.summary.startswith("its retry is due")


def test_completed_dependencies_do_not_block() -> None:
    deps = (("a", JobState.COMPLETED), ("b", JobState.FAILED), ("gone", None))
    explained = explain(facts(job(depends_on=("a", "b", "gone")), dependencies=deps))
    (reason,) = explained.reasons
    assert reason.message == "waiting on 2 of 3 dependencies: b (failed), gone (no longer exists)"


def test_fresh_heartbeat_is_running_and_stale_one_is_not() -> None:
    held = job(state=JobState.PROCESSING, locked_by="w1", started_at=NOW - timedelta(seconds=9))
    fresh = explain(facts(held, holder=worker(last_heartbeat=NOW - timedelta(seconds=2))))
    assert fresh.reasons[0].code == "running"
    assert "(9s ago)" in fresh.summary
    stale = explain(facts(held, holder=worker(last_heartbeat=NOW - timedelta(seconds=10))))
    assert stale.reasons[0].code == "stale_worker"
    assert "rescued at 2026-03-01T12:00:20.000Z (in 20s)" in stale.summary


def test_stopped_holder_is_stale_at_once() -> None:
    held = job(state=JobState.PROCESSING, locked_by="w1", started_at=NOW)
    explained = explain(facts(held, holder=worker(status="stopped")))
    assert "(it is marked stopped)" in explained.summary


def test_queue_limit_counts_its_holders() -> None:
    queue = QueueFacts("default", False, 2, (("x", "w1"),))
    assert explain(facts(job(), queue=queue)).runnable
    full = QueueFacts("default", False, 1, (("x", "w1"),))
    (reason,) = explain(facts(job(), queue=full)).reasons
    assert reason.message.endswith("held by x on w1")


def test_a_rate_limit_blocks_until_its_next_slot_opens() -> None:
    def starts(queue: str, nth: int) -> datetime | None:
        return NOW - timedelta(seconds=20) if nth == 2 else None

    rate, opens_at = rate_facts("api", Rate(2, 60), starts)
    assert opens_at == NOW + timedelta(seconds=40)  # the 2nd newest start, a minute on
    spent = QueueFacts("api", False, None, (), rate, opens_at)
    (reason,) = explain(facts(job(), queue=spent)).reasons
    assert reason.code == "queue_rate"
    assert reason.message.endswith(
        "(2/m): the next slot opens at 2026-03-01T12:00:40.000Z (in 40s)"
    )
    # Once the window has moved past that start, nothing holds the job back.
    assert explain(facts(job(), queue=spent, now=opens_at)).runnable
    # Fewer starts than the rate in the log: a slot is free.
    assert rate_facts("api", Rate(3, 60), starts) == (Rate(3, 60), None)
    assert rate_facts("api", None, starts) == (None, None)


def test_depends_on_is_parsed_and_repeats_dropped() -> None:
    parsed = parse_job_json(json.dumps({"command": "x", "depends_on": ["a", "b", "a"]}), SETTINGS)
    assert parsed.depends_on == ("a", "b")
    assert parse_job_json('{"command": "x", "depends_on": null}', SETTINGS).depends_on == ()
    assert split_after(["a,b", " c ", ",,"]) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([{"id": "a", "depends_on": ["a"]}], "line 1: job 'a' cannot depend on itself"),
        (
            [{"id": "a", "depends_on": ["b"]}, {"id": "b", "depends_on": ["a"]}],
            "line 1: dependency cycle: a -> b -> a",
        ),
        (
            [
                {"id": "ok"},
                {"id": "a", "depends_on": ["ok", "b"]},
                {"id": "b", "depends_on": ["a"]},
            ],
            "line 2: dependency cycle: a -> b -> a",
        ),
    ],
)
def test_cycles_within_a_batch_are_refused(lines: list[dict[str, object]], message: str) -> None:
    text = [json.dumps({"command": "x", **line}) for line in lines]
    with pytest.raises(InvalidJobSpec) as caught:
        parse_job_lines(text, SETTINGS)
    assert caught.value.message == message


def test_a_long_chain_in_one_batch_is_no_cycle() -> None:
    """Longer than Python's recursion limit: the walk must not recurse."""
    text = [
        json.dumps({"id": f"j{n}", "command": "x", "depends_on": [f"j{n - 1}"] if n else []})
        for n in range(5000)
    ]
    assert len(parse_job_lines(text, SETTINGS)) == 5000
