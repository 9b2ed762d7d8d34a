"""`queuectl worker start` as a user runs it, for the figures that need live workers."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time

from bench.env import POLL, STOP_TIMEOUT, Store, tail
from bench.procfs import worker_children
from bench.results import BenchError


class Workers:
    """`queuectl worker start --count N [--burst]` as a user runs it, in its own session
    so that a hung run can be killed as one process group."""

    def __init__(self, store: Store, count: int, *, burst: bool = False) -> None:
        self.store = store
        self.count = count
        args = ["worker", "start", "--count", str(count), "-q"]
        if burst:
            args.append("--burst")
        self.log_path = store.workdir / f"worker-{secrets.token_hex(3)}.log"
        self._log = self.log_path.open("wb")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            store.argv(*args),
            env=store.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=store.workdir,
            start_new_session=True,
        )

    def children(self, timeout: float = 30.0) -> list[int]:
        """The worker processes (the supervisor's children), once all `count` exist."""
        deadline = time.monotonic() + timeout
        while True:
            found = worker_children(self.proc.pid)
            if len(found) >= self.count:
                return found
            if self.proc.poll() is not None:
                raise BenchError(f"worker start exited {self.proc.returncode}: {self.logtail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"only {len(found)} of {self.count} workers started")
            time.sleep(POLL)

    def ready(self, timeout: float = 30.0) -> list[int]:
        """Children started and registered in the store: they are serving."""
        pids = self.children(timeout)
        self.store.wait_for(
            "workers to register", lambda: self.store.running_workers() >= self.count, timeout
        )
        return pids

    def wait(self, timeout: float) -> float:
        """Wait for a burst run to end by itself; its wall seconds since start."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            self.stop()
            raise BenchError(f"workers still running after {timeout:g}s") from exc
        elapsed = time.perf_counter() - self.started
        self._log.close()
        if code != 0:
            raise BenchError(f"worker start exited {code}: {self.logtail()}")
        return elapsed

    def stop(self) -> None:
        """SIGTERM to the supervisor (a graceful stop); SIGKILL to the group if it hangs."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT)
        self._log.close()

    def logtail(self) -> str:
        self._log.flush()
        return tail(self.log_path.read_bytes())

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
