"""A queue's rate limit (`queue rate NAME 30/m`): at most `count` job starts in any window
of `period` seconds, a strict sliding window, so no burst ever exceeds it."""

from __future__ import annotations

from dataclasses import dataclass

from queuectl.core.errors import UsageError

MAX_COUNT = 1_000_000  # starts per period; the store keeps one row per start in the window
# The units a rate may name, and their length in seconds. The short letter is canonical.
UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
}
LETTERS = {1: "s", 60: "m", 3600: "h"}
WORDS = {1: "second", 60: "minute", 3600: "hour"}


@dataclass(frozen=True, slots=True)
class Rate:
    count: int  # job starts allowed ...
    period: int  # ... in any window of this many seconds

    def __str__(self) -> str:
        """`30/m`: what `queue rate` accepts and `queue list` shows."""
        return f"{self.count}/{LETTERS.get(self.period, f'{self.period}s')}"

    def describe(self) -> str:
        """`30 job starts per minute`."""
        per = WORDS.get(self.period, f"{self.period} seconds")
        return f"{self.count} job start{'' if self.count == 1 else 's'} per {per}"


def parse_rate(text: str) -> Rate | None:
    """`30/m`, `5/s`, `100/h` (also `/sec`, `/min`, `/hour`); `none` for no rate limit."""
    value = text.strip().lower()
    if value == "none":
        return None
    count, slash, unit = value.partition("/")
    problem = None
    if not slash or unit not in UNITS:
        problem = "expected N/s, N/m or N/h (or none)"
    elif not (count.isascii() and count.isdigit()) or not 1 <= int(count) <= MAX_COUNT:
        problem = f"N must be a whole number from 1 to {MAX_COUNT}"
    if problem is not None:
        raise UsageError(f"invalid rate {text!r}: {problem}")
    return Rate(int(count), UNITS[unit])


def rate_of(count: int | None, period: int | None) -> Rate | None:
    """The rate as stored (two columns, both NULL for none)."""
    return Rate(count, period) if count is not None and period is not None else None
