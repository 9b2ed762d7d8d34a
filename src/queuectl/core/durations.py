"""Durations as people type them: 30s, 15m, 2h, 7d, 1w, 250ms, or bare seconds."""

from __future__ import annotations

import re

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_LARGEST_FIRST = (("d", 86400), ("h", 3600), ("m", 60))  # weeks read, never written


def parse_seconds(text: str) -> float | None:
    """Seconds, or None when `text` is not a duration."""
    match = _DURATION.fullmatch(text)
    if match is None:
        return None
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_seconds(seconds: float) -> str:
    """The shortest exact form: 604800 -> 7d, 5400 -> 90m, 90 -> 90s, 0 -> 0."""
    if seconds == 0:
        return "0"
    for unit, size in _LARGEST_FIRST:
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds // size)}{unit}"
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    # Positional digits, never an exponent: "1e-08s" would not read back (issue 4).
    from decimal import Decimal  # here: `enqueue` imports this module and never formats

    return f"{Decimal(repr(float(seconds))):f}s"


def format_span(seconds: int) -> str:
    """A span of whole seconds in its two largest units: 45s, 2m 5s, 1h 3m, 2d 4h."""
    whole = max(0, seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
