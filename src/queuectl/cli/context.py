"""Opening the service for a command, and small output helpers shared by commands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from queuectl.service import QueueService
    from queuectl.store.base import Store


def open_service(
    args: argparse.Namespace, *, durable: bool = True, create: bool = False
) -> QueueService:
    """The service over the store `args.db` names. Only a command that writes passes
    `create`: any other refuses a store that does not exist (SPEC 1), so that a mistyped
    `--db` never looks like an empty queue. Folders are created for the default location
    only."""
    # Imported here so that building the parser stays cheap for every command.
    from queuectl.service import QueueService

    return QueueService(open_command_store(args, durable=durable, create=create))


def open_command_store(
    args: argparse.Namespace, *, durable: bool = True, create: bool = False
) -> Store:
    """The store `args.db` names, with every role (schedules, transfers): for the commands
    whose services are not QueueService. `create` as for open_service."""
    from queuectl.store import is_default_location, open_store, require_existing

    if not create:
        require_existing(args.db)
    return open_store(args.db, durable=durable, create_folders=is_default_location(args.db))


def store_exists(args: argparse.Namespace) -> bool:
    """False for a SQLite store that has not been created yet."""
    from queuectl.core.errors import StoreUnavailable
    from queuectl.store import require_existing

    try:
        require_existing(args.db)
    except StoreUnavailable:
        return False
    return True


def counted(count: int, noun: str) -> str:
    """`1 job`, `2 jobs`: a count with its noun (regular plurals only)."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def confirm(question: str) -> bool:
    """Ask on a terminal; elsewhere refuse, since nobody can answer (`--yes` skips it)."""
    from queuectl.core.errors import UsageError

    if not sys.stdin.isatty():
        asked = question[:1].lower() + question[1:].rstrip("?")
        raise UsageError(f"nothing done: confirm with --yes to {asked} (no terminal to ask on)")
    answer = input(f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def add_if_exists_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--if-exists",
        choices=("error", "skip"),
        default="error",
        help="when an unfinished job has the same dedupe key: refuse (error, the default) "
        "or add nothing and print that job's id (skip)",
    )
