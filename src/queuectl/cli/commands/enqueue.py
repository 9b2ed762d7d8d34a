"""`queuectl enqueue JSON` and `queuectl enqueue -` (JSON lines on stdin)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import add_if_exists_flag, add_json_flag, open_service, print_json
from queuectl.core.errors import UsageError


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "enqueue",
        help="add a job from JSON (or many, one per line, with -)",
        description='Add a job: queuectl enqueue \'{"id":"job1","command":"make report"}\'. '
        "With -, read one JSON object per line from stdin, all or nothing; with --file F, "
        "from a file (JSON lines, or one JSON object).",
    )
    parser.add_argument(
        "job", metavar="JSON", nargs="?", help="a JSON object, or - for JSON lines on stdin"
    )
    parser.add_argument(
        "--file", metavar="F", help="read the jobs from this file instead (JSON lines)"
    )
    add_if_exists_flag(parser)
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, lines: Iterable[str] | None = None) -> int:
    """`lines`: stdin already read (by the plain path), for `enqueue -`."""
    path = getattr(args, "file", None)  # the fast path of cli/__init__.py has no --file
    if (path is None) == (args.job is None):
        raise UsageError("give a JSON object, - (JSON lines on stdin) or --file F")
    if path is not None:
        read = _read_file(path)
        # A file holding one job written over several lines is that job; else JSON lines.
        args.job, lines = ("".join(read), None) if _is_one_object(read) else ("-", read)
    service = open_service(args, create=True)
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


def _read_file(path: str) -> list[str]:
    try:
        with open(path, "rb") as handle:
            # Decoded as stdin is: a line that is not UTF-8 is refused by its number.
            return [raw.decode("utf-8", "surrogateescape") for raw in handle]
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


def _is_one_object(lines: list[str]) -> bool:
    """True for a single JSON object spread over several lines (not JSON lines)."""
    if sum(1 for line in lines if line.strip()) < 2:
        return False
    import json

    try:
        return isinstance(json.loads("".join(lines)), dict)
    except ValueError:
        return False
