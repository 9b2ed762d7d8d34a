"""Exit-code policies and backoff jitter through the real command: `add --retry-on-exit /
--fatal-on-exit`, the enqueue JSON fields, their display, and `config backoff-jitter`
(issue 8, item 1). Workers running them: tests/integration/test_policy_workers.py."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import Queuectl, assert_error

pytestmark = pytest.mark.in_process


def test_add_sets_the_exit_policy_shown_by_show_and_list(q: Queuectl) -> None:
    job_id = q.ok(
        "add", "--retry-on-exit", "111,75", "--fatal-on-exit", "2,126", "--", "./sync.sh"
    ).strip()
    job = q.job(job_id)
    assert (job["retry_on_exit"], job["fatal_on_exit"]) == ([75, 111], [2, 126])
    (listed,) = q.jobs()
    assert (listed["retry_on_exit"], listed["fatal_on_exit"]) == ([75, 111], [2, 126])
    text = q.ok("show", job_id)
    assert re.search(r"^retry on:\s+exit 75, 111$", text, re.M)
    assert re.search(r"^fatal on:\s+exit 2, 126$", text, re.M)


def test_a_job_without_a_policy_shows_empty_lists(q: Queuectl) -> None:
    job_id = q.ok("add", "--", "true").strip()
    job = q.job(job_id)
    assert (job["retry_on_exit"], job["fatal_on_exit"], job["dedupe_key"]) == ([], [], None)
    text = q.ok("show", job_id)
    assert "retry on:" not in text
    assert "fatal on:" not in text


def test_enqueue_json_takes_the_policy_fields(q: Queuectl) -> None:
    out = q.ok(
        "enqueue",
        json.dumps({"id": "p", "command": "true", "retry_on_exit": [75], "fatal_on_exit": [2]}),
        "--json",
    )
    created = json.loads(out)
    assert (created["retry_on_exit"], created["fatal_on_exit"]) == ([75], [2])
    batch = (
        '{"id": "b1", "command": "true", "fatal_on_exit": [1]}\n{"id": "b2", "command": "true"}\n'
    )
    assert q.ok("enqueue", "-", input=batch).split() == ["b1", "b2"]
    assert [job["fatal_on_exit"] for job in q.jobs()] == [[2], [1], []]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--retry-on-exit", "75,x"], "--retry-on-exit '75,x': expected exit codes"),
        (["--retry-on-exit", ""], "--retry-on-exit '': expected exit codes"),
        (["--fatal-on-exit", "256"], "--fatal-on-exit: exit code 256 is outside 0-255"),
        (["--fatal-on-exit", "-2"], "--fatal-on-exit '-2'"),
        (
            ["--retry-on-exit", "75,2", "--fatal-on-exit", "2"],
            "exit code 2 is in both retry_on_exit and fatal_on_exit",
        ),
    ],
)
def test_add_refuses_a_bad_policy(q: Queuectl, args: list[str], fragment: str) -> None:
    assert fragment in assert_error(q.run("add", *args, "--", "true"), 2)
    assert q.jobs() == []


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"retry_on_exit": 75}, "retry_on_exit must be an array of exit codes"),
        ({"fatal_on_exit": [2, "x"]}, "fatal_on_exit: exit codes are integers"),
        ({"fatal_on_exit": [300]}, "exit code 300 is outside 0-255"),
        ({"retry_on_exit": [2], "fatal_on_exit": [2]}, "in both retry_on_exit and fatal_on_exit"),
    ],
)
def test_enqueue_refuses_a_bad_policy(
    q_shared: Queuectl, fields: dict[str, object], fragment: str
) -> None:
    job = json.dumps({"command": "true", **fields})
    assert fragment in assert_error(q_shared.run("enqueue", job), 2)
    batch = '{"id": "fine", "command": "true"}\n' + job + "\n"
    assert assert_error(q_shared.run("enqueue", "-", input=batch), 2).startswith("line 2: ")
    assert q_shared.jobs() == []


def test_backoff_jitter_is_a_config_key(q: Queuectl) -> None:
    assert q.ok("config", "get", "backoff-jitter") == "none\n"
    q.config("backoff-jitter", "full")
    assert q.ok("config", "get", "backoff-jitter") == "full\n"
    assert re.search(r"^backoff-jitter\s+full\s+#", q.ok("config", "list"), re.M)
    assert q.json("config", "list")["backoff-jitter"] == "full"
    message = assert_error(q.run("config", "set", "backoff-jitter", "half"), 2)
    assert message == "invalid value for backoff-jitter: 'half' is not one of none, full"
    assert q.ok("config", "get", "backoff-jitter") == "full\n"
