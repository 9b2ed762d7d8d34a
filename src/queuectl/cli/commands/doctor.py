"""`queuectl doctor`: check the store and the workers, say what is wrong, exit 1 if anything."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import add_json_flag, print_json
from queuectl.core.errors import QueuectlError, UsageError

if TYPE_CHECKING:
    from queuectl.core import health


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check the store and the workers for problems",
        description="Check for stale workers, jobs stuck past their lease, a full DLQ, an "
        "oversized SQLite WAL and store files open to other users. Exits 1 if any check fails.",
    )
    parser.add_argument(
        "--dlq-threshold",
        type=int,
        metavar="N",
        help="more dead jobs than this is a problem (default: config dlq-threshold, 100)",
    )
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from queuectl.core import health

    if args.dlq_threshold is not None and args.dlq_threshold < 0:
        raise UsageError("--dlq-threshold must be >= 0")
    checks = [_without_passwords(check, args.db) for check in _diagnose(args)]
    failed = health.has_problem(checks)
    if args.json:
        print_json({"ok": not failed, "checks": [check.to_json() for check in checks]})
    else:
        width = max(len(check.name) for check in checks) + 2
        for check in checks:
            sys.stdout.write(f"{check.status.value:<6}{check.name:<{width}}{check.reason}\n")
        problems = sum(check.status is health.Status.FAIL for check in checks)
        sys.stdout.write(
            f"{problems} problem{'' if problems == 1 else 's'} found.\n"
            if problems
            else "No problems found.\n"
        )
    return 1 if failed else 0


def _without_passwords(check: health.Check, target: str | None) -> health.Check:
    """The check as printed: a reason or a path may quote the store's target."""
    from dataclasses import replace

    from queuectl.core.redact import redact
    from queuectl.store import default_target

    target = target or default_target()
    return replace(
        check,
        reason=redact(check.reason, target),
        items=tuple(redact(item, target) for item in check.items),
    )


def _diagnose(args: argparse.Namespace) -> list[health.Check]:
    """The checks; a store that cannot be opened or read is itself the failed check."""
    from queuectl.core import health
    from queuectl.diagnosis import diagnose
    from queuectl.service import QueueService
    from queuectl.store import open_existing_store

    try:
        store = open_existing_store(args.db)
    except UsageError:
        raise  # a malformed target is bad usage (exit 2), not a finding
    except QueuectlError as exc:
        return [health.Check("store", health.Status.FAIL, exc.message)]
    try:
        return diagnose(QueueService(store), args.dlq_threshold)
    except UsageError:
        raise
    except QueuectlError as exc:
        return [health.Check("store", health.Status.FAIL, exc.message)]
    finally:
        store.close()
