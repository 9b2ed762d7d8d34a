"""Human output: durations and the status block (SPEC 2.4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from queuectl.cli.render import duration, status_text
from queuectl.core.models import JobState, WorkerInfo
from queuectl.service import StatusReport

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.9, "0s"),
        (45, "45s"),
        (59.99, "59s"),
        (60, "1m 0s"),
        (125, "2m 5s"),
        (3599, "59m 59s"),
        (3600, "1h 0m"),
        (3780, "1h 3m"),
        (86399, "23h 59m"),
        (86400, "1d 0h"),
        (2 * 86400 + 4 * 3600 + 59, "2d 4h"),
        (-5, "0s"),
    ],
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def worker(worker_id: str, job_id: str | None, uptime: float) -> WorkerInfo:
    started = NOW - timedelta(seconds=uptime)
    return WorkerInfo(worker_id, "host", 42, "running", started, NOW, job_id)


def test_status_text_matches_the_spec_example() -> None:
    counts = dict.fromkeys(JobState, 0) | {
        JobState.PENDING: 3,
        JobState.PROCESSING: 1,
        JobState.COMPLETED: 5,
        JobState.DEAD: 1,
    }
    workers = [worker("worker-abc123", "job-xyz", 45), worker("worker-def456", None, 42.5)]
    assert status_text(StatusReport(counts, workers, NOW)) == (
        "=== Job Queue Status ===\n"
        "\n"
        "Total Jobs:      10\n"
        "Pending:         3\n"
        "Processing:      1\n"
        "Completed:       5\n"
        "Failed:          0\n"
        "Dead (DLQ):      1\n"
        "\n"
        "Active Workers:  2\n"
        "\n"
        "--- Active Workers ---\n"
        "  worker-abc123: Processing job-xyz (uptime: 45s)\n"
        "  worker-def456: Idle (uptime: 42s)\n"
    )


def test_status_text_shows_cancelled_jobs_only_when_there_are_some() -> None:
    counts = dict.fromkeys(JobState, 0) | {JobState.CANCELLED: 2}
    text = status_text(StatusReport(counts, [], NOW))
    assert "Total Jobs:      2\n" in text
    assert "Cancelled:       2\n" in text
    assert "Cancelled" not in status_text(StatusReport(dict.fromkeys(JobState, 0), [], NOW))
