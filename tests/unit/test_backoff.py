"""Retry delays: base ** attempts seconds, capped (SPEC 2.2)."""

from __future__ import annotations

import pytest

from queuectl.core.backoff import retry_delay


@pytest.mark.parametrize(
    ("attempts", "base", "cap", "delay"),
    [
        (1, 2, 3600, 2.0),
        (2, 2, 3600, 4.0),
        (3, 2, 3600, 8.0),
        (12, 2, 3600, 3600.0),
        (3, 1, 3600, 1.0),
        (2, 1.5, 3600, 2.25),
        (5, 2, 0, 0.0),
        (5, 10, 30, 30.0),
    ],
)
def test_retry_delay_is_base_to_the_attempts_capped(
    attempts: int, base: float, cap: float, delay: float
) -> None:
    assert retry_delay(attempts, base, cap) == delay


def test_retry_delay_survives_an_overflowing_power() -> None:
    assert retry_delay(1000, 2.5, 3600) == 3600.0
    assert retry_delay(100_000, 10.0, 60) == 60.0


def test_retry_delay_is_a_float() -> None:
    assert isinstance(retry_delay(1, 2, 3600), float)
