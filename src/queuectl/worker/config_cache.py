"""A worker's copy of the config, re-read at most once a second.

The job loop and each background thread keep one (each reads through its own store
connection): `config set` reaches a running worker within a second, and an idle worker's
threads cost next to nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from queuectl.core.settings import Settings

MAX_AGE = 1.0  # seconds a copy is trusted


class ConfigCache:
    def __init__(self, read: Callable[[], Settings]) -> None:
        self._read = read
        self._settings: Settings | None = None
        self._read_at = 0.0

    def fresh(self) -> Settings:
        """The config, read again when the copy is older than MAX_AGE."""
        now = time.monotonic()
        if self._settings is None or now - self._read_at > MAX_AGE:
            self._settings = self._read()
            self._read_at = now
        return self._settings

    @property
    def last(self) -> Settings | None:
        """The copy at hand, however old (None before the first read): for when the store
        cannot be reached."""
        return self._settings
