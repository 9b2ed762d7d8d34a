"""`enqueue JSON`, `enqueue -` and `add`, end to end through the real command (SPEC 2, 2.1)."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import timedelta
from subprocess import CompletedProcess

import pytest

from tests.conftest import TIMESTAMP, Queuectl, assert_error, parse_time

pytestmark = pytest.mark.in_process

JOB_FIELDS = {
    "id",
    "command",
    "state",
    "queue",
    "priority",
    "attempts",
    "max_retries",
    "timeout",
    "created_at",
    "updated_at",
    "scheduled_at",
    "run_at",
    "started_at",
    "finished_at",
    "exit_code",
    "last_error",
    "output",
    "locked_by",
    "locked_at",
}
TIME_FIELDS = ("created_at", "updated_at", "scheduled_at", "run_at", "started_at", "finished_at")
URL_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{6,22}")

# (case id, enqueue argument, a word the one-line error must contain)
BAD_JOBS = [
    ("invalid-json", '{"command": "echo hi"', "JSON"),
    ("invalid-json-trailing", '{"command": "echo hi"} x', "JSON"),
    ("duplicate-key", '{"command": "a", "command": "b"}', "duplicate"),
    ("array", '["echo hi"]', "object"),
    ("string", '"echo hi"', "object"),
    ("number", "42", "object"),
    ("null", "null", "object"),
    ("missing-command", '{"id": "job1"}', "command"),
    ("empty-command", '{"command": ""}', "command"),
    ("blank-command", '{"command": " \\t\\n "}', "command"),
    ("nul-in-command", '{"command": "echo a\\u0000b"}', "NUL"),
    ("surrogate-in-command", '{"command": "echo \\udcff"}', "command"),
    ("command-number", '{"command": 5}', "command"),
    ("command-null", '{"command": null}', "command"),
    ("command-array", '{"command": ["echo", "hi"]}', "command"),
    ("id-number", '{"command": "true", "id": 7}', "id"),
    ("max_retries-string", '{"command": "true", "max_retries": "3"}', "max_retries"),
    ("max_retries-fraction", '{"command": "true", "max_retries": 1.5}', "max_retries"),
    ("max_retries-boolean", '{"command": "true", "max_retries": true}', "max_retries"),
    ("max_retries-null", '{"command": "true", "max_retries": null}', "max_retries"),
    ("priority-string", '{"command": "true", "priority": "high"}', "priority"),
    ("priority-fraction", '{"command": "true", "priority": 0.5}', "priority"),
    ("priority-boolean", '{"command": "true", "priority": false}', "priority"),
    ("queue-number", '{"command": "true", "queue": 1}', "queue"),
    ("queue-null", '{"command": "true", "queue": null}', "queue"),
    ("timeout-string", '{"command": "true", "timeout": "10"}', "timeout"),
    ("timeout-boolean", '{"command": "true", "timeout": true}', "timeout"),
    ("scheduled_at-number", '{"command": "true", "scheduled_at": 1767225600}', "scheduled_at"),
    ("unknown-key", '{"command": "true", "retries": 3}', "retries"),
    ("max_retries-negative", '{"command": "true", "max_retries": -1}', "max_retries"),
    ("max_retries-over-1000", '{"command": "true", "max_retries": 1001}', "max_retries"),
    ("priority-over-int32", '{"command": "true", "priority": 2147483648}', "priority"),
    ("priority-under-int32", '{"command": "true", "priority": -2147483649}', "priority"),
    ("queue-empty", '{"command": "true", "queue": ""}', "queue"),
    ("queue-space", '{"command": "true", "queue": "my queue"}', "queue"),
    ("queue-slash", '{"command": "true", "queue": "a/b"}', "queue"),
    ("timeout-zero", '{"command": "true", "timeout": 0}', "timeout"),
    ("timeout-negative", '{"command": "true", "timeout": -5}', "timeout"),
    ("timeout-nan", '{"command": "true", "timeout": NaN}', "NaN"),
    ("timeout-infinity", '{"command": "true", "timeout": Infinity}', "Infinity"),
    ("timeout-overflow", '{"command": "true", "timeout": 1e999}', "timeout"),
    ("scheduled_at-words", '{"command": "true", "scheduled_at": "tomorrow"}', "tomorrow"),
    ("scheduled_at-month-13", '{"command": "true", "scheduled_at": "2030-13-01T00:00"}', "time"),
    ("scheduled_at-empty", '{"command": "true", "scheduled_at": ""}', "time"),
    (
        "scheduled_at-out-of-range",
        '{"command": "true", "scheduled_at": "0001-01-01T00:00:00+01:00"}',
        "time",
    ),
    ("id-slash", '{"command": "true", "id": "a/b"}', "id"),
    ("id-space", '{"command": "true", "id": "a b"}', "id"),
    ("id-empty", '{"command": "true", "id": ""}', "id"),
    ("id-non-ascii", '{"command": "true", "id": "caf\\u00e9"}', "id"),
    ("id-too-long", json.dumps({"command": "true", "id": "x" * 129}), "id"),
    ("id-duplicate", '{"command": "true", "id": "taken"}', "taken"),
]


@pytest.fixture
def seeded(q: Queuectl) -> Queuectl:
    """A store holding one job, `taken`."""
    q.enqueue(id="taken", command="true")
    return q


@pytest.fixture
def refusing(q_shared: Queuectl) -> Queuectl:
    """Like `seeded`, but one store for every case of the module: each must change nothing."""
    if q_shared.job_count() == 0:
        q_shared.enqueue(id="taken", command="true")
    return q_shared


# -- enqueue JSON -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "word"), [case[1:] for case in BAD_JOBS], ids=[case[0] for case in BAD_JOBS]
)
def test_enqueue_refuses_bad_input_and_writes_nothing(
    refusing: Queuectl, text: str, word: str
) -> None:
    message = assert_error(refusing.run("enqueue", text), 2)
    assert word.lower() in message.lower()
    assert [job["id"] for job in refusing.jobs()] == ["taken"]


def test_enqueue_prints_the_given_id(q: Queuectl) -> None:
    assert q.ok("enqueue", '{"id": "job1", "command": "echo hello"}') == "job1\n"
    job = q.job("job1")
    assert (job["command"], job["state"]) == ("echo hello", "pending")


def test_enqueue_accepts_every_id_character(q: Queuectl) -> None:
    job_id = "Az09._:@-" + "x" * 119
    assert len(job_id) == 128
    assert q.enqueue(id=job_id, command="true") == job_id
    assert q.job(job_id)["id"] == job_id


def test_enqueue_generates_short_url_safe_unique_ids(q: Queuectl) -> None:
    lines = "".join(json.dumps({"command": f"echo {n}"}) + "\n" for n in range(50))
    ids = q.ok("enqueue", "-", input=lines).split()
    assert len(set(ids)) == 50
    assert all(URL_SAFE_ID.fullmatch(job_id) for job_id in ids), ids
    assert q.enqueue(command="true") not in ids


def test_enqueue_json_prints_the_whole_job(q: Queuectl) -> None:
    job = json.loads(q.ok("enqueue", "--json", '{"id": "j", "command": "echo hi"}'))
    assert set(job) >= JOB_FIELDS  # every SPEC 2 field; later releases may add more
    spec_fields = {key: job[key] for key in JOB_FIELDS}
    assert spec_fields | {"created_at": None, "updated_at": None, "run_at": None} == {
        "id": "j",
        "command": "echo hi",
        "state": "pending",
        "queue": "default",
        "priority": 0,
        "attempts": 0,
        "max_retries": 3,
        "timeout": 300,
        "created_at": None,
        "updated_at": None,
        "scheduled_at": None,
        "run_at": None,
        "started_at": None,
        "finished_at": None,
        "exit_code": None,
        "last_error": None,
        "output": "",
        "locked_by": None,
        "locked_at": None,
    }
    assert job["created_at"] == job["updated_at"] == job["run_at"]
    assert TIMESTAMP.fullmatch(job["created_at"])
    shown_only = {"history": None, "hook_deliveries": None}
    assert q.job("j") | shown_only == job | shown_only


def test_enqueue_json_keeps_every_given_field(q: Queuectl) -> None:
    text = json.dumps(
        {
            "id": "report-1",
            "command": "make report",
            "max_retries": 0,
            "scheduled_at": "2030-01-31T09:30:00Z",
            "priority": -7,
            "queue": "reports.v2_x-y",
            "timeout": 2.5,
        }
    )
    job = json.loads(q.ok("enqueue", text, "--json"))
    assert job["id"] == "report-1"
    assert job["max_retries"] == 0
    assert job["priority"] == -7
    assert job["queue"] == "reports.v2_x-y"
    assert job["timeout"] == 2.5
    assert job["scheduled_at"] == job["run_at"] == "2030-01-31T09:30:00.000Z"


@pytest.mark.parametrize("priority", [-(2**31), 2**31 - 1])
def test_enqueue_accepts_the_32_bit_priority_range(q: Queuectl, priority: int) -> None:
    job_id = q.enqueue(command="true", priority=priority)
    assert q.job(job_id)["priority"] == priority


def test_enqueue_accepts_max_retries_up_to_1000(q: Queuectl) -> None:
    job_id = q.enqueue(command="true", max_retries=1000)
    assert q.job(job_id)["max_retries"] == 1000


def test_enqueue_timestamps_are_utc_with_milliseconds(q: Queuectl) -> None:
    job = json.loads(q.ok("enqueue", '{"command": "true"}', "--json"))
    for field in TIME_FIELDS:
        if job[field] is not None:
            assert TIMESTAMP.fullmatch(job[field]), (field, job[field])


@pytest.mark.parametrize(
    ("tz", "given", "expected"),
    [
        ("IST-5:30", "2030-01-01T10:00:00", "2030-01-01T04:30:00.000Z"),
        ("EST5", "2030-01-01T10:00:00", "2030-01-01T15:00:00.000Z"),
        ("EST5", "2030-01-01T10:00:00.250", "2030-01-01T15:00:00.250Z"),
        ("EST5", "2030-01-01T10:00:00Z", "2030-01-01T10:00:00.000Z"),
        ("EST5", "2030-01-01T10:00:00+02:00", "2030-01-01T08:00:00.000Z"),
        ("IST-5:30", "2030-06-15 12:00", "2030-06-15T06:30:00.000Z"),
    ],
)
def test_enqueue_scheduled_at_without_offset_is_local_time(
    q: Queuectl, tz: str, given: str, expected: str
) -> None:
    q.env["TZ"] = tz
    job = json.loads(
        q.ok("enqueue", json.dumps({"command": "true", "scheduled_at": given}), "--json")
    )
    assert job["scheduled_at"] == job["run_at"] == expected


def test_enqueue_defaults_come_from_config(q: Queuectl) -> None:
    q.config("max-retries", "5")
    q.config("job-timeout", "42")
    job = json.loads(q.ok("enqueue", '{"command": "true"}', "--json"))
    assert (job["max_retries"], job["timeout"]) == (5, 42)
    explicit = json.loads(q.ok("enqueue", '{"command": "true", "max_retries": 1}', "--json"))
    assert explicit["max_retries"] == 1


# -- enqueue - (JSON lines on stdin) ----------------------------------------------------


def test_enqueue_lines_prints_each_id_in_order(q: Queuectl) -> None:
    lines = '{"id": "a", "command": "true"}\n{"command": "true"}\n{"id": "c", "command": "true"}\n'
    ids = q.ok("enqueue", "-", input=lines).splitlines()
    assert len(ids) == 3
    assert (ids[0], ids[2]) == ("a", "c")
    assert [job["id"] for job in q.jobs()] == ids


def test_enqueue_lines_skips_blank_lines(q: Queuectl) -> None:
    lines = '\n{"id": "a", "command": "true"}\n   \n\t\n{"id": "b", "command": "true"}\n\n'
    assert q.ok("enqueue", "-", input=lines) == "a\nb\n"


def test_enqueue_lines_json_prints_an_array(q: Queuectl) -> None:
    lines = '{"id": "a", "command": "true"}\n{"id": "b", "command": "false"}\n'
    jobs = json.loads(q.ok("enqueue", "-", "--json", input=lines))
    assert [(job["id"], job["command"]) for job in jobs] == [("a", "true"), ("b", "false")]
    assert all(set(job) >= JOB_FIELDS for job in jobs)


@pytest.mark.parametrize(
    ("lines", "line"),
    [
        ('{"id": "a", "command": "true"}\n\n{"command": 5}\n', 3),
        ('{"id": "a", "command": "true"}\n{"command": "x"\n', 2),
        ('\n\n\n{"id": "a", "command": "true"}\n   \n[]\n', 6),
        ('{"command": "true", "nope": 1}\n', 1),
        ('{"id": "a", "command": "true"}\n{"id": "b", "command": "true", "timeout": 0}\n', 2),
    ],
    ids=["wrong-type", "invalid-json", "blank-lines-counted", "first-line", "bad-timeout"],
)
def test_enqueue_lines_is_all_or_nothing_and_names_the_line(
    seeded: Queuectl, lines: str, line: int
) -> None:
    message = assert_error(seeded.run("enqueue", "-", input=lines), 2)
    assert re.search(rf"\bline {line}\b", message), message
    assert seeded.job_count() == 1


def test_enqueue_lines_refuses_an_id_repeated_in_the_batch(seeded: Queuectl) -> None:
    lines = '{"id": "a", "command": "true"}\n\n{"id": "b", "command": "true"}\n'
    lines += '{"id": "a", "command": "false"}\n'
    message = assert_error(seeded.run("enqueue", "-", input=lines), 2)
    assert "line 4" in message
    assert "'a'" in message
    assert seeded.job_count() == 1


def test_enqueue_lines_refuses_an_id_already_in_the_store(seeded: Queuectl) -> None:
    lines = '{"id": "a", "command": "true"}\n\n{"id": "taken", "command": "true"}\n'
    message = assert_error(seeded.run("enqueue", "-", input=lines), 2)
    assert "taken" in message
    assert "line 3" in message
    assert [job["id"] for job in seeded.jobs()] == ["taken"]


def run_bytes(q: Queuectl, *args: str | bytes, input: bytes = b"") -> CompletedProcess[str]:
    """Run queuectl with raw bytes in argv or on stdin, as a shell can pass them."""
    raw = subprocess.run(
        [*q.argv(), *args], input=input, capture_output=True, env=q.env, timeout=60, check=False
    )
    return CompletedProcess(
        raw.args, raw.returncode, raw.stdout.decode(errors="replace"), raw.stderr.decode()
    )


def test_enqueue_lines_refuses_input_that_is_not_utf8(seeded: Queuectl) -> None:
    result = run_bytes(
        seeded, "enqueue", "-", input=b'{"command": "true"}\n{"command": "echo \xff"}\n'
    )
    assert "line 2" in assert_error(result, 2)
    assert seeded.job_count() == 1


def test_enqueue_refuses_an_argument_that_is_not_utf8(seeded: Queuectl) -> None:
    assert_error(run_bytes(seeded, "enqueue", b'{"command": "echo \xff"}'), 2)
    assert_error(run_bytes(seeded, "add", "--", b"echo \xff"), 2)
    assert seeded.job_count() == 1


def test_enqueue_lines_takes_many_jobs_at_once(q: Queuectl) -> None:
    lines = "".join(json.dumps({"id": f"j{n}", "command": "true"}) + "\n" for n in range(500))
    assert len(q.ok("enqueue", "-", input=lines).splitlines()) == 500
    assert q.job_count() == 500


# -- add ----------------------------------------------------------------------------------


def test_add_prints_the_id_of_a_job_with_the_command(q: Queuectl) -> None:
    job_id = q.ok("add", "--", "echo", "hello").strip()
    assert URL_SAFE_ID.fullmatch(job_id)
    job = q.job(job_id)
    assert (job["command"], job["state"], job["max_retries"], job["timeout"]) == (
        "echo hello",
        "pending",
        3,
        300,
    )


def test_add_quotes_several_words_and_keeps_one_as_a_shell_line(q: Queuectl) -> None:
    quoted = q.ok("add", "--", "printf", "%s\n", "a b", "it's").strip()
    assert q.job(quoted)["command"] == "printf '%s\n' 'a b' 'it'\"'\"'s'"
    line = q.ok("add", "--", "echo a | tr a b > out.txt").strip()
    assert q.job(line)["command"] == "echo a | tr a b > out.txt"


def test_add_takes_every_option(q: Queuectl) -> None:
    job = json.loads(
        q.ok(
            "add",
            "--id",
            "nightly",
            "--max-retries",
            "7",
            "--priority",
            "-3",
            "--queue",
            "reports",
            "--at",
            "2030-01-31T09:30:00Z",
            "--timeout",
            "5m",
            "--json",
            "--",
            "make",
            "report",
        )
    )
    assert set(job) >= JOB_FIELDS
    assert job["id"] == "nightly"
    assert job["command"] == "make report"
    assert job["max_retries"] == 7
    assert job["priority"] == -3
    assert job["queue"] == "reports"
    assert job["scheduled_at"] == job["run_at"] == "2030-01-31T09:30:00.000Z"
    assert job["timeout"] == 300


@pytest.mark.parametrize(("given", "seconds"), [("90", 90), ("30s", 30), ("1.5", 1.5)])
def test_add_timeout_takes_seconds_or_a_duration(q: Queuectl, given: str, seconds: float) -> None:
    job = json.loads(q.ok("add", "--timeout", given, "--json", "--", "true"))
    assert job["timeout"] == seconds


def test_add_delay_schedules_from_now(q: Queuectl) -> None:
    job = json.loads(q.ok("add", "--delay", "2m", "--json", "--", "true"))
    delay = parse_time(job["scheduled_at"]) - parse_time(job["created_at"])
    assert timedelta(seconds=119) <= delay <= timedelta(seconds=121)
    assert job["run_at"] == job["scheduled_at"]


def test_add_at_without_offset_is_local_time(q: Queuectl) -> None:
    q.env["TZ"] = "EST5"
    job = json.loads(q.ok("add", "--at", "2030-01-01T10:00:00", "--json", "--", "true"))
    assert job["scheduled_at"] == "2030-01-01T15:00:00.000Z"


def test_add_defaults_come_from_config(q: Queuectl) -> None:
    q.config("max-retries", "5")
    q.config("job-timeout", "0.5")
    job = json.loads(q.ok("add", "--json", "--", "true"))
    assert (job["max_retries"], job["timeout"]) == (5, 0.5)


BAD_ADDS = [
    ("no-command", [], False),
    ("only-dashes", ["--"], False),
    ("blank-command", ["--", "  "], False),
    ("bad-id", ["--id", "a b", "--", "true"], False),
    ("long-id", ["--id", "x" * 129, "--", "true"], False),
    ("negative-max-retries", ["--max-retries", "-1", "--", "true"], False),
    ("max-retries-over-1000", ["--max-retries", "1001", "--", "true"], False),
    ("max-retries-not-a-number", ["--max-retries", "three", "--", "true"], True),
    ("priority-over-int32", ["--priority", "2147483648", "--", "true"], False),
    ("priority-not-a-number", ["--priority", "1.5", "--", "true"], True),
    ("bad-queue", ["--queue", "a b", "--", "true"], False),
    ("bad-delay", ["--delay", "soon", "--", "true"], False),
    ("huge-delay", ["--delay", "99999999999999w", "--", "true"], False),
    ("delay-and-at", ["--delay", "1s", "--at", "2030-01-01", "--", "true"], True),
    ("bad-at", ["--at", "noon", "--", "true"], False),
    ("zero-timeout", ["--timeout", "0", "--", "true"], False),
    ("negative-timeout", ["--timeout", "-1", "--", "true"], False),
    ("nan-timeout", ["--timeout", "nan", "--", "true"], False),
    ("duplicate-id", ["--id", "taken", "--", "true"], False),
]


@pytest.mark.parametrize(
    ("args", "usage"), [case[1:] for case in BAD_ADDS], ids=[case[0] for case in BAD_ADDS]
)
def test_add_refuses_bad_input_and_writes_nothing(
    refusing: Queuectl, args: list[str], usage: bool
) -> None:
    assert_error(refusing.run("add", *args), 2, usage=usage)
    assert [job["id"] for job in refusing.jobs()] == ["taken"]
