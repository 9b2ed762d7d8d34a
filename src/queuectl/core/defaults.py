"""Defaults of new jobs, in a module of their own so that `enqueue` reads them without
loading Settings (a dataclass); Settings uses the same values."""

from __future__ import annotations

DEFAULT_MAX_RETRIES = 3  # config max-retries
DEFAULT_JOB_TIMEOUT = 300.0  # seconds; config job-timeout
