"""/metrics (Prometheus text format, read at scrape time) and /healthz, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from queuectl.store.base import ThroughputBucket
from queuectl.web.metrics import AttemptCounter
from tests.conftest import Queuectl
from tests.web.conftest import enqueue_all, run_burst

pytestmark = pytest.mark.in_process


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_read_the_store_at_scrape_time(client: TestClient, q: Queuectl) -> None:
    enqueue_all(
        q,
        {"command": "true"},
        {"command": "true", "queue": "mail"},
        {"command": "exit 1", "max_retries": 1},
        {"command": "true", "scheduled_at": "2099-01-01T00:00:00Z"},
    )
    before = scrape(client)
    assert before[("queuectl_jobs", (("queue", "default"), ("state", "pending")))] == 3
    assert before[("queuectl_attempts_total", (("outcome", "completed"),))] == 0
    assert before[("queuectl_workers_active", ())] == 0
    run_burst(q)
    after = scrape(client)
    assert after[("queuectl_jobs", (("queue", "default"), ("state", "completed")))] == 1
    assert after[("queuectl_jobs", (("queue", "default"), ("state", "dead")))] == 1
    assert after[("queuectl_jobs", (("queue", "mail"), ("state", "completed")))] == 1
    assert after[("queuectl_jobs", (("queue", "default"), ("state", "pending")))] == 1
    assert after[("queuectl_attempts_total", (("outcome", "completed"),))] == 2
    assert after[("queuectl_attempts_total", (("outcome", "failed"),))] == 1
    assert after[("queuectl_job_run_duration_seconds_count", ())] == 3
    assert after[("queuectl_job_run_duration_seconds_bucket", (("le", "+Inf"),))] == 3
    assert after[("queuectl_job_run_duration_seconds_sum", ())] >= 0
    assert after[("queuectl_queue_paused", (("queue", "mail"),))] == 0


def test_metrics_count_active_workers(client: TestClient, q: Queuectl) -> None:
    from tests.conftest import wait_until

    q.start_workers("--count", "2")

    def workers() -> float:
        return scrape(client)[("queuectl_workers_active", ())]

    wait_until(lambda: workers() == 2, timeout=30, message="two active workers in /metrics")


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_attempt_counter_only_grows() -> None:
    """The store answers per minute over the last hour; the counter adds what each minute
    gained since the previous scrape, and forgets minutes that left the window."""
    start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def minute(n: int, completed: int, failed: int) -> ThroughputBucket:
        return ThroughputBucket(start + timedelta(minutes=n), completed, failed)

    counter = AttemptCounter()
    assert counter.update([minute(0, 2, 1), minute(1, 0, 0)]) == (2, 1)
    assert counter.update([minute(0, 2, 1), minute(1, 3, 0)]) == (5, 1)
    # Minute 0 left the window, minute 1 gained one failure, minute 2 is new.
    assert counter.update([minute(1, 3, 1), minute(2, 1, 0)]) == (6, 2)
    # A minute whose attempts were pruned never makes the counter go down.
    assert counter.update([minute(1, 0, 0), minute(2, 1, 0)]) == (6, 2)
