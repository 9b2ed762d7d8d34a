"""core.flat_json reads the easy enqueue objects without json, and never disagrees with it:
whatever it reads, json.loads reads the same; whatever json refuses, it leaves to json."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from queuectl.core.errors import InvalidJobSpec
from queuectl.core.flat_json import read_flat_object
from queuectl.core.spec import _no_constant, _no_duplicate_keys, decode_job_object

EASY = [
    ('{"command":"true"}', {"command": "true"}),
    ("{}", {}),
    (" \t\r\n{ }\n", {}),
    (
        '{ "id" : "a-1", "command" : "echo hi > /tmp/x", "priority" : -5, "max_retries": 0 }',
        {"id": "a-1", "command": "echo hi > /tmp/x", "priority": -5, "max_retries": 0},
    ),
    (
        '{"cwd": null, "env": null, "x": true, "y": false}',
        {"cwd": None, "env": None, "x": True, "y": False},
    ),
    ('{"command": "grüße 日本 🎉"}', {"command": "grüße 日本 🎉"}),
    ('{"priority": -0}', {"priority": 0}),
]

# Texts the reader leaves to json: escapes, fractions, nesting, errors of every kind.
LEFT_TO_JSON = [
    '{"command": "a\\"b"}',
    '{"command": "tab\there"}',  # a raw control character: json refuses it
    '{"command": "\\u00e9"}',
    '{"timeout": 1.5}',
    '{"timeout": 1e3}',
    '{"priority": 01}',
    '{"priority": -}',
    '{"priority": 1234567890123456789012}',
    '{"env": {"A": "b"}}',
    '{"depends_on": ["a"]}',
    '{"command": "a", "command": "b"}',
    '{"command": "true",}',
    '{"command": "true"} x',
    '{"command": "true"',
    '{"command" "true"}',
    '{"command": tru}',
    '{"command": truex}',
    '{"command": NaN}',
    "\ufeff{}",
    '["true"]',
    '"true"',
    "",
    "{",
    '{"a":1 "b":2}',
    '{"a\udcff": "b"}',
]

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**25), max_value=10**25),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
OBJECTS = st.dictionaries(st.text(max_size=6), SCALARS, max_size=5)
SEPARATORS = st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", " :\t")])


def loads(text: str) -> dict[str, Any] | None:
    """What json makes of `text` with the enqueue decoder's hooks; None when it refuses."""
    try:
        data = decode_job_object(text, line=1)  # a line number: always through json
    except InvalidJobSpec:
        return None
    return data


@pytest.mark.parametrize(("text", "expected"), EASY)
def test_easy_objects_are_read_as_json_reads_them(text: str, expected: dict[str, Any]) -> None:
    found = read_flat_object(text)
    assert found == expected
    assert found == json.loads(text)
    assert [type(value) for value in found.values()] == [
        type(value) for value in json.loads(text).values()
    ]


@pytest.mark.parametrize("text", LEFT_TO_JSON)
def test_anything_harder_is_left_to_json(text: str) -> None:
    assert read_flat_object(text) is None


@given(OBJECTS, SEPARATORS, st.booleans())
def test_dumped_objects_read_the_same_or_are_left_to_json(
    data: dict[str, Any], separators: tuple[str, str], ascii_only: bool
) -> None:
    text = json.dumps(data, separators=separators, ensure_ascii=ascii_only)
    found = read_flat_object(text)
    if found is not None:
        assert found == json.loads(text)
        assert [type(v) for v in found.values()] == [type(v) for v in json.loads(text).values()]


@given(st.text(alphabet='{}[]",:-0123456789.eEtrufalsn \t\n\\a\u00e9\x01', max_size=30))
@example('{"a":-0}')
@example('{"a":0,"b":"c"}')
def test_arbitrary_text_is_never_read_differently(text: str) -> None:
    found = read_flat_object(text)
    if found is not None:
        assert found == loads(text)


def outcome(text: str, line: int | None) -> object:
    """The object decode_job_object() makes of `text`, or its error without a line number."""
    try:
        return decode_job_object(text, line)
    except InvalidJobSpec as exc:
        return exc.message.removeprefix(f"line {line}: ")


@pytest.mark.parametrize("text", [text for text, _ in EASY] + LEFT_TO_JSON)
def test_decoding_one_job_gives_the_same_object_or_error_as_json(text: str) -> None:
    assert outcome(text, None) == outcome(text, 1)


def json_loads_outcome(text: str) -> object:
    """What json.loads with the enqueue decoder's hooks makes of `text`, worded as
    decode_job_object words it: the reference for its faster decoding of lines."""
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        return f"invalid JSON: {exc.msg} at column {exc.colno}"
    except ValueError as exc:
        return f"invalid JSON: {exc}"
    return data if isinstance(data, dict) else "not an object"


def line_outcome(text: str) -> object:
    try:
        return decode_job_object(text, 1)
    except InvalidJobSpec as exc:
        message = exc.message.removeprefix("line 1: ")
        return "not an object" if message.startswith("expected a JSON object") else message


@given(st.text(alphabet='{}[]",:-0123456789.eEtrufalsn \t\n\r\\a\ufeff', max_size=30))
@example('{"a": 1} ')
@example('{"a": 1} x')
@example(' {"a": 1}')
@example('\ufeff{"a": 1}')
@example('{"a": 1, "a": 2}')
@example('{"a": NaN}')
def test_lines_decode_as_json_loads_decodes_them(text: str) -> None:
    assert line_outcome(text) == json_loads_outcome(text)
