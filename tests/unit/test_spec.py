"""Enqueue input to NewJob: every rule of SPEC 2.1, without a store."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from queuectl.core.errors import InvalidJobSpec, UsageError
from queuectl.core.fields import delay_to_time, parse_duration, parse_time
from queuectl.core.ids import is_valid_job_id, new_job_id, new_worker_id
from queuectl.core.settings import Settings
from queuectl.core.spec import parse_job_json, parse_job_lines

SETTINGS = Settings()


@pytest.fixture
def local_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This machine's local time is UTC-5 (a POSIX TZ string: no tz database needed)."""
    monkeypatch.setenv("TZ", "EST5")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def parse(fields: dict[str, object], settings: Settings = SETTINGS) -> object:
    return parse_job_json(json.dumps(fields), settings)


def test_minimal_job_gets_the_defaults() -> None:
    job = parse_job_json('{"command": "echo hi"}', Settings(max_retries=5, job_timeout=60))
    assert job.command == "echo hi"
    assert (job.queue, job.priority, job.max_retries, job.timeout) == ("default", 0, 5, 60)
    assert job.scheduled_at is None
    assert is_valid_job_id(job.id)


def test_every_key_is_taken() -> None:
    job = parse_job_json(
        json.dumps(
            {
                "id": "a:b@c.d_e-f",
                "command": "make",
                "max_retries": 0,
                "scheduled_at": "2030-01-01T00:00:00+01:00",
                "priority": -(2**31),
                "queue": "q.1_a-b",
                "timeout": 0.5,
            }
        ),
        SETTINGS,
    )
    assert job.id == "a:b@c.d_e-f"
    assert (job.max_retries, job.priority, job.queue, job.timeout) == (0, -(2**31), "q.1_a-b", 0.5)
    assert job.scheduled_at == datetime(2029, 12, 31, 23, tzinfo=UTC)


def test_integral_floats_are_integers_and_null_means_absent() -> None:
    job = parse_job_json(
        '{"command": "x", "max_retries": 2.0, "priority": 1e1, "id": null, "scheduled_at": null}',
        SETTINGS,
    )
    assert (job.max_retries, job.priority, job.scheduled_at) == (2, 10, None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "invalid JSON"),
        ("[]", "expected a JSON object, got an array"),
        ('"x"', "expected a JSON object"),
        ("{}", "missing required key 'command'"),
        ('{"command": ""}', "command must not be empty"),
        ('{"command": "\\n\\t "}', "command must not be empty"),
        ('{"command": "a\\u0000"}', "NUL"),
        ('{"command": "\\ud800"}', "UTF-8"),
        ('{"command": true}', "command must be a string, got a boolean"),
        ('{"command": "x", "extra": 1}', "unknown key 'extra'"),
        ('{"command": "x", "max_retries": -1}', "max_retries must be >= 0"),
        ('{"command": "x", "max_retries": 1001}', "max_retries must be <= 1000"),
        ('{"command": "x", "max_retries": "1"}', "max_retries must be an integer"),
        ('{"command": "x", "priority": 2147483648}', "32-bit"),
        ('{"command": "x", "queue": "a b"}', "invalid queue"),
        ('{"command": "x", "queue": "' + "q" * 129 + '"}', "invalid queue"),
        ('{"command": "x", "timeout": 0}', "timeout must be a number > 0, got 0"),
        ('{"command": "x", "timeout": -2.5}', "got -2.5"),
        ('{"command": "x", "timeout": NaN}', "NaN"),
        ('{"command": "x", "timeout": -Infinity}', "Infinity"),
        ('{"command": "x", "timeout": 1e400}', "got inf"),
        ('{"command": "x", "scheduled_at": "soon"}', "invalid time 'soon'"),
        ('{"command": "x", "scheduled_at": "9999-12-31T23:00:00-05:00"}', "out of range"),
        ('{"command": "x", "id": "a/b"}', "invalid id 'a/b'"),
        ('{"command": "x", "id": ""}', "invalid id"),
        ('{"command": "x", "id": "' + "i" * 129 + '"}', "invalid id"),
        ('{"command": "x", "command": "y"}', "duplicate key 'command'"),
    ],
)
def test_bad_input_is_refused_saying_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidJobSpec) as info:
        parse_job_json(text, SETTINGS)
    assert message in info.value.message
    assert "\n" not in info.value.message
    assert info.value.exit_code == 2


