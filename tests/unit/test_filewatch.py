"""FileWatch: an idle SQLite worker sleeps until the WAL is written to (issue 5)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from queuectl.store.filewatch import open_file_watch


def test_file_watch_wakes_when_another_writer_appends(tmp_path: Path) -> None:
    path = tmp_path / "store.db-wal"
    path.write_bytes(b"")
    watch = open_file_watch(str(path))
    if watch is None:
        pytest.skip("no inotify here: the store polls instead")
    try:
        assert watch.wait(0.05) is False  # nothing written yet

        def append() -> None:
            with path.open("ab") as handle:
                handle.write(b"frame")

        timer = threading.Timer(0.2, append)
        started = time.monotonic()
        timer.start()
        try:
            assert watch.wait(10.0) is True
        finally:
            timer.join()
        assert time.monotonic() - started < 5.0  # woken by the write, not the timeout
        assert watch.wait(0.05) is False  # the event was consumed
    finally:
        watch.close()


def test_file_watch_of_a_missing_file_is_none(tmp_path: Path) -> None:
    assert open_file_watch(str(tmp_path / "missing")) is None
