"""Job and worker identifiers."""

from __future__ import annotations

import os
import re

VALID_JOB_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _random_token(length: int) -> str:
    # os.urandom keeps `enqueue` free of the heavier `secrets`/`random` imports.
    return "".join(_ALPHABET[byte % 36] for byte in os.urandom(length))


def new_job_id() -> str:
    """A short, URL-safe id (10 base-36 characters, about 51 bits)."""
    return _random_token(10)


def new_worker_id() -> str:
    return f"worker-{_random_token(6)}"


def is_valid_job_id(value: str) -> bool:
    return VALID_JOB_ID.fullmatch(value) is not None
