"""`queuectl queue list|pause|resume|limit|rate|webhook`: named queues and their controls."""

from __future__ import annotations

import argparse

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import add_json_flag, open_service, print_json
from queuectl.core.errors import UsageError


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("queue", help="queues: list, pause, resume, limit, rate")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="every queue with its counts, pause, limit and rate")
    add_json_flag(listing)
    listing.set_defaults(handler=run_list)
    pause = commands.add_parser("pause", help="start nothing new from a queue")
    pause.add_argument("name", metavar="Q")
    pause.set_defaults(handler=run_pause, paused=True)
    resume = commands.add_parser("resume", help="let a paused queue's jobs start again")
    resume.add_argument("name", metavar="Q")
    resume.set_defaults(handler=run_pause, paused=False)
    limit = commands.add_parser(
        "limit", help="run at most N jobs of a queue at once, across all workers and hosts"
    )
    limit.add_argument("name", metavar="Q")
    limit.add_argument("limit", metavar="N", help="a number, or `none` to remove the limit")
    limit.set_defaults(handler=run_limit)
    rate = commands.add_parser(
        "rate", help="start at most N jobs of a queue per second, minute or hour, across all hosts"
    )
    rate.add_argument("name", metavar="Q")
    rate.add_argument("rate", metavar="N/UNIT", help="30/m, 5/s, 100/h, or `none` to remove it")
    rate.set_defaults(handler=run_rate)
    webhook = commands.add_parser(
        "webhook", help="POST this queue's job events to a URL of its own (see webhook-url)"
    )
    webhook.add_argument("name", metavar="Q")
    webhook.add_argument(
        "url",
        metavar="URL",
        nargs="?",
        help="an http(s) URL, or `none` to remove it (without URL: show the queue's webhook)",
    )
    webhook.set_defaults(handler=run_webhook)


def run_list(args: argparse.Namespace) -> int:
    from queuectl.core.states import JobState

    queues = open_service(args).list_queues()
    if args.json:
        print_json([queue.to_json() for queue in queues])
        return 0
    if not queues:
        print("No queues yet.")
        return 0
    from rich import box
    from rich.table import Table

    from queuectl.cli.render import console

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name in (
        "QUEUE",
        "PAUSED",
        "LIMIT",
        "RATE",
        *(state.value.upper() for state in JobState),
    ):
        table.add_column(name, no_wrap=True, justify="left" if name == "QUEUE" else "right")
    for queue in queues:
        table.add_row(
            queue.name,
            "yes" if queue.paused else "no",
            "-" if queue.max_running is None else str(queue.max_running),
            "-" if queue.rate is None else str(queue.rate),
            *(str(queue.counts[state]) for state in JobState),
        )
    console().print(table, markup=False)
    return 0


def run_pause(args: argparse.Namespace) -> int:
    open_service(args, create=True).pause_queue(args.name, args.paused)
    print(f"Queue {args.name} {'paused' if args.paused else 'resumed'}.")
    return 0


def run_limit(args: argparse.Namespace) -> int:
    if args.limit.lower() == "none":
        limit = None
    else:
        try:
            limit = int(args.limit)
        except ValueError:
            raise UsageError(f"invalid limit {args.limit!r}: a number >= 0, or none") from None
    open_service(args, create=True).limit_queue(args.name, limit)
    print(
        f"Queue {args.name}: "
        + ("no limit." if limit is None else f"at most {limit} running at once.")
    )
    return 0


def run_rate(args: argparse.Namespace) -> int:
    from queuectl.core.rates import parse_rate

    rate = parse_rate(args.rate)  # a bad rate is refused before the store is opened
    open_service(args, create=True).rate_queue(args.name, rate)
    print(
        f"Queue {args.name}: "
        + ("no rate limit." if rate is None else f"at most {rate.describe()}.")
    )
    return 0


def run_webhook(args: argparse.Namespace) -> int:
    from queuectl.core.redact import redact

    if args.url is None:
        url = open_service(args).queue_webhook(args.name)
    else:
        url = open_service(args, create=True).set_queue_webhook(args.name, args.url)
    print(
        f"Queue {args.name}: "
        + (f"webhook {redact(url)}." if url else "no webhook of its own (config webhook-url).")
    )
    return 0
