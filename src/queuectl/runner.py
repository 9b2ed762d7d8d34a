"""run_shell(): run one command under /bin/sh in its own process group; knows nothing of jobs."""

from __future__ import annotations

import codecs
import contextlib
import errno
import math
import os
import select
import signal
import threading
import time
from collections.abc import Mapping

from queuectl.core.models import RunResult
from queuectl.leftovers import KILL_GRACE
from queuectl.reaping import REAPING, WAITED_FOR, reap_zombies

LEFTOVER_GRACE = 0.5  # seconds background processes get after the shell itself exits
READ_CHUNK = 65536  # bytes
POLL_SLICE = 0.1  # seconds; the longest wait between two looks at the clock and the shell
PR_SET_PDEATHSIG = 1  # prctl options, from <linux/prctl.h>
PR_SET_CHILD_SUBREAPER = 36
# A job with a working directory: the first shell enters it, then becomes the job's shell.
ENTER_CWD_THEN_RUN = 'cd -P -- "$1" || exit 126; exec /bin/sh -c "$2"'
# Signals a job starts with at their default action, whatever the worker did with them.
RESET_SIGNALS = tuple(
    getattr(signal, name)
    for name in (
        "SIGPIPE",
        "SIGXFSZ",
        "SIGINT",
        "SIGTERM",
        "SIGHUP",
        "SIGQUIT",
        "SIGUSR1",
        "SIGUSR2",
        "SIGALRM",
        "SIGCHLD",
        "SIGTTIN",
        "SIGTTOU",
        "SIGTSTP",
    )
    if hasattr(signal, name)
)


class ShellRun:
    """One run of a shell command; `kill()` may be called from another thread."""

    def __init__(
        self,
        command: str,
        *,
        timeout: float,
        output_limit: int,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        reap_orphans: bool = False,
    ) -> None:
        self.command = command
        # In a child subreaper (the worker), the job's orphaned background processes
        # become our children: reap them, or they linger as zombies.
        self.reap_orphans = reap_orphans
        self.timeout = timeout
        self.output_limit = output_limit
        self.env = env
        self.cwd = cwd
        self._kill_reason: str | None = None
        self._killed = threading.Event()
        self.pid: int | None = None
        self._output = bytearray()

    def output_so_far(self, *, final: bool = False) -> str:
        """The kept tail of the output, decoded; safe to call from another thread (each
        bytearray operation is atomic under the GIL). Until `final`, a multi-byte character
        still being written is left out rather than shown as U+FFFD: each save of a running
        job's output then only grows, which `logs -f` relies on."""
        tail = bytes(self._output[-self.output_limit :]) if self.output_limit else b""
        text, _ = codecs.utf_8_decode(tail, "replace", final)
        return text

    def _spawn_error(self, exc: OSError) -> str:
        if self.cwd is not None and not os.path.isdir(self.cwd):
            return f"working directory {self.cwd!r} does not exist"
        return exc.strerror or str(exc)

    def kill(self, reason: str) -> None:
        """Stop the run: its process group gets SIGTERM, then SIGKILL after a grace."""
        self._kill_reason = reason
        self._killed.set()

    @property
    def kill_reason(self) -> str | None:
        return self._kill_reason

    def run(self) -> RunResult:
        started = time.monotonic()
        reader, writer = os.pipe()  # both close-on-exec: the shell gets only its dup2 copies
        try:
            with REAPING:  # no reaper of orphans may take a shell another run waits for
                pid = spawn_shell(self.command, writer, env=self.env, cwd=self.cwd)
                if not self.reap_orphans:
                    WAITED_FOR.add(pid)
        except OSError as exc:
            os.close(reader)
            return RunResult(
                exit_code=None,
                spawn_error=self._spawn_error(exc),
                duration=time.monotonic() - started,
            )
        finally:
            os.close(writer)
        self.pid = pid
        try:
            timed_out, returncode = self._pump(pid, reader, started + self.timeout)
        finally:
            os.close(reader)
            with REAPING:
                WAITED_FOR.discard(pid)
        text = self.output_so_far(final=True)
        duration = time.monotonic() - started
        if returncode < 0:
            return RunResult(
                exit_code=None,
                signal=-returncode,
                timed_out=timed_out,
                output=text,
                duration=duration,
            )
        return RunResult(
            exit_code=None if timed_out else returncode,
            timed_out=timed_out,
            output=text,
            duration=duration,
        )

    def _pump(self, pid: int, pipe: int, deadline: float) -> tuple[bool, int]:
        """Collect output until the shell exits; kill the group on timeout or `kill()`.

        Returns (timed out, the shell's exit code or minus the signal that ended it)."""
        output = self._output
        os.set_blocking(pipe, False)
        poller = select.poll()
        poller.register(pipe, select.POLLIN)
        exit_fd = _pidfd(pid)
        if exit_fd is not None:
            poller.register(exit_fd, select.POLLIN)
        timed_out = False
        kill_at: float | None = None  # when SIGKILL follows the SIGTERM already sent
        pipe_open = True
        try:
            while (returncode := _exit_code(pid)) is None:
                now = time.monotonic()
                if kill_at is None and (now >= deadline or self._killed.is_set()):
                    timed_out = not self._killed.is_set()
                    _signal_group(pid, signal.SIGTERM)
                    kill_at = now + KILL_GRACE
                elif kill_at is not None and now >= kill_at:
                    _signal_group(pid, signal.SIGKILL)
                    kill_at = float("inf")
                # Wake for output, for the shell's exit (pidfd), or to check the clock.
                wait = min(deadline if kill_at is None else kill_at, now + POLL_SLICE) - now
                for fd, _ in poller.poll(max(0, math.ceil(wait * 1000))):
                    if fd == pipe and pipe_open:
                        pipe_open = _drain(pipe, output, self.output_limit)
                        if not pipe_open:
                            poller.unregister(pipe)
        finally:
            if exit_fd is not None:
                os.close(exit_fd)
        self._reap_leftovers(pid, pipe if pipe_open else None, output)
        return timed_out, returncode

    def _reap_leftovers(self, pgid: int, pipe: int | None, output: bytearray) -> None:
        """Background processes of a finished shell get a short grace, then are killed,
        so that no job leaves processes behind."""
        if not self._group_alive(pgid):
            if pipe is not None:
                _drain(pipe, output, self.output_limit)
            return
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + LEFTOVER_GRACE
        while self._group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.01)
        _signal_group(pgid, signal.SIGKILL)
        if pipe is not None:
            _drain(pipe, output, self.output_limit)
        while self._group_alive(pgid) and time.monotonic() < deadline + KILL_GRACE:
            time.sleep(0.01)

    def _group_alive(self, pgid: int) -> bool:
        if self.reap_orphans:
            reap_zombies()
        return _group_alive(pgid)


