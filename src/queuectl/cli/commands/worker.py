"""`queuectl worker start|stop`."""

from __future__ import annotations

import argparse
import sys
import time

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import add_json_flag, counted, open_service, print_json
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
    start.add_argument(
        "--detach",
        action="store_true",
        help="run them in the background, in a session of their own: return once they are "
        "registered (log: workers.log in the queuectl home)",
    )
    start.set_defaults(handler=run_start)
    stop = commands.add_parser("stop", help="ask every active worker to stop gracefully")
    stop.add_argument("--wait", action="store_true", help="wait until they have stopped")
    stop.set_defaults(handler=run_stop)
    listing = commands.add_parser(
        "list", help="every registered worker: active, stale (died) or stopped"
    )
    add_json_flag(listing)
    listing.set_defaults(handler=run_list)
    forget = commands.add_parser(
        "forget", help="delete the records of workers that died (their jobs rescued)"
    )
    forget.add_argument("ids", metavar="ID", nargs="*")
    forget.add_argument(
        "--stale", action="store_true", help="every dead worker whose jobs were rescued"
    )
    forget.set_defaults(handler=run_forget)
    from queuectl.cli.background import register_service

    register_service(commands)


def run_start(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise UsageError("--count must be at least 1")
    from queuectl.core.fields import check_queue

    queues = [
        check_queue(q.strip()) for item in args.queue or [] for q in item.split(",") if q.strip()
    ]
    if args.detach:
        from queuectl.cli.background import start_detached

        return start_detached(args, queues)
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
    from queuectl.worker_records import WorkerRecords

    asked = WorkerRecords(service).stop_active()
    print(f"Asked {counted(len(asked), 'worker')} to stop.")
    if args.wait and asked:
        ids = {worker.id for worker in asked}
        while ids & {worker.id for worker in service.active_workers()}:
            time.sleep(STOP_POLL)
        print("All stopped.")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from queuectl.worker_records import WorkerRecords

    service = open_service(args)
    records = WorkerRecords(service).records()
    if args.json:
        print_json([record.to_json() for record in records])
        return 0
    if not records:
        print("No workers registered.")
        return 0
    from rich import box
    from rich.table import Table

    from queuectl.cli.render import console, duration

    now = service.store.now()
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("ID", "HOST", "PID", "STATE", "LAST HEARTBEAT", "JOB", "QUEUES"):
        table.add_column(name, no_wrap=True)
    for record in records:
        info = record.info
        held = info.current_job_id or ", ".join(record.held_job_ids) or "-"
        table.add_row(
            info.id,
            info.host,
            str(info.pid),
            record.state,
            duration((now - info.last_heartbeat).total_seconds()) + " ago",
            held,
            ",".join(info.queues) if info.queues is not None else "all",
        )
    console().print(table, markup=False)
    return 0


def run_forget(args: argparse.Namespace) -> int:
    if args.stale == bool(args.ids):
        raise UsageError("give worker ids or --stale")
    from queuectl.worker_records import WorkerRecords

    records = WorkerRecords(open_service(args))
    forgotten = records.forget_stale() if args.stale else records.forget(args.ids)
    print(f"Forgot {counted(len(forgotten), 'worker')}{': ' if forgotten else '.'}", end="")
    print(", ".join(forgotten) + "." if forgotten else "")
    return 0
