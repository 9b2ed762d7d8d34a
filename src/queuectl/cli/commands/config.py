"""`queuectl config list|get|set`: persistent settings stored with the jobs."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import add_json_flag, open_service, print_json, store_exists

if TYPE_CHECKING:
    from queuectl.core.settings import Settings

KEY_HELP = "a config key; `queuectl config list` shows them all"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("config", help="persistent settings: list, get, set")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="every key with its value")
    add_json_flag(listing)
    listing.set_defaults(handler=run_list)
    get = commands.add_parser(
        "get", help="print one key's bare value (without KEY: every key, as list does)"
    )
    get.add_argument("key", metavar="KEY", nargs="?", help=KEY_HELP)
    add_json_flag(get)
    get.set_defaults(handler=run_get)
    put = commands.add_parser("set", help="set one key")
    put.add_argument("key", metavar="KEY", help=KEY_HELP)
    put.add_argument("value", metavar="VALUE")
    put.set_defaults(handler=run_set)


def run_list(args: argparse.Namespace) -> int:
    from queuectl.core.settings import CONFIG_KEYS, listed_texts, listed_values

    current = _settings(args)
    if args.json:
        print_json(listed_values(current))
        return 0
    items = listed_texts(current)
    width = max(len(key) for key, _ in items) + 2
    value_width = max(len(value) for _, value in items) + 2
    for key, value in items:
        print(f"{key:<{width}}{value:<{value_width}}# {CONFIG_KEYS[key].help}")
    return 0


def run_get(args: argparse.Namespace) -> int:
    if args.key is None:
        return run_list(args)
    from queuectl.core.settings import config_key, listed_values, shown_text

    spec = config_key(args.key)  # an unknown key is refused before the store is opened
    current = _settings(args)
    if args.json:
        print_json({spec.key: listed_values(current)[spec.key]})
    else:
        print(shown_text(spec.key, current.value_of(spec.key)))
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    """The store's settings; the defaults when the store does not exist yet (reading them
    creates nothing)."""
    from queuectl.core.settings import Settings

    if not store_exists(args):
        return Settings.from_stored({})
    return open_service(args).settings()


def run_set(args: argparse.Namespace) -> int:
    from queuectl.core.settings import shown_stored

    key, value = open_service(args, create=True).config_set(args.key, args.value)
    print(f"{key} = {shown_stored(key, value)}")
    return 0
