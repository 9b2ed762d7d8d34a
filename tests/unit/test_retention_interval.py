"""How often workers apply retention: QUEUECTL_RETENTION_INTERVAL, a tuning and testing knob."""

from __future__ import annotations

import pytest

from queuectl.worker.maintenance import RETENTION_INTERVAL, retention_interval


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, RETENTION_INTERVAL),
        ("1", 1.0),
        ("0.5", 0.5),
        ("600", 600.0),
        ("0", RETENTION_INTERVAL),  # a bad value must not make a worker prune in a loop
        ("-3", RETENTION_INTERVAL),
        ("nan", RETENTION_INTERVAL),
        ("inf", RETENTION_INTERVAL),
        ("soon", RETENTION_INTERVAL),
        ("", RETENTION_INTERVAL),
    ],
)
def test_retention_interval_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, seconds: float
) -> None:
    if value is None:
        monkeypatch.delenv("QUEUECTL_RETENTION_INTERVAL", raising=False)
    else:
        monkeypatch.setenv("QUEUECTL_RETENTION_INTERVAL", value)
    assert retention_interval() == seconds
