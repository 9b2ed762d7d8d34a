"""The screen of `queuectl top`, drawn without a terminal: sparklines, layout, store errors."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from queuectl.cli.commands.top import refresh
from queuectl.cli.live import Snapshot, sparkline, view
from queuectl.core.errors import StoreUnavailable
from queuectl.core.models import Job, JobState, WorkerInfo
from queuectl.core.rates import Rate
from queuectl.service import QueueService
from queuectl.store.base import QueueInfo, ThroughputBucket

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("values", "line"),
    [
        ([], ""),
        ([0, 0, 0], "▁▁▁"),
        ([1], "█"),
        ([0, 1, 2, 3, 4, 5, 6, 7], "▁▂▃▄▅▆▇█"),
        ([0, 7, 14, 21, 28, 35, 42, 49], "▁▂▃▄▅▆▇█"),
        # The smallest activity still shows: 1 of 1000 is ▂, never the idle ▁.
        ([1, 1000, 0], "▂█▁"),
        ([5, 5, 5], "███"),
        ([-3, 2], "▁█"),  # nothing below zero
    ],
)
def test_sparkline(values: list[int], line: str) -> None:
    assert sparkline(values) == line


def test_sparkline_on_a_shared_scale() -> None:
    assert sparkline([1, 2], top=4) == "▃▅"
    assert sparkline([8], top=4) == "█"  # clipped
    assert sparkline([3], top=0) == "▁"


def test_sparkline_has_one_character_per_value() -> None:
    values = [(n * 37) % 11 for n in range(30)]
    line = sparkline(values)
    assert len(line) == 30
    assert set(line) <= set("▁▂▃▄▅▆▇█")
    assert line[values.index(max(values))] == "█"


@pytest.mark.parametrize(
    ("target", "label"),
    [
        ("/srv/q.db", "/srv/q.db"),
        (
            "postgresql://queue:s3cret@db.example:5432/jobs",
            "postgresql://queue:***@db.example:5432/jobs",
        ),
        ("postgresql://queue@db/jobs?password=s3cret", "postgresql://queue@db/jobs?password=***"),
        ("host=db password=s3cret dbname=jobs", "host=db password=*** dbname=jobs"),
        ("postgresql://queue@db/jobs", "postgresql://queue@db/jobs"),
    ],
)
def test_the_footer_shows_the_store_without_its_password(target: str, label: str) -> None:
    lines = draw(snapshot(), target=target).splitlines()
    assert re.match(rf"store: {re.escape(label)}\s+q to quit$", lines[-1])


@pytest.mark.parametrize(
    "target",
    [
        "postgresql://queue:s3cret@db/jobs",
        "postgresql://queue@db/jobs?password=s3cret",
        "host=db password=s3cret dbname=jobs",
    ],
)
def test_the_error_line_shows_no_password(target: str) -> None:
    """A driver's message may quote the target, or the password alone."""
    error = f'cannot connect to {target}: invalid token "s3cret"'
    screen = draw(snapshot(), target=target, error=error)
    assert "store error: cannot connect to" in screen
    assert "s3cret" not in screen


def job(job_id: str, state: JobState, *, age: float = 0, **fields: Any) -> Job:
    values: dict[str, Any] = {
        "id": job_id,
        "command": "sleep 30",
        "state": state,
        "queue": "default",
        "priority": 0,
        "attempts": 1,
        "max_retries": 3,
        "timeout": 300.0,
        "created_at": NOW - timedelta(seconds=age),
        "updated_at": NOW - timedelta(seconds=age),
        "scheduled_at": None,
        "run_at": NOW,
        "started_at": NOW - timedelta(seconds=age),
        "finished_at": None,
        "exit_code": None,
        "last_error": None,
        "output": "",
        "locked_by": None,
        "locked_at": None,
    }
    return Job(**(values | fields))


def snapshot(workers: int = 2, queues: int = 2, failures: int = 3) -> Snapshot:
    started = [NOW - timedelta(minutes=n + 1) for n in range(workers)]
    infos = [
        WorkerInfo(f"worker-{n}", "host-a", 100 + n, "running", at, NOW, None)
        for n, at in enumerate(started)
    ]
    running = {"worker-0": job("busy-job", JobState.PROCESSING, age=65, locked_by="worker-0")}
    return Snapshot(
        now=NOW,
        counts=dict.fromkeys(JobState, 0) | {JobState.PENDING: 4, JobState.DEAD: failures},
        queues=[
            QueueInfo(
                f"queue-{n}",
                n == 0,
                2 if n == 1 else None,
                dict.fromkeys(JobState, n),
                Rate(30, 60) if n == 1 else None,
            )
            for n in range(queues)
        ],
        throughput=[
            ThroughputBucket(NOW - timedelta(minutes=29 - n), n % 4, 1 if n == 29 else 0)
            for n in range(30)
        ],
        workers=infos,
        running=running if workers else {},
        failures=[
            job(f"bad-{n}", JobState.DEAD, age=10 * n, last_error=f"exited with code {n}\nmore")
            for n in range(failures)
        ],
    )


