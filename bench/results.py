"""What a figure produces (Result), how it is judged (Target), and the run sizes."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

TargetKind = Literal["ratio_min", "ratio_max", "value_min", "value_max", "excess_max"]


class BenchError(Exception):
    """A measurement could not be made (a command failed, timed out, lost jobs)."""


@dataclass(frozen=True)
class Target:
    """A goal from the issue: on the ratio to the reference, or on the value itself
    (`excess_max`: value minus reference, for "at most X ms beyond python -c pass")."""

    kind: TargetKind
    threshold: float
    text: str

    def check(self, value: float, reference: float | None) -> bool | None:
        if self.kind == "value_min":
            return value >= self.threshold
        if self.kind == "value_max":
            return value <= self.threshold
        if reference is None or reference <= 0:
            return None
        if self.kind == "ratio_min":
            return value / reference >= self.threshold
        if self.kind == "ratio_max":
            return value / reference <= self.threshold
        return value - reference <= self.threshold


@dataclass
class Result:
    """One line of the report: a figure on one backend, next to its reference."""

    figure: str  # "1. Throughput"
    name: str  # a short label for the summary table
    metric: str  # what exactly was measured
    backend: str
    value: float | None
    unit: str
    reference: float | None = None
    reference_label: str = ""
    target: Target | None = None
    detail: str = ""
    error: str | None = None
    # Why a comparison could not be made (a peer that is not installed or not asked
    # for): reported as such, never as a failure or a crash.
    not_measured: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.reference is None or self.reference <= 0:
            return None
        return self.value / self.reference

    @property
    def passed(self) -> bool | None:
        if self.error is not None or self.value is None or self.target is None:
            return None
        if self.not_measured is not None:
            return None
        return self.target.check(self.value, self.reference)


@dataclass(frozen=True)
class Sizes:
    """How much work each figure does: the issue's numbers, or small ones for --quick."""

    quick: bool
    throughput_jobs: int
    throughput_rounds: int  # interleaved rounds of xargs, queuectl and the peers
    enqueue_runs: int
    bulk_jobs: int
    latency_samples: int
    latency_idle_wait: float  # seconds a worker idles before the first sample
    idle_cpu_seconds: float
    scale_finished: int
    scale_pending: int
    cli_runs: int  # runs of status / list / show on the big store
    footprint_jobs: int
    footprint_idle_wait: float

    @classmethod
    def pick(cls, quick: bool) -> Sizes:
        if quick:
            return cls(True, 200, 2, 10, 5_000, 20, 2.0, 3.0, 20_000, 1_000, 3, 2_000, 1.0)
        return cls(False, 900, 5, 30, 100_000, 200, 2.0, 10.0, 1_000_000, 10_000, 15, 100_000, 2.0)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); fine for few samples."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
