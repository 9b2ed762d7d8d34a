"""`queuectl worker start|stop`."""

from __future__ import annotations

import argparse
import sys
import time

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import open_service
from queuectl.core.errors import UsageError

STOP_POLL = 0.2  # seconds between checks of `worker stop --wait`


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("worker", help="run or stop workers")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    start = commands.add_parser(
        "start",
        help="run workers in the foreground until SIGINT/SIGTERM",
        description="Run N worker processes until SIGINT or SIGTERM. The first signal lets "
        "running jobs finish; a second one kills them.",
    )
    start.add_argument(
        "--count", type=int, default=1, metavar="N", help="worker processes (default 1)"
    )
    start.add_argument(
        "--queue",
        action="append",
        metavar="Q",
        help="serve only this queue (repeat for several; default: all)",
    )
    start.add_argument("--burst", action="store_true", help="exit once no job is runnable now")
    noise = start.add_mutually_exclusive_group()
    noise.add_argument(
        "-v", "--verbose", action="store_true", help="log every job (the default on a terminal)"
    )
    noise.add_argument("-q", "--quiet", action="store_true", help="log only problems")
    start.set_defaults(handler=run_start)
    stop = commands.add_parser("stop", help="ask every active worker to stop gracefully")
    stop.add_argument("--wait", action="store_true", help="wait until they have stopped")
    stop.set_defaults(handler=run_stop)


def run_start(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise UsageError("--count must be at least 1")
    from queuectl.core.spec import check_queue

    queues = [
        check_queue(q.strip()) for item in args.queue or [] for q in item.split(",") if q.strip()
    ]
    import logging

    verbose = args.verbose or (sys.stderr.isatty() and not args.quiet)
    logging.basicConfig(
        stream=sys.stderr,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        level=logging.INFO if verbose else logging.WARNING,
    )
    open_service(args, create=True).store.close()  # a bad store fails here, once, before any fork
    from queuectl.worker.supervisor import start_workers

    return start_workers(args.db, args.count, queues or None, args.burst)


def run_stop(args: argparse.Namespace) -> int:
    service = open_service(args)
    asked = service.stop_workers()
    print(f"Asked {len(asked)} worker{'' if len(asked) == 1 else 's'} to stop.")
    if args.wait and asked:
        ids = {worker.id for worker in asked}
        while ids & {worker.id for worker in service.active_workers()}:
            time.sleep(STOP_POLL)
        print("All stopped.")
    return 0
