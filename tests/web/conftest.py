"""Fixtures for the dashboard: the app in-process (TestClient) and the real server."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Queuectl

pytest.importorskip("fastapi", reason="the dashboard extra is not installed")

from fastapi.testclient import TestClient

from queuectl.web.app import create_app

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(q: Queuectl) -> Iterator[TestClient]:
    """The dashboard app in-process, over a fresh store of each backend."""
    with TestClient(create_app(q.target, TOKEN)) as test_client:
        yield test_client


def enqueue_all(q: Queuectl, *jobs: dict[str, Any]) -> None:
    """Enqueue jobs in one `enqueue -` call (one process, not one per job)."""
    q.ok("enqueue", "-", input="".join(json.dumps(job) + "\n" for job in jobs))


def run_burst(q: Queuectl) -> None:
    """Run every job that is due now, then return."""
    q.ok("worker", "start", "--burst", "-q")


@dataclass
class Server:
    """A `queuectl dashboard` process and what it printed."""

    proc: subprocess.Popen[str]
    base: str  # http://127.0.0.1:PORT/
    sign_in: str | None  # the printed address with ?token=, when the token was printed
    lines: list[str]

    def stop(self, signum: int = signal.SIGINT, timeout: float = 20.0) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=timeout)


def start_dashboard(q: Queuectl, *args: str, timeout: float = 30.0) -> Server:
    """`queuectl dashboard --port 0 ARGS`; returns once it has printed where it listens."""
    proc = q.run_background("dashboard", "--port", "0", *args)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        # Drains stdout for the server's whole life, so that it never blocks on a full pipe.
        assert proc.stdout is not None
        with contextlib.suppress(ValueError, OSError):  # the pipe closed at teardown
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                if line.startswith("Press Ctrl+C"):
                    ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(timeout) or not any(line.startswith("Press") for line in lines):
        proc.kill()
        _, stderr = proc.communicate(timeout=10)
        raise AssertionError(f"dashboard did not start: {lines} {stderr}")
    address = next(line.split()[1] for line in lines if line.startswith("Dashboard:"))
    base = address.split("?")[0]
    return Server(proc, base, address if "?token=" in address else None, list(lines))
