"""`queuectl export`: the store as NDJSON (jobs with their history, config, schedules)."""

from __future__ import annotations

import argparse
import sys

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import open_command_store


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write every job with its history, config, queues and schedules as NDJSON",
        description="Example: queuectl export > jobs.ndjson; then, against another store, "
        "queuectl import < jobs.ndjson",
    )
    parser.add_argument(
        "--state",
        metavar="S",
        help="only jobs in this state (comma-separate several); config, queues and "
        "schedules are always written",
    )
    parser.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from queuectl.cli.commands.list_jobs import parse_states
    from queuectl.transfer import export_lines

    states = parse_states(args.state)
    store = open_command_store(args)
    if args.output is None:
        sys.stdout.writelines(export_lines(store, states))
        return 0
    count = 0
    with open(args.output, "w", encoding="utf-8") as out:
        for line in export_lines(store, states):
            out.write(line)
            count += 1
    print(f"Wrote {count} records to {args.output}.", file=sys.stderr)
    return 0
