"""Workers beyond the terminal: `worker start --detach` and `worker service` (a systemd unit)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from queuectl.core.errors import QueuectlError, StoreUnavailable, UsageError

if TYPE_CHECKING:
    from queuectl.cli.subparsers import Subparsers
    from queuectl.core.models import WorkerInfo

LOG_NAME = "workers.log"
# At each `--detach` start a log past this size is moved to workers.log.1 (replacing the
# previous one), so that the two files together stay under twice this size.
LOG_ROTATE_SIZE = 4 * 1024 * 1024  # bytes
REGISTER_TIMEOUT = 30.0  # seconds `--detach` waits for the workers to register
REGISTER_POLL = 0.1  # seconds between two looks
LOG_TAIL_LINES = 20  # lines of the log shown when detached workers exit at start
STOP_MARGIN = 30  # seconds beyond job-timeout that systemd waits for a graceful stop


class DetachFailed(QueuectlError):
    """The detached workers did not start."""


# -- worker start --detach -----------------------------------------------------------------


def start_detached(args: argparse.Namespace, queues: Sequence[str]) -> int:
    """Start `worker start` (the same options) as a process in a session of its own, its
    output appended to the log, and return once its workers are registered."""
    import socket
    import subprocess

    from queuectl.cli.context import counted, open_service

    service = open_service(args, create=True)  # a bad store fails here, in the foreground
    before = {worker.id for worker in service.active_workers()}
    log_path = _open_log_path()
    argv = [sys.executable, "-m", "queuectl"]
    if args.db:
        argv += ["--db", args.db]
    argv += ["worker", "start", "--count", str(args.count)]
    argv += [word for queue in queues for word in ("--queue", queue)]
    if args.burst:
        argv.append("--burst")
    # A log says what happened to each job unless asked to keep quiet.
    argv.append("--quiet" if args.quiet else "--verbose")
    with open(log_path, "ab") as log:
        os.fchmod(log.fileno(), 0o600)
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not in the terminal's session: its hangup and Ctrl+C
            close_fds=True,
        )
    host = socket.gethostname()
    deadline = time.monotonic() + REGISTER_TIMEOUT
    while True:
        started = [
            worker
            for worker in service.active_workers()
            if worker.id not in before and worker.host == host and _child_of(worker, proc.pid)
        ]
        if len(started) >= args.count:
            break
        status = proc.poll()
        if status is not None:
            if status == 0 and args.burst:
                print(f"The workers ran in burst mode and have exited; log: {log_path}")
                return 0
            _print_tail(log_path)
            raise DetachFailed(f"the workers exited at start (status {status}); log: {log_path}")
        if time.monotonic() > deadline:
            raise DetachFailed(
                f"the workers did not register within {REGISTER_TIMEOUT:g}s; they may still "
                f"be starting (supervisor pid {proc.pid}); log: {log_path}"
            )
        time.sleep(REGISTER_POLL)
    pids = ", ".join(str(worker.pid) for worker in sorted(started, key=lambda w: w.pid))
    print(
        f"Started {counted(len(started), 'worker')} in the background (pids {pids}; "
        f"supervisor {proc.pid})."
    )
    print(f"Log: {log_path}")
    print("Stop them with: queuectl worker stop")
    return 0


def _open_log_path() -> str:
    """The log in the queuectl home (created 0700), rotated when it has grown too big."""
    from queuectl.store import queuectl_home

    home = queuectl_home()
    os.makedirs(home, mode=0o700, exist_ok=True)
    path = os.path.join(home, LOG_NAME)
    try:
        if os.path.getsize(path) > LOG_ROTATE_SIZE:
            os.replace(path, path + ".1")
    except FileNotFoundError:
        pass
    return path


def _child_of(worker: WorkerInfo, parent: int) -> bool:
    """True when the worker's process was forked by `parent` (read from /proc)."""
    try:
        with open(f"/proc/{worker.pid}/stat", "rb") as handle:
            # After the command name in parentheses: state, then the parent's pid.
            fields = handle.read().rpartition(b")")[2].split()
        return int(fields[1]) == parent
    except (OSError, IndexError, ValueError):
        return False


