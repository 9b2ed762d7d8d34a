"""`queuectl status [--json]`: counts per state and the active workers."""

from __future__ import annotations

import argparse
import sys

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import add_json_flag, open_service, print_json
from queuectl.core.states import JobState


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("status", help="counts per state and active workers")
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from queuectl.cli.render import status_text

    service = open_service(args)
    service.rescue_stale()
    report = service.status()
    if args.json:
        jobs: dict[str, int] = {"total": report.total}
        jobs.update({state.value: report.counts[state] for state in JobState})
        print_json({"jobs": jobs, "workers": [worker.to_json() for worker in report.workers]})
    else:
        sys.stdout.write(status_text(report))
    return 0
