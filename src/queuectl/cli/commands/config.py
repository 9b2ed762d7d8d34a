"""`queuectl config list|get|set`: persistent settings stored with the jobs."""

from __future__ import annotations

import argparse

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import add_json_flag, open_service, print_json

KEY_HELP = "a config key; `queuectl config list` shows them all"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("config", help="persistent settings: list, get, set")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="every key with its value")
    add_json_flag(listing)
    listing.set_defaults(handler=run_list)
    get = commands.add_parser("get", help="print one key's bare value")
    get.add_argument("key", metavar="KEY", help=KEY_HELP)
    get.set_defaults(handler=run_get)
    put = commands.add_parser("set", help="set one key")
    put.add_argument("key", metavar="KEY", help=KEY_HELP)
    put.add_argument("value", metavar="VALUE")
    put.set_defaults(handler=run_set)


def run_list(args: argparse.Namespace) -> int:
    from queuectl.core.settings import CONFIG_KEYS

    service = open_service(args)
    if args.json:
        print_json(service.config_values())
        return 0
    items = service.config_items()
    width = max(len(key) for key, _ in items) + 2
    value_width = max(len(value) for _, value in items) + 2
    for key, value in items:
        print(f"{key:<{width}}{value:<{value_width}}# {CONFIG_KEYS[key].help}")
    return 0


def run_get(args: argparse.Namespace) -> int:
    print(open_service(args).config_get(args.key))
    return 0


def run_set(args: argparse.Namespace) -> int:
    value = open_service(args).config_set(args.key, args.value)
    print(f"{args.key} = {value}")
    return 0