def test_error_of_a_numbered_line_names_it() -> None:
    with pytest.raises(InvalidJobSpec) as info:
        parse_job_json("[]", SETTINGS, line=7)
    assert info.value.message.startswith("line 7: ")
    assert info.value.line == 7


def test_lines_keep_physical_numbers_and_skip_blank_ones() -> None:
    lines = ["\n", '{"id": "a", "command": "x"}\n', "  \n", '{"id": "b", "command": "y"}']
    assert [(n, job.id) for n, job in parse_job_lines(lines, SETTINGS)] == [(2, "a"), (4, "b")]


def test_lines_refuse_a_repeated_id_naming_both_lines() -> None:
    lines = ['{"id": "a", "command": "x"}', "", '{"id": "a", "command": "y"}']
    with pytest.raises(InvalidJobSpec) as info:
        parse_job_lines(lines, SETTINGS)
    assert info.value.message == "line 3: duplicate id 'a' (also on line 1)"


def test_lines_stop_at_the_first_bad_line() -> None:
    with pytest.raises(InvalidJobSpec, match=r"^line 2: "):
        parse_job_lines(['{"command": "x"}', '{"command": 1}', "{"], SETTINGS)


def test_time_without_offset_is_local(local_tz: None) -> None:
    assert parse_time("2030-01-01T10:00:00") == datetime(2030, 1, 1, 15, tzinfo=UTC)
    assert parse_time("2030-01-01 10:00") == datetime(2030, 1, 1, 15, tzinfo=UTC)


def test_time_with_offset_or_z_ignores_the_local_zone(local_tz: None) -> None:
    assert parse_time("2030-01-01T10:00:00Z") == datetime(2030, 1, 1, 10, tzinfo=UTC)
    assert parse_time("2030-01-01T10:00:00.5+02:00") == datetime(
        2030, 1, 1, 8, 0, 0, 500000, tzinfo=UTC
    )
    assert parse_time("2030-01-01T10:00:00+02:00").tzinfo == UTC


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 30),
        ("30s", 30),
        ("250ms", 0.25),
        ("15m", 900),
        ("2h", 7200),
        ("7d", 604800),
        ("1w", 604800),
        ("1.5h", 5400),
        (" 2s ", 2),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5s", "5 minutes", "1e3", "nan", "5y"])
def test_parse_duration_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(UsageError, match="invalid duration"):
        parse_duration(text)


def test_delay_to_time_adds_and_refuses_overflow() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert delay_to_time(90, now) == now + timedelta(seconds=90)
    with pytest.raises(UsageError, match="too long"):
        delay_to_time(parse_duration("99999999999999w"), now)


def test_generated_ids_are_short_url_safe_and_distinct() -> None:
    ids = {new_job_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(job_id) <= 22 and is_valid_job_id(job_id) for job_id in ids)
    assert all(job_id.isascii() and job_id.isalnum() for job_id in ids)
    assert new_worker_id().startswith("worker-")


@pytest.mark.parametrize(
    ("job_id", "valid"),
    [
        ("a", True),
        ("A-z_0.9:x@y", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("", False),
        ("a b", False),
        ("a/b", False),
        ("é", False),
        ("a\n", False),
    ],
)
def test_job_id_rule(job_id: str, valid: bool) -> None:
    assert is_valid_job_id(job_id) is valid


def test_a_json_error_at_the_end_of_a_line_names_its_column() -> None:
    with pytest.raises(InvalidJobSpec) as error:
        parse_job_lines(['{"command": "x"}\n', '{"command": "x"\n'], SETTINGS)
    assert error.value.message == "line 2: invalid JSON: Expecting ',' delimiter at column 16"
