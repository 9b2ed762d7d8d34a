"""`queuectl list`: jobs in enqueue order, the newest N."""

from __future__ import annotations

import argparse

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import add_json_flag, open_service, print_json
from queuectl.core.errors import UsageError
from queuectl.core.states import JobState

# A limit beyond any store's job count means "all"; passed on as it is, it would overflow
# the stores' 64-bit LIMIT (issue 4: found by fuzzing).
LIMIT_ALL_ABOVE = 2**62


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("list", help="list jobs")
    parser.add_argument(
        "--state",
        metavar="S",
        help="only jobs in this state "
        f"({', '.join(state.value for state in JobState)}); comma-separate "
        "several",
    )
    parser.add_argument("--queue", metavar="Q", help="only jobs of this queue")
    parser.add_argument(
        "--limit",
        type=int,
        default=100,
        metavar="N",
        help="the newest N jobs (default 100; 0 = all)",
    )
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def parse_states(text: str | None) -> tuple[JobState, ...]:
    if text is None:
        return ()
    states = []
    for name in text.split(","):
        try:
            states.append(JobState(name.strip().lower()))
        except ValueError:
            known = ", ".join(state.value for state in JobState)
            raise UsageError(f"unknown state {name.strip()!r} (choose from {known})") from None
    return tuple(states)


def checked_limit(limit: int) -> int:
    """`--limit N` as a store limit: 0 (and anything beyond any store) means all."""
    if limit < 0:
        raise UsageError("--limit must be >= 0")
    return 0 if limit > LIMIT_ALL_ABOVE else limit


def run(args: argparse.Namespace) -> int:
    limit = checked_limit(args.limit)
    from queuectl.cli.render import print_jobs
    from queuectl.core.fields import check_queue
    from queuectl.store.base import JobFilter

    queue = check_queue(args.queue) if args.queue is not None else None
    job_filter = JobFilter(states=parse_states(args.state), queue=queue, limit=limit)
    service = open_service(args)
    service.rescue_stale()
    jobs = service.list_jobs(job_filter)
    if args.json:
        print_json([job.to_json() for job in jobs])
    else:
        print_jobs(jobs, service.store.now())
    return 0
