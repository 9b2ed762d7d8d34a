"""`queuectl store migrate --to TARGET`: move everything to another store."""

from __future__ import annotations

import argparse
import sys

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import counted, open_command_store


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("store", help="the store itself: migrate to another one")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    migrate = commands.add_parser(
        "migrate",
        help="copy every job, history, config, queue and schedule to another store",
        description="Copies the current store (--db / $QUEUECTL_DB) to --to and checks the "
        "counts per state. Refused while workers run on the current store, unless --pause. "
        "Example: queuectl store migrate --to postgresql://queuectl@db.internal/queuectl",
    )
    migrate.add_argument(
        "--to", required=True, metavar="TARGET", help="the new store (postgresql://... or a path)"
    )
    migrate.add_argument(
        "--pause",
        action="store_true",
        help="with workers running: pause every queue and schedule here, wait for running "
        "jobs to finish, then copy (this store stays paused)",
    )
    migrate.add_argument(
        "--timeout",
        default="5m",
        metavar="DURATION",
        help="with --pause: how long to wait for running jobs (default 5m)",
    )
    migrate.add_argument(
        "--merge", action="store_true", help="add to a target that already has jobs"
    )
    migrate.set_defaults(handler=run_migrate)


def run_migrate(args: argparse.Namespace) -> int:
    from queuectl.core.errors import UsageError
    from queuectl.core.fields import parse_duration
    from queuectl.core.redact import redact
    from queuectl.store import default_target, open_store
    from queuectl.transfer import migrate_store

    wait_timeout = parse_duration(args.timeout)
    source_target = args.db or default_target()
    if _same_store(source_target, args.to):
        raise UsageError("--to names the current store: give another one")
    source = open_command_store(args)
    try:
        target = open_store(args.to, create_folders=False)
    except BaseException:
        source.close()
        raise
    try:
        report = migrate_store(
            source,
            target,
            pause=args.pause,
            wait_timeout=wait_timeout,
            merge=args.merge,
            say=lambda text: print(text, file=sys.stderr),
        )
    finally:
        target.close()
        source.close()
    copied = ", ".join(f"{count} {state.value}" for state, count in report.counts.items() if count)
    print(
        f"Copied {counted(sum(report.counts.values()), 'job')} ({copied or 'none'}), "
        f"{counted(report.attempts, 'attempt')}, {counted(report.schedules, 'schedule')} and "
        f"{counted(report.queues, 'queue setting')}; the counts per state match."
    )
    print("Point every worker and client at the new store:")
    shown = redact(args.to, args.to)
    masked = "; *** stands for the password" if shown != args.to else ""
    print(f"  export QUEUECTL_DB='{shown}'   # or pass --db to each command{masked}")
    print("  queuectl worker start")
    if report.paused:
        print(
            "The old store's queues and schedules stay paused, so its workers run nothing "
            "more: stop them (queuectl worker stop --wait) and start workers on the new one."
        )
    return 0


def _same_store(first: str, second: str) -> bool:
    import os

    from queuectl.store import is_postgres, sqlite_path

    if is_postgres(first) or is_postgres(second):
        return first.rstrip("/") == second.rstrip("/")
    return os.path.realpath(sqlite_path(first)) == os.path.realpath(sqlite_path(second))