def spawn_shell(
    command: str, output: int, *, env: Mapping[str, str] | None, cwd: str | None
) -> int:
    """Start `/bin/sh -c command` in a session of its own, stdin from /dev/null, stdout and
    stderr into the file descriptor `output`; returns its pid.

    posix_spawn runs no Python between fork and exec (glibc uses a vfork-style clone), so it
    is safe in a threaded process and costs a fraction of a fork of the whole interpreter.
    It cannot change the working directory before the exec, so a `cwd` is entered by a
    first shell that then replaces itself with the job's (`exec`: still one process).
    """
    if cwd is None:
        argv = ["/bin/sh", "-c", command]
    else:
        cwd = os.path.abspath(cwd)
        if not os.path.isdir(cwd):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), cwd)
        if not os.access(cwd, os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), cwd)
        argv = ["/bin/sh", "-c", ENTER_CWD_THEN_RUN, "/bin/sh", cwd, command]
    return os.posix_spawn(
        "/bin/sh",
        argv,
        os.environ if env is None else env,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, output, 1),
            (os.POSIX_SPAWN_DUP2, output, 2),
        ],
        setsid=True,
        # The worker blocks its stop signals in every thread (they are read by a thread of
        # their own) and Python ignores SIGPIPE: the job starts with neither.
        setsigmask=(),
        setsigdef=RESET_SIGNALS,
    )


def run_shell(
    command: str,
    *,
    timeout: float,
    output_limit: int,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> RunResult:
    return ShellRun(command, timeout=timeout, output_limit=output_limit, env=env, cwd=cwd).run()


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children (Linux), so that a job's
    background processes can be found and reaped. False where not supported."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def set_parent_death_signal(signum: int) -> bool:
    """Ask Linux to send `signum` to this process when its parent dies."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when `pid` exits, so a poll wakes at once."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None  # old kernel: the loop looks at the process every POLL_SLICE instead


def _exit_code(pid: int) -> int | None:
    """The shell's exit code (minus the signal that killed it) once it has ended, else None."""
    done, status = os.waitpid(pid, os.WNOHANG)
    return None if done == 0 else os.waitstatus_to_exitcode(status)


def _drain(pipe: int, output: bytearray, limit: int) -> bool:
    """Read what the pipe has now, keeping only the last `limit` bytes. False at EOF."""
    while True:
        try:
            chunk = os.read(pipe, READ_CHUNK)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not chunk:
            return False
        output += chunk
        if len(output) > 2 * limit + READ_CHUNK:
            del output[: len(output) - limit]  # not [:-limit]: with limit 0 that keeps all


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
