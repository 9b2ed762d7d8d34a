"""Dependencies with real worker processes (issue 8, item 2): a chain runs in order however
many workers wait for it, and a dependency that dies takes its dependents with it."""

from __future__ import annotations

import signal

import pytest

from tests.conftest import Queuectl, parse_time, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.in_process]


def test_chain_runs_in_order_across_several_workers(q: Queuectl) -> None:
    """c depends on b depends on a; added in reverse priority so that, without the
    dependencies, idle workers would start c and b first."""
    q.ok("add", "--id", "a", "--", "sleep 0.3; echo a")
    q.ok("add", "--id", "b", "--priority", "5", "--after", "a", "--", "sleep 0.3; echo b")
    q.ok("add", "--id", "c", "--priority", "9", "--after", "b", "--", "echo c")
    q.ok("add", "--id", "free", "--", "echo free")
    proc = q.start_workers("--count", "3")
    try:
        done = q.wait_for_state("c", "completed", timeout=60)
        a, b = q.job("a"), q.job("b")
        assert (a["state"], b["state"]) == ("completed", "completed")
        assert parse_time(b["started_at"]) >= parse_time(a["finished_at"])
        assert parse_time(done["started_at"]) >= parse_time(b["finished_at"])
        assert done["output"] == "c\n"
        assert q.wait_for_state("free", "completed")["attempts"] == 1
    finally:
        q.signal_group(proc, signal.SIGTERM)
        code, err = q.finish(proc)
    assert code == 0, err


def test_failing_dependency_kills_its_dependents_while_workers_run(q: Queuectl) -> None:
    q.config("backoff-base", "1")
    q.ok("add", "--id", "fetch", "--max-retries", "2", "--", "echo no network; exit 7")
    q.ok("add", "--id", "parse", "--after", "fetch", "--", "echo parse")
    q.ok("add", "--id", "report", "--after", "parse,fetch", "--", "echo report")
    q.ok("add", "--id", "unrelated", "--", "echo fine")
    proc = q.start_workers("--count", "2")
    try:
        q.wait_for_state("fetch", "dead", timeout=60)
        wait_until(lambda: q.state("report") == "dead", timeout=10, message="report to be dead")
        assert q.job("fetch")["attempts"] == 2
        parse, report = q.job("parse"), q.job("report")
        assert (parse["state"], parse["attempts"], parse["history"]) == ("dead", 0, [])
        assert parse["last_error"] == "dependency fetch ended dead"
        assert report["last_error"] in (
            "dependency fetch ended dead",
            "dependency parse ended dead",
        )
        assert report["history"] == []
        assert q.wait_for_state("unrelated", "completed")["output"] == "fine\n"
    finally:
        q.signal_group(proc, signal.SIGTERM)
        code, err = q.finish(proc)
    assert code == 0, err
