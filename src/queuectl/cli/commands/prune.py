"""`queuectl prune --older-than AGE`: delete finished jobs to bound the store's growth."""

from __future__ import annotations

import argparse

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import add_json_flag, open_service, print_json


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "prune",
        help="delete finished jobs older than an age",
        description="Delete finished jobs (completed, dead, cancelled) that have not changed "
        "for AGE, with their history. Workers also do this on their own, after "
        "config retention-completed and retention-dead.",
    )
    parser.add_argument(
        "--state", metavar="S", help="only completed, dead or cancelled (comma-separate several)"
    )
    parser.add_argument("--older-than", metavar="AGE", required=True, help="30s, 15m, 2h, 7d")
    parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from queuectl.cli.commands.list_jobs import parse_states
    from queuectl.core.fields import parse_duration

    states = parse_states(args.state)
    older_than = parse_duration(args.older_than)
    count = open_service(args).prune(states, older_than, dry_run=args.dry_run)
    if args.json:
        print_json({"deleted": 0 if args.dry_run else count, "matched": count})
    else:
        verb = "Would delete" if args.dry_run else "Deleted"
        print(f"{verb} {count} job{'' if count == 1 else 's'}.")
    return 0
