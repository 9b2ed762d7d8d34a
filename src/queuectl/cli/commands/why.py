"""`queuectl why ID`: why a job is not running now, in words."""

from __future__ import annotations

import argparse
import sys

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import add_json_flag, open_service, print_json


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "why",
        help="say why a job is not running now",
        description="Explain why a job is not running now: scheduled for later, waiting for "
        "a retry or for its dependencies, its queue paused or at its limit, no worker serving "
        "its queue, held by a worker that stopped sending heartbeats, or finished. Changes "
        "nothing.",
    )
    parser.add_argument("id", metavar="ID")
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    explanation = open_service(args).explain(args.id)
    if args.json:
        print_json(explanation.to_json())
        return 0
    reasons = explanation.reasons
    if explanation.runnable or explanation.state.value not in ("pending", "failed"):
        text = f"{explanation.job_id}: {reasons[0].message}\n"
    else:
        text = f"{explanation.job_id} is {explanation.state.value} and not running because:\n"
        text += "".join(f"  - {reason.message}\n" for reason in reasons)
    sys.stdout.write(text)
    return 0
