"""The argument parser: global options and the registry of subcommands."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from queuectl import __version__
from queuectl.cli.commands import (
    add,
    cancel,
    completion,
    config,
    dashboard,
    dlq,
    doctor,
    enqueue,
    export,
    import_jobs,
    list_jobs,
    logs,
    prune,
    queue,
    schedule,
    show,
    status,
    store,
    top,
    wait,
    why,
    worker,
)

COMMANDS = (
    enqueue,
    add,
    worker,
    status,
    top,
    list_jobs,
    show,
    why,
    logs,
    wait,
    cancel,
    dlq,
    doctor,
    prune,
    queue,
    schedule,
    export,
    import_jobs,
    store,
    config,
    dashboard,
    completion,
)


class Parser(argparse.ArgumentParser):
    """argparse with the SPEC's error format: usage line, then `error: ...`, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {message}\n")


def build_parser() -> Parser:
    parser = Parser(
        prog="queuectl",
        description="A background job queue for shell commands.",
        epilog="Run `queuectl COMMAND --help` for a command's options.",
    )
    parser.add_argument(
        "--db",
        metavar="TARGET",
        help="the store: a SQLite file path, sqlite:///abs/path.db or postgresql://... "
        "(default: $QUEUECTL_DB, else $QUEUECTL_HOME/queuectl.db)",
    )
    parser.add_argument("--version", action="version", version=f"queuectl {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser
