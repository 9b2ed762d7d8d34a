"""Fixtures of the PostgreSQL-only command tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pgtools
from tests.conftest import Queuectl


@pytest.fixture
def q_pg(tmp_path: Path) -> Iterator[Queuectl]:
    """The `queuectl` command, in a subprocess, against a fresh PostgreSQL database."""
    with pgtools.fresh_database() as url:
        handle = Queuectl(url, tmp_path / "home")
        yield handle
        handle.stop_all()
