"""Job states: a module of its own so that light commands can name them cheaply."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """A job's state; the value is what the store and the JSON output hold."""

    PENDING = "pending"  # claimable once run_at <= now; set by enqueue and `dlq retry`
    PROCESSING = "processing"  # held by locked_by; set by a claim, left by finish or rescue
    COMPLETED = "completed"  # the latest attempt exited 0 (terminal)
    FAILED = "failed"  # the latest attempt failed; claimable again at run_at
    DEAD = "dead"  # attempts exhausted: the DLQ; only `dlq retry` moves it
    CANCELLED = "cancelled"  # cancelled by the user (terminal)
