"""/metrics in the Prometheus text format, read from the store at scrape time, and /healthz.

The store is the source of truth shared by every worker on every host, so the collector
asks it on each scrape instead of counting events in this process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from queuectl.core.errors import QueuectlError
from queuectl.core.models import JobState
from queuectl.core.redact import redact
from queuectl.store.base import JobFilter, ThroughputBucket
from queuectl.web import schemas

if TYPE_CHECKING:
    from queuectl.web.pool import ServicePool

THROUGHPUT_WINDOW = 60  # minutes of attempts the counters look back on each scrape
DURATION_WINDOW = 600.0  # seconds: run durations come from jobs finished this recently
DURATION_SAMPLE = 200  # at most this many of them per state, the newest
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)  # seconds
RUN_ENDED = (JobState.COMPLETED, JobState.FAILED, JobState.DEAD)

router = APIRouter()


class AttemptCounter:
    """Monotonic totals of finished attempts, from the per-minute counts of the store.

    Each scrape adds what each minute gained since the last one, so the totals only grow
    (Prometheus' rate() needs that) even though the store only answers "per minute, over
    the last hour". The first scrape starts from that hour; a restart resets to it, which
    rate() treats as any counter reset.
    """

    def __init__(self) -> None:
        self._seen: dict[datetime, tuple[int, int]] = {}
        self.completed = 0
        self.failed = 0
        self._lock = threading.Lock()

    def update(self, buckets: list[ThroughputBucket]) -> tuple[int, int]:
        with self._lock:
            for bucket in buckets:
                completed, failed = self._seen.get(bucket.start, (0, 0))
                self.completed += max(0, bucket.completed - completed)
                self.failed += max(0, bucket.failed - failed)
                self._seen[bucket.start] = (
                    max(completed, bucket.completed),
                    max(failed, bucket.failed),
                )
            if buckets:
                oldest = buckets[0].start
                self._seen = {start: seen for start, seen in self._seen.items() if start >= oldest}
            return self.completed, self.failed


class StoreCollector(Collector):
    def __init__(self, pool: ServicePool) -> None:
        self.pool = pool
        self.attempts = AttemptCounter()

    def collect(self) -> Iterator[Metric]:
        with self.pool.service() as service:
            queues = service.list_queues()
            workers = service.active_workers()
            buckets = service.throughput(THROUGHPUT_WINDOW)
            since = service.store.now() - timedelta(seconds=DURATION_WINDOW)
            # One state at a time: the newest N of one state is an index walk that stops
            # early, while a filter on several states or on the update time sorts every
            # match (a second or more in a store of a million jobs).
            recent = [
                job
                for state in RUN_ENDED
                for job in service.list_jobs(JobFilter(states=(state,), limit=DURATION_SAMPLE))
                if job.finished_at is not None and job.finished_at >= since
            ]
        jobs = GaugeMetricFamily(
            "queuectl_jobs", "Jobs in the store, per queue and state", labels=["queue", "state"]
        )
        paused = GaugeMetricFamily(
            "queuectl_queue_paused", "1 while the queue is paused", labels=["queue"]
        )
        for info in queues:
            for state in JobState:
                jobs.add_metric([info.name, state.value], info.counts.get(state, 0))
            paused.add_metric([info.name], 1 if info.paused else 0)
        yield jobs
        yield paused
        yield GaugeMetricFamily(
            "queuectl_workers_active",
            "Registered workers with a fresh heartbeat",
            value=len(workers),
        )
        completed, failed = self.attempts.update(buckets)
        attempts = CounterMetricFamily(
            "queuectl_attempts",
            "Finished attempts, by outcome (failed: non-zero exit, timeout, lost worker)",
            labels=["outcome"],
        )
        attempts.add_metric(["completed"], completed)
        attempts.add_metric(["failed"], failed)
        yield attempts
        durations = [
            (job.finished_at - job.started_at).total_seconds()
            for job in recent
            if job.started_at is not None
            and job.finished_at is not None
            and job.finished_at >= job.started_at
        ]
        yield histogram(durations)


def histogram(durations: list[float]) -> HistogramMetricFamily:
    buckets = [
        (f"{bound:g}", float(sum(1 for value in durations if value <= bound)))
        for bound in DURATION_BUCKETS
    ]
    buckets.append(("+Inf", float(len(durations))))
    return HistogramMetricFamily(
        "queuectl_job_run_duration_seconds",
        f"Run time of the latest attempt of jobs that finished in the last "
        f"{DURATION_WINDOW:g} s (at most the newest {DURATION_SAMPLE} per state)",
        buckets=buckets,
        sum_value=sum(durations),
    )


def registry_for(pool: ServicePool) -> CollectorRegistry:
    """A registry of this app's own: a second app (tests) must not meet the first's."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(pool))
    return registry


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={503: {"model": schemas.ErrorBody, "description": "the store cannot be reached"}},
    tags=["operations"],
)
def metrics(request: Request) -> Response:
    """Prometheus metrics: jobs per queue and state, attempts, run durations, workers."""
    body = generate_latest(request.app.state.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/healthz",
    response_model=schemas.Health,
    responses={503: {"model": schemas.Health, "description": "the store cannot be reached"}},
    tags=["operations"],
)
def healthz(request: Request) -> JSONResponse:
    """200 when the store answers a query, 503 (with the reason) when it does not."""
    try:
        with request.app.state.pool.service() as service:
            service.settings()  # one real read of the store
    except QueuectlError as exc:
        message = redact(exc.message, request.app.state.target)
        return JSONResponse({"ok": False, "error": message}, status_code=503)
    return JSONResponse({"ok": True})
