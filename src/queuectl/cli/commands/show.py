"""`queuectl show ID`: one job with its attempt history and output."""

from __future__ import annotations

import argparse

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import add_json_flag, open_service, print_json


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("show", help="one job with its history and output")
    parser.add_argument("id", metavar="ID")
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from queuectl.cli.render import print_job
    from queuectl.store import quick_job

    found = quick_job(args.db, args.id)
    if found is None:
        service = open_service(args)
        service.rescue_stale()
        job = service.get_job(args.id)
        found = (
            job,
            service.job_history(job.id),
            service.store.now(),
            service.hook_deliveries(job.id),
        )
    job, history, now, events = found
    if args.json:
        print_json(
            job.to_json()
            | {"history": [attempt.to_json() for attempt in history]}
            | {"hook_deliveries": [event.to_json() for event in events]}
        )
    else:
        print_job(job, history, now, events)
    return 0
