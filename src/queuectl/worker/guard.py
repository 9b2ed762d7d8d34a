"""The guard: a small process that outlives the workers of one `worker start`, so that a
worker's jobs die with it however it dies.

Job shells are started with posix_spawn: no code runs between fork and exec, which keeps
spawning fast and safe beside the worker's threads, but also means the kernel's
parent-death signal cannot be set on them. The guard stands in for it. It runs in a
session of its own (a SIGKILL of the whole `worker start` process group, or a Ctrl+C,
does not reach it) and watches each worker process through a pidfd. The moment a worker
ends, it SIGKILLs every process carrying that worker's run marker
(`QUEUECTL_WORKER_ID=...`, which every job inherits), together with their process groups.
It exits once the supervisor has gone and every worker it watched has ended.

Protocol, on the guard's stdin: one line per worker, `PID NAME=VALUE\\n`.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time

from queuectl.leftovers import kill_processes_with_environment

FALLBACK_POLL = 0.05  # seconds between looks at workers where pidfds are unavailable


class GuardHandle:
    """The supervisor's side: starts the guard and tells it which workers to watch."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self._pipe: int | None = None
        self._watched: dict[int, str] = {}  # worker pid -> its run marker

    def start(self) -> bool:
        """Start (or restart) the guard; False if it cannot be started here."""
        self.close()
        reader, writer = os.pipe()
        try:
            self.pid = os.posix_spawn(
                sys.executable,
                [sys.executable, "-m", "queuectl.worker.guard"],
                dict(os.environ),
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, reader, 0),
                    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                ],
                setsid=True,
                setsigmask=(),
            )
        except OSError as exc:
            import logging  # here: the guard process itself runs without it

            logging.getLogger("queuectl.worker").warning(
                "cannot start the job guard (%s): jobs may outlive a killed worker", exc
            )
            os.close(writer)
            return False
        finally:
            os.close(reader)
        self._pipe = writer
        for pid, marker in list(self._watched.items()):
            self._send(pid, marker)
        return True

    def watch(self, pid: int, marker: str) -> None:
        self._watched[pid] = marker
        self._send(pid, marker)

    def forget(self, pid: int) -> None:
        self._watched.pop(pid, None)

    def close(self) -> None:
        """No more workers: the guard exits once those it watches have ended."""
        if self._pipe is not None:
            os.close(self._pipe)
            self._pipe = None

    def _send(self, pid: int, marker: str) -> None:
        if self._pipe is None:
            return
        try:
            os.write(self._pipe, f"{pid} {marker}\n".encode())
        except OSError:
            self.close()  # the guard is gone; the supervisor restarts it when it reaps it


def serve(stdin: int = 0) -> None:
    """The guard's loop: watch the workers named on `stdin` until none is left."""
    watched: dict[int, tuple[int, str]] = {}  # pidfd (or -pid without pidfds) -> worker
    poller = select.poll()
    poller.register(stdin, select.POLLIN)
    reading = True
    pending = b""
    while reading or watched:
        polled = [key for key in watched if key < 0]
        timeout = int(FALLBACK_POLL * 1000) if polled else None
        for fd, _ in poller.poll(timeout):
            if fd == stdin:
                chunk = os.read(stdin, 4096)
                if not chunk:
                    reading = False
                    poller.unregister(stdin)
                    continue
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    _watch(line, watched, poller)
            elif fd in watched:
                poller.unregister(fd)
                os.close(fd)
                _worker_ended(*watched.pop(fd))
        for key in polled:
            pid, marker = watched[key]
            if not _alive(pid):
                del watched[key]
                _worker_ended(pid, marker)


def _watch(line: bytes, watched: dict[int, tuple[int, str]], poller: select.poll) -> None:
    pid_text, _, marker = line.decode().partition(" ")
    pid = int(pid_text)
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        _worker_ended(pid, marker)  # ended before we looked
        return
    except (AttributeError, OSError):
        watched[-pid] = (pid, marker)  # no pidfds here: look every FALLBACK_POLL
        return
    watched[fd] = (pid, marker)
    poller.register(fd, select.POLLIN)


def _worker_ended(pid: int, marker: str) -> None:
    name, _, value = marker.partition("=")
    killed = kill_processes_with_environment({name: value})
    if killed:
        print(
            f"{time.strftime('%H:%M:%S')} worker pid {pid} ended: killed {len(killed)} "
            f"process{'' if len(killed) == 1 else 'es'} its jobs left running",
            file=sys.stderr,
            flush=True,
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main() -> int:
    # Its own session already keeps a terminal's signals away; a hangup must not end it
    # either while workers it watches still run. SIGTERM (a service manager) still does.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(BrokenPipeError):
        serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
