"""retry_on_exit, fatal_on_exit and dedupe_key in enqueue input and `add` options (issue 8)."""

from __future__ import annotations

import json

import pytest

from queuectl.core.errors import InvalidJobSpec, UsageError
from queuectl.core.fields import parse_exit_codes
from queuectl.core.models import NewJob
from queuectl.core.settings import Settings
from queuectl.core.spec import parse_job_json, parse_job_lines

SETTINGS = Settings()


def parse(**fields: object) -> NewJob:
    return parse_job_json(json.dumps({"command": "true", **fields}), SETTINGS)


def test_unset_fields_are_empty() -> None:
    job = parse()
    assert (job.retry_on_exit, job.fatal_on_exit, job.dedupe_key) == ((), (), None)
    nulls = parse(retry_on_exit=None, fatal_on_exit=None, dedupe_key=None)
    assert (nulls.retry_on_exit, nulls.fatal_on_exit, nulls.dedupe_key) == ((), (), None)


def test_exit_codes_are_kept_sorted_without_repeats() -> None:
    job = parse(retry_on_exit=[111, 75, 75], fatal_on_exit=[126, 0, 2, 255])
    assert job.retry_on_exit == (75, 111)
    assert job.fatal_on_exit == (0, 2, 126, 255)


def test_dedupe_key_is_kept_as_given() -> None:
    assert parse(dedupe_key="report:2026-01-31 nightly").dedupe_key == "report:2026-01-31 nightly"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"retry_on_exit": 75}, "retry_on_exit must be an array of exit codes, got the number 75"),
        ({"retry_on_exit": "75"}, "retry_on_exit must be an array of exit codes"),
        ({"fatal_on_exit": {"2": True}}, "fatal_on_exit must be an array of exit codes"),
        ({"retry_on_exit": [75, "111"]}, "retry_on_exit: exit codes are integers, got the string"),
        ({"retry_on_exit": [1.5]}, "retry_on_exit: exit codes are integers, got the number 1.5"),
        ({"fatal_on_exit": [True]}, "fatal_on_exit: exit codes are integers, got a boolean"),
        ({"fatal_on_exit": [256]}, "fatal_on_exit: exit code 256 is outside 0-255"),
        ({"retry_on_exit": [-1]}, "retry_on_exit: exit code -1 is outside 0-255"),
        (
            {"retry_on_exit": [75, 2], "fatal_on_exit": [2]},
            "exit code 2 is in both retry_on_exit and fatal_on_exit",
        ),
        ({"dedupe_key": ""}, "dedupe_key must not be empty"),
        ({"dedupe_key": "   "}, "dedupe_key must not be empty"),
        ({"dedupe_key": 7}, "dedupe_key must be a string, got the number 7"),
        ({"dedupe_key": "k" * 257}, "dedupe_key must be at most 256 characters, got 257"),
        ({"dedupe_key": "a\u0000b"}, "dedupe_key must not contain a NUL character"),
        ({"dedupe_key": "\udcff"}, "dedupe_key must be valid UTF-8 text"),
    ],
)
def test_bad_policy_fields_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidJobSpec) as refused:
        parse(**fields)
    assert message in refused.value.message


def test_longest_dedupe_key_is_accepted() -> None:
    assert parse(dedupe_key="k" * 256).dedupe_key == "k" * 256


def test_a_dedupe_key_twice_in_a_batch_is_refused_with_both_lines() -> None:
    lines = [
        '{"command": "a", "dedupe_key": "k"}',
        "",
        '{"command": "b", "dedupe_key": "other"}',
        '{"command": "c", "dedupe_key": "k"}',
    ]
    with pytest.raises(InvalidJobSpec) as refused:
        parse_job_lines(lines, SETTINGS)
    assert refused.value.message == "line 4: duplicate dedupe key 'k' (also on line 1)"


def test_a_dedupe_key_twice_in_a_batch_is_allowed_when_skipping() -> None:
    lines = ['{"command": "a", "dedupe_key": "k"}', '{"command": "b", "dedupe_key": "k"}']
    numbered = parse_job_lines(lines, SETTINGS, skip_duplicate_keys=True)
    assert [(number, job.command) for number, job in numbered] == [(1, "a"), (2, "b")]


@pytest.mark.parametrize(
    ("text", "codes"),
    [("75", (75,)), ("75,111", (75, 111)), (" 2 , 126 ", (2, 126)), ("3,3", (3,))],
)
def test_add_options_take_comma_separated_codes(text: str, codes: tuple[int, ...]) -> None:
    assert parse_exit_codes("--retry-on-exit", text) == codes


@pytest.mark.parametrize("text", ["", "75,", "a", "7 5", "-1", "1.5", "75;111", "٣"])
def test_add_options_refuse_anything_else(text: str) -> None:
    with pytest.raises(UsageError, match="--fatal-on-exit"):
        parse_exit_codes("--fatal-on-exit", text)


def test_add_option_code_out_of_range_is_refused() -> None:
    with pytest.raises(UsageError, match="--retry-on-exit: exit code 300 is outside 0-255"):
        parse_exit_codes("--retry-on-exit", "75,300")
