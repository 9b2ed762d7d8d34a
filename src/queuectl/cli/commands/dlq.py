"""`queuectl dlq list|retry|purge`: the dead-letter queue."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import add_json_flag, confirm, counted, open_service, print_json
from queuectl.core.errors import UsageError

if TYPE_CHECKING:
    from queuectl.service import QueueService


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("dlq", help="the dead-letter queue: list, retry, purge")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="jobs that exhausted their attempts")
    listing.add_argument(
        "--limit", type=int, default=0, metavar="N", help="the newest N dead jobs (default 0 = all)"
    )
    add_json_flag(listing)
    listing.set_defaults(handler=run_list)
    retry = commands.add_parser(
        "retry", help="move a dead job (or, with --all, every one) back to pending"
    )
    retry.add_argument("id", metavar="ID", nargs="?")
    retry.add_argument("--all", action="store_true", help="every job in the DLQ")
    retry.add_argument("--queue", metavar="Q", help="with --all: only this queue's jobs")
    add_json_flag(retry)
    retry.set_defaults(handler=run_retry)
    purge = commands.add_parser("purge", help="delete jobs in the DLQ, with their history")
    purge.add_argument(
        "--older-than", metavar="AGE", help="only jobs dead for at least this long (30m, 12h, 7d)"
    )
    purge.add_argument("--queue", metavar="Q", help="only this queue's jobs")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_json_flag(purge)
    purge.set_defaults(handler=run_purge)


def run_list(args: argparse.Namespace) -> int:
    from queuectl.cli.commands.list_jobs import checked_limit
    from queuectl.cli.render import print_jobs
    from queuectl.core.states import JobState
    from queuectl.store.base import JobFilter

    limit = checked_limit(args.limit)
    service = open_service(args)
    service.rescue_stale()
    jobs = service.list_jobs(JobFilter(states=(JobState.DEAD,), limit=limit))
    if args.json:
        print_json([job.to_json() for job in jobs])
    else:
        print_jobs(jobs, service.store.now(), empty="The DLQ is empty.")
    return 0


def run_retry(args: argparse.Namespace) -> int:
    if args.all == (args.id is not None):
        raise UsageError("give either a job ID or --all")
    if args.queue is not None and not args.all:
        raise UsageError("--queue goes with --all")
    if args.all:
        service = open_service(args)
        count = service.retry_all_dead(_queue(args.queue))
        if args.json:
            print_json({"retried": count})
        else:
            print(f"Moved {count} job{'' if count == 1 else 's'} from the DLQ to pending.")
            left = _left_dead(service, _queue(args.queue))
            if left:
                print(
                    f"{left} job{' stays' if left == 1 else 's stay'} in the DLQ: a job it "
                    "depends on stays dead or cancelled, or another job holds its dedupe key"
                    " (`queuectl dlq retry ID` says which)."
                )
        return 0
    job = open_service(args).retry_dead(args.id)
    if args.json:
        print_json(job.to_json())
    else:
        print(f"Job {job.id} moved from the DLQ to pending (attempts reset to 0).")
    return 0


def run_purge(args: argparse.Namespace) -> int:
    from queuectl.core.fields import parse_duration

    older_than = parse_duration(args.older_than) if args.older_than is not None else None
    queue = _queue(args.queue)
    service = open_service(args)
    if not args.yes:
        from queuectl.core.states import JobState
        from queuectl.store.base import JobFilter

        count = service.count_jobs(JobFilter(states=(JobState.DEAD,), queue=queue))[JobState.DEAD]
        question = (
            f"Delete {counted(count, 'dead job')}?"
            if older_than is None
            else f"Delete the dead jobs older than {args.older_than} ({count} in the DLQ)?"
        )
        # Off a terminal confirm() always refuses, even with nothing to delete: a script
        # must not work only as long as the DLQ happens to be empty.
        if (count or not sys.stdin.isatty()) and not confirm(question):
            print("Nothing deleted.")
            return 0
    deleted = service.purge_dead(older_than, queue)
    if args.json:
        print_json({"deleted": deleted})
    else:
        print(f"Deleted {deleted} job{'' if deleted == 1 else 's'} from the DLQ.")
    return 0


def _left_dead(service: QueueService, queue: str | None) -> int:
    """Dead jobs a bulk retry left behind: those waiting for a job that stays ended, and
    those whose dedupe key another job holds."""
    from queuectl.core.states import JobState
    from queuectl.store.base import JobFilter

    return service.count_jobs(JobFilter(states=(JobState.DEAD,), queue=queue))[JobState.DEAD]


def _queue(name: str | None) -> str | None:
    from queuectl.core.fields import check_queue

    return check_queue(name) if name is not None else None
