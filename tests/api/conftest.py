"""A store of each backend for the Python API tests, and a Queue open on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from queuectl import Queue
from tests import pgtools

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=STORES)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store of each backend."""
    if request.param == "sqlite":
        yield str(tmp_path / "store" / "queuectl.db")
    else:
        with pgtools.fresh_database() as url:
            yield url


@pytest.fixture
def queue(target: str) -> Iterator[Queue]:
    with Queue(target) as opened:
        yield opened
