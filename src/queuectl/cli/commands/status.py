"""`queuectl status [--json] [--watch]`: counts per state and the active workers."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import add_json_flag, open_service, print_json
from queuectl.core.states import JobState

if TYPE_CHECKING:
    from queuectl.service import QueueService, StatusReport

WATCH_INTERVAL = 2.0  # seconds between two refreshes of `status --watch`
CLEAR_SCREEN = "\033[H\033[2J"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("status", help="counts per state and active workers")
    add_json_flag(parser)
    parser.add_argument(
        "--watch",
        action="store_true",
        help=f"refresh every {WATCH_INTERVAL:g}s until Ctrl+C (with --json: one object a line)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not args.watch:
        from queuectl.store import quick_status

        found = quick_status(args.db)
        if found is not None:
            from queuectl.service import StatusReport

            _print(StatusReport(*found), args.json)
            return 0
    service = open_service(args)
    if not args.watch:
        _show(service, args.json)
        return 0
    # Ctrl+C is how a watch ends: a normal exit, not an interruption.
    try:
        while True:
            if sys.stdout.isatty() and not args.json:
                sys.stdout.write(CLEAR_SCREEN)
            _show(service, args.json, compact=True)
            sys.stdout.flush()
            time.sleep(WATCH_INTERVAL)
    except KeyboardInterrupt:
        return 0


def _show(service: QueueService, as_json: bool, *, compact: bool = False) -> None:
    service.rescue_stale()
    _print(service.status(), as_json, compact=compact)


def _print(report: StatusReport, as_json: bool, *, compact: bool = False) -> None:
    from queuectl.cli.render import status_text

    if as_json:
        jobs: dict[str, int] = {"total": report.total}
        jobs.update({state.value: report.counts[state] for state in JobState})
        value: dict[str, Any] = {
            "jobs": jobs,
            "workers": [worker.to_json() for worker in report.workers],
        }
        if compact:
            import json

            sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
        else:
            print_json(value)
    else:
        sys.stdout.write(status_text(report) + ("\n" if compact else ""))
