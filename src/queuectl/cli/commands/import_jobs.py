"""`queuectl import`: read an export into this store, all or nothing."""

from __future__ import annotations

import argparse
import sys

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import add_json_flag, counted, open_command_store, print_json
from queuectl.core.errors import UsageError


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "import",
        help="add the jobs, config, queues and schedules of an export (queuectl export)",
        description="Every line is checked before anything is written; then all is written "
        "in one transaction, keeping states, times and histories. Example: "
        "queuectl --db postgresql://host/db import < jobs.ndjson",
    )
    parser.add_argument("file", nargs="?", metavar="FILE", help="the export (default: stdin)")
    parser.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave jobs and schedules that this store has already (default: refuse)",
    )
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from queuectl.transfer import import_contents, read_export

    if args.file in (None, "-"):
        contents = read_export(sys.stdin)
    else:
        try:
            with open(args.file, encoding="utf-8") as source:
                contents = read_export(source)
        except OSError as exc:
            raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    store = open_command_store(args, create=True)
    result = import_contents(store, contents, skip_existing=args.skip_existing)
    if args.json:
        print_json({"jobs": result.jobs, "skipped": result.skipped, "schedules": result.schedules})
    else:
        skipped = f" ({result.skipped} already there, skipped)" if result.skipped else ""
        jobs, schedules = counted(result.jobs, "job"), counted(result.schedules, "schedule")
        print(f"Imported {jobs}{skipped} and {schedules}.")
    return 0
