"""Retry delays: exponential in the attempt count, capped."""

from __future__ import annotations


def retry_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt number `attempts` (1-based), capped."""
    try:
        return float(min(base**attempts, cap))
    except OverflowError:
        return float(cap)
