"""`queuectl schedule add|list|remove|pause|resume`: recurring jobs from cron expressions."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import add_json_flag, open_command_store, print_json
from queuectl.core.errors import UsageError

if TYPE_CHECKING:
    from datetime import tzinfo

    from queuectl.core.schedule import Schedule
    from queuectl.scheduling import ScheduleService


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "schedule", help="recurring jobs: add, list, remove, pause, resume"
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    add = commands.add_parser(
        "add",
        help="enqueue a command at every time a cron expression names",
        description="Running workers enqueue one job per firing, once however many workers "
        "and hosts there are. Example: queuectl schedule add backup --cron '0 3 * * *' "
        "--tz Europe/Paris -- ./backup.sh",
    )
    add.add_argument("name", metavar="NAME", help="the schedule's name (letters, digits, -_.)")
    _add_options(add)
    add.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")
    add.set_defaults(handler=run_add)

    listing = commands.add_parser("list", help="schedules with their next and last firing")
    add_json_flag(listing)
    listing.set_defaults(handler=run_list)
    for name, helptext, handler in (
        ("remove", "delete a schedule (jobs it enqueued stay)", run_remove),
        ("pause", "no firings until resumed (those in between are skipped)", run_pause),
        ("resume", "fire again, from the next fire time on", run_resume),
    ):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("name", metavar="NAME")
        if name != "remove":
            add_json_flag(sub)
        sub.set_defaults(handler=handler)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cron",
        metavar="EXPR",
        help="5 fields: minute hour day-of-month month day-of-week (e.g. '*/5 * * * *'); "
        "a 6th field, seconds, may follow",
    )
    parser.add_argument(
        "--tz", default="UTC", metavar="ZONE", help="the expression's time zone (default UTC)"
    )
    parser.add_argument(
        "--catch-up",
        action="store_true",
        help="after downtime, run the most recent missed firing (default: skip missed ones)",
    )
    parser.add_argument("--paused", action="store_true", help="add it paused")
    parser.add_argument("--max-retries", type=int, metavar="N", help="as for add")
    parser.add_argument("--priority", type=int, metavar="P", help="as for add")
    parser.add_argument("--queue", metavar="Q", help="as for add")
    parser.add_argument("--timeout", metavar="S", help="as for add")
    parser.add_argument("--cwd", metavar="DIR", help="run in this directory")
    parser.add_argument("--env", action="append", metavar="K=V", default=[], help="as for add")
    add_json_flag(parser)


def _options_after_name(args: argparse.Namespace) -> None:
    """argparse hands everything after NAME to the command (a REMAINDER right after a
    positional takes all): read the options out of it, up to `--`."""
    from queuectl.cli.parser import Parser

    parser = Parser(prog="queuectl schedule add NAME", add_help=False)
    _add_options(parser)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    parser.parse_args(args.command, namespace=args)


def _service(args: argparse.Namespace) -> ScheduleService:
    from queuectl.scheduling import ScheduleService

    return ScheduleService(open_command_store(args))


def run_add(args: argparse.Namespace) -> int:
    if args.command[:1] != ["--"]:
        _options_after_name(args)
    if args.cron is None:
        raise UsageError("schedule add needs --cron EXPR, e.g. --cron '*/5 * * * *'")
    words = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not words:
        raise UsageError("schedule add needs a command after --, e.g. -- ./backup.sh")
    from queuectl.cli.commands.add import job_options, with_defaults
    from queuectl.core.cron import check_cron
    from queuectl.core.schedule import Schedule, check_schedule_name, check_timezone
    from queuectl.core.settings import Settings

    name = check_schedule_name(args.name)
    cron = check_cron(args.cron)
    timezone = check_timezone(args.tz)
    options = job_options(args, words, args.cwd)
    store = open_command_store(args, create=True)
    schedule = Schedule(
        name=name,
        cron=cron,
        timezone=timezone,
        **with_defaults(options, Settings.from_stored(store.get_config())),
        catch_up=args.catch_up,
        paused=args.paused,
    )
    from queuectl.scheduling import ScheduleService

    stored = ScheduleService(store).add(schedule)
    if args.json:
        print_json(stored.to_json())
    else:
        sys.stdout.write(f"Schedule {stored.name} added; {_next_text(stored)}.\n")
    return 0


def _next_text(schedule: Schedule) -> str:
    from queuectl.core.clock import format_timestamp

    if schedule.paused or schedule.next_fire_at is None:
        return "paused"
    local = schedule.next_fire_at.astimezone(_zone(schedule.timezone))
    return (
        f"next run at {format_timestamp(schedule.next_fire_at)} "
        f"({local:%Y-%m-%d %H:%M:%S} {schedule.timezone})"
    )


def _zone(name: str) -> tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def run_list(args: argparse.Namespace) -> int:
    schedules = _service(args).list()
    if args.json:
        print_json([schedule.to_json() for schedule in schedules])
        return 0
    if not schedules:
        print("No schedules.")
        return 0
    from rich import box
    from rich.table import Table

    from queuectl.cli.render import console
    from queuectl.core.clock import format_timestamp

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("NAME", "CRON", "TZ", "PAUSED", "NEXT RUN", "LAST FIRED", "QUEUE", "COMMAND"):
        table.add_column(column, no_wrap=column != "COMMAND", overflow="fold")
    for schedule in schedules:
        table.add_row(
            schedule.name,
            schedule.cron + (" (catch-up)" if schedule.catch_up else ""),
            schedule.timezone,
            "yes" if schedule.paused else "no",
            format_timestamp(schedule.next_fire_at) if schedule.next_fire_at else "-",
            format_timestamp(schedule.last_fired_at) if schedule.last_fired_at else "-",
            schedule.queue,
            schedule.command,
        )
    console().print(table, markup=False)
    return 0


def run_remove(args: argparse.Namespace) -> int:
    _service(args).remove(args.name)
    print(f"Schedule {args.name} removed.")
    return 0


def run_pause(args: argparse.Namespace) -> int:
    schedule = _service(args).pause(args.name)
    if args.json:
        print_json(schedule.to_json())
    else:
        print(f"Schedule {schedule.name} paused.")
    return 0


def run_resume(args: argparse.Namespace) -> int:
    schedule = _service(args).resume(args.name)
    if args.json:
        print_json(schedule.to_json())
    else:
        print(f"Schedule {schedule.name} resumed; {_next_text(schedule)}.")
    return 0
