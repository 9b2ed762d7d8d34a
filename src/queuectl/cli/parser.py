"""The argument parser: global options and the registry of subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from queuectl import __version__

# Each command's name and the module (in queuectl.cli.commands) that registers it, in the
# order `--help` lists them. A command line names one: only its module is imported, which
# keeps the start-up of `show`, `list` or `status` from paying for all the others.
COMMAND_MODULES: dict[str, str] = {
    "enqueue": "enqueue",
    "add": "add",
    "worker": "worker",
    "status": "status",
    "top": "top",
    "list": "list_jobs",
    "show": "show",
    "why": "why",
    "logs": "logs",
    "wait": "wait",
    "cancel": "cancel",
    "retry": "cancel",
    "dlq": "dlq",
    "doctor": "doctor",
    "prune": "prune",
    "queue": "queue",
    "schedule": "schedule",
    "export": "export",
    "import": "import_jobs",
    "store": "store",
    "config": "config",
    "dashboard": "dashboard",
    "completion": "completion",
}


class Parser(argparse.ArgumentParser):
    """argparse with the SPEC's error format: usage line, then `error: ...`, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {message}\n")


def build_parser(command: str | None = None) -> Parser:
    """The whole parser, or with `command` (a name from COMMAND_MODULES) only that
    command's part of it."""
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
    # argparse aligns the help column on the widest option (`-V, --version`), but measures
    # command names one indent short: without -V, `completion` got a line of its own.
    parser.add_argument("-V", "--version", action="version", version=f"queuectl {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    if command in COMMAND_MODULES:
        modules = [COMMAND_MODULES[command]]
    else:
        modules = list(dict.fromkeys(COMMAND_MODULES.values()))
    for name in modules:
        module = importlib.import_module(f"queuectl.cli.commands.{name}")
        module.register(subparsers)
    return parser
