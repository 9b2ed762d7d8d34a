"""Running a command on a pseudo-terminal, for what queuectl does only on a terminal."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence

ROWS, COLUMNS = 40, 120


def run_on_terminal(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    answer: str | None = None,
    timeout: float = 30.0,
) -> tuple[int, str]:
    """Run `argv` with stdin, stdout and stderr on a new pseudo-terminal; type `answer` into
    it. Returns the exit status and everything the terminal showed (CRLF made LF)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    try:
        proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=dict(env, TERM="xterm-256color"),
            start_new_session=True,
        )
    finally:
        os.close(slave)
    if answer is not None:
        os.write(master, answer.encode())
    shown = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                proc.wait(timeout=10)
                raise AssertionError(f"{' '.join(argv)} still running after {timeout}s")
            ready, _, _ = select.select([master], [], [], left)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every process holding the terminal has closed it
                break
            if not data:
                break
            shown += data
    finally:
        os.close(master)
    proc.wait(timeout=10)
    return proc.returncode, shown.decode(errors="replace").replace("\r\n", "\n")
