"""Retry delays: exponential in the attempt count, capped, optionally jittered."""

from __future__ import annotations

from collections.abc import Callable

Uniform = Callable[[float, float], float]  # random.uniform's shape: a draw from [a, b]


def retry_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt number `attempts` (1-based), capped."""
    try:
        return float(min(base**attempts, cap))
    except OverflowError:
        return float(cap)


def full_jitter(delay: float, uniform: Uniform) -> float:
    """A delay drawn uniformly from [0, delay]: jobs that failed together (an outage) then
    retry spread out instead of all at once."""
    return min(delay, max(0.0, uniform(0.0, delay)))
