"""`queuectl cancel ID...` and `queuectl retry ID`: stop a job, or give it another chance."""

from __future__ import annotations

import argparse

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import add_json_flag, open_service, print_json


def register(subparsers: Subparsers) -> None:
    cancel = subparsers.add_parser(
        "cancel",
        help="cancel jobs (a running one has its processes killed)",
        description="A pending or failed job becomes cancelled and never runs again unless "
        "retried; a processing one has its process group killed by its worker, "
        "on whichever host, within a heartbeat.",
    )
    cancel.add_argument("ids", metavar="ID", nargs="+")
    add_json_flag(cancel)
    cancel.set_defaults(handler=run_cancel)
    retry = subparsers.add_parser(
        "retry", help="move a dead or cancelled job back to pending, attempts reset"
    )
    retry.add_argument("id", metavar="ID")
    add_json_flag(retry)
    retry.set_defaults(handler=run_retry)


def run_cancel(args: argparse.Namespace) -> int:
    jobs = open_service(args).cancel(args.ids)
    if args.json:
        print_json([job.to_json() for job in jobs])
    else:
        for job in jobs:
            print(f"Cancelled {job.id}.")
    return 0


def run_retry(args: argparse.Namespace) -> int:
    job = open_service(args).retry(args.id)
    if args.json:
        print_json(job.to_json())
    else:
        print(f"Job {job.id} is pending again (attempts reset to 0).")
    return 0