def _print_tail(path: str) -> None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.readlines()[-LOG_TAIL_LINES:]
    except OSError:
        return
    sys.stderr.writelines(lines)


# -- worker service ---------------------------------------------------------------------------


def register_service(commands: Subparsers) -> None:
    service = commands.add_parser(
        "service",
        help="print (or --install) a systemd unit that runs workers at boot",
        description="Print a systemd unit for `queuectl worker start` on the current store, "
        "or write it with --install. Then: systemctl [--user] daemon-reload; systemctl "
        "[--user] enable --now queuectl-worker.",
    )
    service.add_argument("--user", action="store_true", help="a user unit (~/.config/systemd/user)")
    service.add_argument(
        "--install", action="store_true", help="write the unit file instead of printing it"
    )
    service.add_argument(
        "--count", type=int, default=1, metavar="N", help="worker processes (default 1)"
    )
    service.add_argument(
        "--queue", action="append", metavar="Q", help="serve only this queue (repeatable)"
    )
    service.set_defaults(handler=run_service)


UNIT_NAME = "queuectl-worker.service"


def run_service(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise UsageError("--count must be at least 1")
    from queuectl.cli.context import open_service, store_exists
    from queuectl.core.fields import check_queue
    from queuectl.core.settings import Settings

    queues = [check_queue(q.strip()) for item in args.queue or [] for q in item.split(",")]
    target = _absolute_target(args.db)
    # Reading the settings creates nothing: a store that does not exist yet (or cannot be
    # reached from here) has the defaults, and the unit works all the same.
    settings = Settings.from_stored({})
    if store_exists(args):
        with contextlib.suppress(StoreUnavailable):
            settings = open_service(args).settings()
    unit = unit_text(target, settings.job_timeout, args.count, queues, user=args.user)
    if not args.install:
        from queuectl.core.redact import redact

        shown = redact(target, target)
        if shown != target:  # never print a password: --install writes the real unit
            unit = unit.replace(target, shown)
            print("# the password is left out here: --install writes the unit with it")
        sys.stdout.write(unit)
        return 0
    path = _unit_path(args.user)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(unit)
    scope = "--user " if args.user else ""
    print(f"Wrote {path}.")
    print(f"Start it now and at every boot: systemctl {scope}daemon-reload && ", end="")
    print(f"systemctl {scope}enable --now {UNIT_NAME}")
    return 0


def unit_text(
    target: str, job_timeout: float, count: int, queues: Sequence[str], *, user: bool
) -> str:
    """A unit for `worker start` on `target`. KillMode=mixed: systemd's SIGTERM goes to the
    supervisor alone, which asks each worker to finish its job (a second signal from
    everyone at once would do the same, but would kill a running job's shell too); only
    after TimeoutStopSec is every process killed."""
    import shlex

    stop_timeout = int(job_timeout) + STOP_MARGIN
    argv = [sys.executable, "-m", "queuectl", "--db", target, "worker", "start"]
    argv += ["--count", str(count), *(word for queue in queues for word in ("--queue", queue))]
    argv.append("--verbose")
    network = "" if user else "After=network-online.target\nWants=network-online.target\n"
    return (
        "[Unit]\n"
        "Description=queuectl workers\n"
        f"{network}"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"ExecStart={shlex.join(argv).replace('%', '%%')}\n"  # % starts a specifier
        f"WorkingDirectory={os.path.expanduser('~') if user else '/'}\n"
        "KillMode=mixed\n"
        "KillSignal=SIGTERM\n"
        f"TimeoutStopSec={stop_timeout}\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "\n"
        "[Install]\n"
        f"WantedBy={'default.target' if user else 'multi-user.target'}\n"
    )


def _absolute_target(db: str | None) -> str:
    """The store as the unit must name it: systemd runs it elsewhere, without this
    shell's environment."""
    from queuectl.store import default_target, is_postgres, sqlite_file

    target = db or default_target()
    return target if is_postgres(target) else os.path.abspath(sqlite_file(target))


def _unit_path(user: bool) -> str:
    if user:
        config = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
        return os.path.join(config, "systemd", "user", UNIT_NAME)
    return os.path.join("/etc/systemd/system", UNIT_NAME)
