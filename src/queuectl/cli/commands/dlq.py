"""`queuectl dlq list` and `queuectl dlq retry ID`: the dead-letter queue."""

from __future__ import annotations

import argparse

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import add_json_flag, open_service, print_json


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("dlq", help="the dead-letter queue: list, retry")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="jobs that exhausted their attempts")
    add_json_flag(listing)
    listing.set_defaults(handler=run_list)
    retry = commands.add_parser("retry", help="move a dead job back to pending, attempts reset")
    retry.add_argument("id", metavar="ID")
    add_json_flag(retry)
    retry.set_defaults(handler=run_retry)


def run_list(args: argparse.Namespace) -> int:
    from queuectl.cli.render import print_jobs
    from queuectl.core.states import JobState
    from queuectl.store.base import JobFilter

    service = open_service(args)
    service.rescue_stale()
    jobs = service.list_jobs(JobFilter(states=(JobState.DEAD,), limit=0))
    if args.json:
        print_json([job.to_json() for job in jobs])
    else:
        print_jobs(jobs, service.store.now(), empty="The DLQ is empty.")
    return 0


def run_retry(args: argparse.Namespace) -> int:
    job = open_service(args).retry_dead(args.id)
    if args.json:
        print_json(job.to_json())
    else:
        print(f"Job {job.id} moved from the DLQ to pending (attempts reset to 0).")
    return 0
