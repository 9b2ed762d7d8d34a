"""PostgreSQL rows to models: times are timestamptz, text cannot hold NUL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from queuectl.core.models import Job, WorkerInfo
from queuectl.store.rows import job_from_row


def without_nul(text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL, which binary job output often has: store U+FFFD,
    what the runner already shows for any byte that is not UTF-8."""
    return text.replace("\x00", "\ufffd") if text is not None else None


def worker_of(row: Sequence[Any]) -> WorkerInfo:
    """A WorkerInfo from the columns of WORKER_COLUMNS (queues are a text[] here)."""
    queues = tuple(row[7]) if row[7] else None
    return WorkerInfo(row[0], row[1], row[2], row[3], utc(row[4]), utc(row[5]), row[6], queues)


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def job_of(row: Sequence[Any]) -> Job:
    return job_from_row(row, utc)
