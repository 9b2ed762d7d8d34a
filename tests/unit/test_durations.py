"""Durations as people type them: 30s, 15m, 2h, 7d (prune, dlq purge, wait, retention)."""

from __future__ import annotations

import pytest

from queuectl.core.durations import format_seconds, parse_seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("15m", 900.0),
        ("2h", 7200.0),
        ("7d", 604800.0),
        ("1w", 604800.0),
        ("250ms", 0.25),
        ("90", 90.0),
        ("0", 0.0),
        ("1.5h", 5400.0),
        ("0.5s", 0.5),
        (" 7d ", 604800.0),
        ("7 d", 604800.0),
    ],
)
def test_parse_seconds_reads_every_unit(text: str, seconds: float) -> None:
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", " ", "d", "7x", "-1d", "7dd", "1h30m", "1e3", ".5s", "inf"])
def test_parse_seconds_refuses_what_is_not_a_duration(text: str) -> None:
    assert parse_seconds(text) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0"),
        (30, "30s"),
        (90, "90s"),
        (900, "15m"),
        (5400, "90m"),
        (7200, "2h"),
        (129600, "36h"),
        (604800, "7d"),
        (2592000, "30d"),
        (1.5, "1.5s"),
    ],
)
def test_format_seconds_is_the_shortest_exact_form(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text
    assert parse_seconds(text) == seconds  # and reads back as the same duration
