"""run_shell(): run one command under /bin/sh in its own process group; knows nothing of jobs."""

from __future__ import annotations

import codecs
import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping

from queuectl.core.models import RunResult

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL for a timed-out or killed run
LEFTOVER_GRACE = 0.5  # seconds background processes get after the shell itself exits
READ_CHUNK = 65536  # bytes
PR_SET_PDEATHSIG = 1  # prctl options, from <linux/prctl.h>
PR_SET_CHILD_SUBREAPER = 36


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
        die_with_parent: bool = False,
    ) -> None:
        self.command = command
        # The shell gets SIGKILL when the process (thread) that started it dies, so that a
        # worker killed outright does not leave its job running unsupervised (Linux).
        self.die_with_parent = die_with_parent
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
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", self.command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self.env,
                cwd=self.cwd,
                preexec_fn=_die_with_parent_hook() if self.die_with_parent else None,
            )
        except OSError as exc:
            return RunResult(
                exit_code=None,
                spawn_error=self._spawn_error(exc),
                duration=time.monotonic() - started,
            )
        self.pid = proc.pid
        output = self._output
        timed_out = self._pump(proc, output, started + self.timeout)
        returncode = proc.wait()
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

    def _pump(self, proc: subprocess.Popen[bytes], output: bytearray, deadline: float) -> bool:
        """Collect output until the shell exits; kill the group on timeout. True if timed out."""
        assert proc.stdout is not None
        pipe = proc.stdout.fileno()
        os.set_blocking(pipe, False)
        selector = selectors.DefaultSelector()
        selector.register(pipe, selectors.EVENT_READ)
        exit_fd = _watch_exit(selector, proc.pid)
        timed_out = False
        kill_at: float | None = None  # when SIGKILL follows the SIGTERM already sent
        pipe_open = True
        try:
            while proc.poll() is None:
                now = time.monotonic()
                if kill_at is None and (now >= deadline or self._killed.is_set()):
                    timed_out = not self._killed.is_set()
                    _signal_group(proc.pid, signal.SIGTERM)
                    kill_at = now + KILL_GRACE
                elif kill_at is not None and now >= kill_at:
                    _signal_group(proc.pid, signal.SIGKILL)
                    kill_at = float("inf")
                # Wake for output, for the shell's exit (pidfd), or to check the clock.
                wait = min(deadline if kill_at is None else kill_at, now + 0.1) - now
                for key, _ in selector.select(max(0.0, wait)):
                    if key.fd == pipe:
                        pipe_open = _drain(pipe, output, self.output_limit)
                        if not pipe_open:
                            selector.unregister(pipe)
        finally:
            selector.close()
            if exit_fd is not None:
                os.close(exit_fd)
        self._reap_leftovers(proc.pid, pipe if pipe_open else None, output)
        proc.stdout.close()
        return timed_out

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
            _reap_zombies()
        return _group_alive(pgid)


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


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A function for the child between fork and exec: SIGKILL on the parent's death.

    prctl is looked up here, in the parent, so the child only calls it. If the parent died
    before the call took effect, the child is already an orphan: it exits at once.
    """
    prctl = _libc_prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return hook


def _libc_prctl() -> Callable[..., int] | None:
    global _prctl
    if _prctl is None:
        try:
            import ctypes

            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            return None
    return _prctl


_prctl: Callable[..., int] | None = None


def kill_processes_with_environment(
    required: Mapping[str, str], *, wait: float = KILL_GRACE
) -> list[int]:
    """SIGKILL every process of this host whose environment holds all of `required`, and
    wait (up to `wait` seconds) until they are gone; returns their pids.

    Environments are inherited, so this finds a run's background processes too, even once
    the process that started them is dead and they were handed to init. Processes of other
    users cannot be read and are left alone; zombies have no environment and never match.
    """
    wanted = {f"{key}={value}".encode() for key, value in required.items()}
    killed: list[int] = []
    deadline = time.monotonic() + wait
    while True:
        found = [pid for pid in _pids_with_environment(wanted) if pid not in killed]
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed.extend(found)
        # Scan again: a process may have forked between the scan and its kill.
        if not found and not any(_pid_alive(pid) for pid in killed):
            return killed
        if time.monotonic() > deadline:
            return killed
        time.sleep(0.01)


def _pids_with_environment(wanted: set[bytes]) -> list[int]:
    me = os.getpid()
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    found = []
    for name in names:
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:
            continue
        if wanted.issubset(environ.split(b"\0")):
            found.append(int(name))
    return found


def _pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (dead, not yet reaped) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] not in (b"Z", b"X")


def _watch_exit(selector: selectors.BaseSelector, pid: int) -> int | None:
    """Register a pidfd so that the selector also wakes when the shell exits."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None  # old kernel: the loop polls the process every 0.1 s instead
    selector.register(fd, selectors.EVENT_READ)
    return fd


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


def _reap_zombies() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
