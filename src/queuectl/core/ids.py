"""Job and worker identifiers."""

from __future__ import annotations

import os

JOB_ID_PATTERN = r"[A-Za-z0-9._:@-]{1,128}"  # for schemas; is_valid_job_id checks the same
JOB_ID_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@-"
MAX_JOB_ID_LENGTH = 128
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
# Byte value -> its letter of _ALPHABET (value % 36): one bytes.translate per id, which
# matters to `enqueue -` with 100,000 lines.
_TO_ALPHABET = bytes(ord(_ALPHABET[value % 36]) for value in range(256))


def _random_token(length: int) -> str:
    # os.urandom keeps `enqueue` free of the heavier `secrets`/`random` imports.
    return os.urandom(length).translate(_TO_ALPHABET).decode("ascii")


def new_job_id() -> str:
    """A short, URL-safe id (10 base-36 characters, about 51 bits)."""
    return _random_token(10)


def new_worker_id() -> str:
    return f"worker-{_random_token(6)}"


def is_valid_job_id(value: str) -> bool:
    # A character set and not a regex: `re` alone costs `enqueue` a third of its start-up.
    return 0 < len(value) <= MAX_JOB_ID_LENGTH and not value.strip(JOB_ID_CHARACTERS)
