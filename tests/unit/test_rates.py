"""Parsing `queue rate` values: N per second, minute or hour, or none."""

from __future__ import annotations

import pytest

from queuectl.core.errors import UsageError
from queuectl.core.rates import MAX_COUNT, Rate, parse_rate, rate_of


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30/m", Rate(30, 60)),
        ("5/s", Rate(5, 1)),
        ("100/h", Rate(100, 3600)),
        ("30/min", Rate(30, 60)),
        ("2/sec", Rate(2, 1)),
        ("1/hour", Rate(1, 3600)),
        ("10/minute", Rate(10, 60)),
        (" 7/M ", Rate(7, 60)),
        (f"{MAX_COUNT}/s", Rate(MAX_COUNT, 1)),
        ("none", None),
        ("None", None),
    ],
)
def test_parse_rate_accepts(text: str, expected: Rate | None) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "30", "30/", "/m", "0/m", "-1/s", "+3/s", "1.5/s", "x/m", "30/d", "30/ms", "3/s/s",
     "30 /m", f"{MAX_COUNT + 1}/h", "30/mins", "²/s", "٣/s"],
)  # fmt: skip
def test_parse_rate_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="invalid rate"):
        parse_rate(text)


def test_rates_print_as_they_are_typed_and_in_words() -> None:
    assert [str(Rate(30, 60)), str(Rate(5, 1)), str(Rate(100, 3600))] == ["30/m", "5/s", "100/h"]
    assert Rate(1, 3600).describe() == "1 job start per hour"
    assert Rate(30, 60).describe() == "30 job starts per minute"


def test_rate_of_reads_the_stored_columns() -> None:
    assert rate_of(30, 60) == Rate(30, 60)
    assert rate_of(None, None) is None
