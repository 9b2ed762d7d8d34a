"""jsonscan.loads decodes and refuses exactly as json.loads does (issue 5: enqueue start-up)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from queuectl.core.jsonscan import loads


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


def outcome(decode: Any, text: str) -> tuple[str, str]:
    try:
        return "ok", repr(decode(text, object_pairs_hook=dict, parse_constant=_no_constant))
    except ValueError as exc:
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize(
    "text",
    [
        '{"command": "true"}',
        ' \n{"a": [1, 2.5, "x\\u00e9", null, true]}\t\r\n',
        '{"a": 1} trailing',
        "",
        "   ",
        '{"a":',
        '{"command": "echo hi"',
        "[1, 2]",
        '"text"',
        '{"a": NaN}',
        "\ufeff{}",
        '{"a": "\\ud800"}',
        '{"a": 1e400, "b": -0}',
        '{"a": "tab\there"}',
        '{"a": "\\x"}',
    ],
)
def test_loads_matches_json_loads(text: str) -> None:
    assert outcome(loads, text) == outcome(json.loads, text)