def draw(
    data: Snapshot | None,
    width: int = 140,
    height: int = 40,
    target: str = "/srv/q.db",
    **options: Any,
) -> str:
    from rich.console import Console

    console = Console(width=width, height=height, file=io.StringIO(), color_system=None)
    screen = view(data, target=target, interval=1.0, width=width, height=height, **options)
    with console.capture() as captured:
        console.print(screen)
    return captured.get()


def test_view_shows_every_section_on_a_wide_screen() -> None:
    screen = draw(snapshot())
    lines = screen.splitlines()
    assert len(lines) == 40
    assert all(len(line) <= 140 for line in lines)
    assert re.match(r"queuectl top\s+7 jobs, 2 workers, 2 queues\s+\d\d:\d\d:\d\d", lines[0])
    assert re.search(r"│ Pending\s+4\s", screen)
    assert re.search(r"│ Completed\s+0\s+(▁▄▆█){7}▁▄\s+43\s", screen)  # one a minute
    assert re.search(r"│ Failed\s+0\s+▁+█\s+1\s", screen)
    assert re.search(r"queue-0\s+0\s+0\s+0\s+0\s+0\s+paused", screen)
    assert re.search(r"queue-1\s+1\s+1\s+1\s+1\s+1\s+limit 2 rate 30/m", screen)
    assert "Workers (2 active)" in screen
    assert re.search(r"worker-0\s+host-a\s+100\s+1m 0s\s+busy-job\s+1m 5s\s+sleep 30", screen)
    assert re.search(r"worker-1\s+host-a\s+101\s+2m 0s\s+idle", screen)
    assert re.search(r"10s ago\s+bad-1\s+dead\s+1/3\s+exited with code 1 more\s+sleep 30", screen)
    assert re.match(r"store: /srv/q.db\s+q to quit$", lines[-1])


def test_view_on_a_small_screen_keeps_workers_and_failures() -> None:
    screen = draw(snapshot(workers=3, queues=5, failures=20), width=80, height=24)
    lines = screen.splitlines()
    assert len(lines) == 24
    assert all(len(line) <= 80 for line in lines)
    assert "Workers (3 active)" in screen
    assert "bad-0" in screen  # the latest failure
    assert "queue-0" not in screen  # no room left for the queues: the header counts them
    assert "5 queues" in lines[0]
    assert lines[-1].endswith("q to quit")


def test_view_says_how_many_more_when_they_do_not_fit() -> None:
    screen = draw(snapshot(workers=30, queues=12))
    assert "+19 more" in screen  # 11 workers shown of 30
    assert "+6 more" in screen  # 6 queues shown beside the 7 rows of counts
    assert "worker-10 " in screen
    assert "worker-11 " not in screen


def test_view_of_an_empty_queue() -> None:
    screen = draw(snapshot(workers=0, queues=0, failures=0))
    assert "No queues yet." in screen
    assert "No active workers" in screen
    assert "No failed or dead jobs." in screen


def test_view_shows_a_store_error_over_the_last_data() -> None:
    screen = draw(snapshot(), error="store /srv/q.db: database is locked\nsecond line")
    assert re.search(
        r"store error: store /srv/q.db: database is locked second line \(retrying every 1s; "
        r"data of \d\d:\d\d:\d\d\)",
        screen,
    )
    assert re.search(r"│ Pending\s+4\s", screen)
    assert "Reading the store" in draw(None, error="cannot connect")


class FlakyService:
    """A service whose store fails on demand."""

    def __init__(self, real: Snapshot) -> None:
        self.real = real
        self.down = False

    def rescue_stale(self) -> None:
        if self.down:
            raise StoreUnavailable("PostgreSQL at postgresql://db/q: connection refused")

    def status(self) -> Any:
        from queuectl.service import StatusReport

        return StatusReport(self.real.counts, self.real.workers, self.real.now)

    def list_jobs(self, job_filter: Any) -> list[Job]:
        if JobState.PROCESSING in job_filter.states:
            return list(self.real.running.values())
        return self.real.failures[: job_filter.limit]

    def list_queues(self) -> list[QueueInfo]:
        return self.real.queues

    def throughput(self, minutes: int) -> list[ThroughputBucket]:
        assert minutes == 30
        return self.real.throughput


def test_refresh_keeps_the_last_snapshot_while_the_store_fails() -> None:
    flaky = FlakyService(snapshot())
    service = cast(QueueService, flaky)
    first, error = refresh(service, None, failure_rows=2)
    assert error is None
    assert first is not None
    assert [failure.id for failure in first.failures] == ["bad-0", "bad-1"]
    assert first.running["worker-0"].id == "busy-job"

    flaky.down = True
    kept, error = refresh(service, first)
    assert kept is first
    assert error == "PostgreSQL at postgresql://db/q: connection refused"
    assert refresh(service, None) == (None, error)

    flaky.down = False
    again, error = refresh(service, kept, failure_rows=2)
    assert error is None
    assert again == first
