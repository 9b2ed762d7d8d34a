"""`queuectl logs ID [--attempt N] [-f]`: a job's output, followed live while it runs."""

from __future__ import annotations

import argparse
import re
import sys
import time

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import open_service
from queuectl.core.errors import WrongState

FOLLOW_POLL = 0.5  # seconds between two reads of a running job's output
ANCHOR = 200  # characters used to find where new output starts once the kept tail slides
CUT_SLACK = 3  # characters at the start of a slid tail that may be a cut multi-byte character
# CSI sequences (colours, cursor moves), OSC sequences (titles, links), and the short ones
# (ESC ( B, which `tput sgr0` sends; ESC 7 and ESC 8, which progress bars use).
ANSI_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[ -/]*[0-~]"
)


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "logs",
        help="print a job's output (-f follows it live)",
        description="Print the output of a job's latest attempt, or of attempt N. With -f, "
        "follow it until the attempt finishes. Colour codes are kept on a "
        "terminal and stripped elsewhere, unless --raw.",
    )
    parser.add_argument("id", metavar="ID")
    parser.add_argument("--attempt", type=int, metavar="N", help="that attempt (1 = the first)")
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new output until the attempt finishes",
    )
    parser.add_argument("--raw", action="store_true", help="keep ANSI escape sequences")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from queuectl.core.models import FINISHED_STATES

    service = open_service(args)
    keep_escapes = args.raw or sys.stdout.isatty()

    def write(text: str) -> None:
        sys.stdout.write(text if keep_escapes else ANSI_ESCAPE.sub("", text))
        sys.stdout.flush()

    while True:
        try:
            shown = service.job_output(args.id, args.attempt)
            break
        except WrongState:
            if not args.follow:  # not run yet: with -f, wait for it to start
                raise
        if service.get_job(args.id).state in FINISHED_STATES:
            # Cancelled before it ran: it never will, so waiting would never end. One more
            # look, in case it ran and finished in between (then its output is there).
            shown = service.job_output(args.id, args.attempt)
            break
        time.sleep(FOLLOW_POLL)
    write(shown.output)
    printed = shown.output
    while args.follow and not shown.finished:
        time.sleep(FOLLOW_POLL)
        service.rescue_stale()  # a run whose worker died ends here too, once its lease is out
        shown = service.job_output(args.id, shown.attempt)
        write(_new_part(printed, shown.output))
        printed = shown.output
    if printed and not printed.endswith("\n") and sys.stdout.isatty():
        sys.stdout.write("\n")
    return 0


def _new_part(before: str, now: str) -> str:
    """What `now` adds to `before`. Only the tail of the output is kept, so once it slides
    `now` is a suffix of `before` followed by new text: find the longest such suffix. The
    first characters of `now` are left out of the match, as the cut may fall inside a
    multi-byte character, which then decodes differently each time."""
    if now.startswith(before):
        return now[len(before) :]
    probe = now[CUT_SLACK : CUT_SLACK + ANCHOR]
    at = before.find(probe) if probe else -1
    while at >= 0:
        overlap = len(before) - at
        if now[CUT_SLACK : CUT_SLACK + overlap] == before[at:]:
            return now[CUT_SLACK + overlap :]
        at = before.find(probe, at + 1)
    return now
