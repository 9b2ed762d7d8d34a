"""`queuectl enqueue JSON` and `queuectl enqueue -` (JSON lines on stdin)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import add_if_exists_flag, add_json_flag, open_service, print_json


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "enqueue",
        help="add a job from JSON (or many, one per line, with -)",
        description='Add a job: queuectl enqueue \'{"id":"job1","command":"make report"}\'. '
        "With -, read one JSON object per line from stdin, all or nothing.",
    )
    parser.add_argument("job", metavar="JSON", help="a JSON object, or - for JSON lines on stdin")
    add_if_exists_flag(parser)
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, lines: Iterable[str] | None = None) -> int:
    """`lines`: stdin already read (by the plain path), for `enqueue -`."""
    service = open_service(args)
    # The fast path of cli/__init__.py parses no --if-exists: it means the default.
    skip = getattr(args, "if_exists", "error") == "skip"
    if args.job == "-":
        if lines is None:
            # Bytes, decoded here: a line that is not UTF-8 is then refused by its number
            # like any other bad line, whatever the locale's encoding of sys.stdin.
            lines = (raw.decode("utf-8", "surrogateescape") for raw in sys.stdin.buffer)
        jobs = service.enqueue_lines(lines, skip_duplicate_keys=skip)
    else:
        jobs = [service.enqueue_json(args.job, skip_duplicate_keys=skip)]
    if args.json:
        print_json(jobs[0].to_json() if args.job != "-" else [job.to_json() for job in jobs])
    else:
        sys.stdout.write("".join(f"{job.id}\n" for job in jobs))
    return 0
