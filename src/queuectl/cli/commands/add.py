"""`queuectl add [options] -- CMD ARGS...`: one job from a command line, no JSON."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import TYPE_CHECKING, Any

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import add_if_exists_flag, add_json_flag, open_service, print_json
from queuectl.core.errors import UsageError

if TYPE_CHECKING:
    from queuectl.core.settings import Settings


# When each of a job's own hooks runs (docs/HOOKS.md).
HOOK_WHEN = {
    "on_complete": "when the job completes",
    "on_fail": "when an attempt fails and will be retried",
    "on_dead": "when the job dies (DLQ)",
    "on_cancel": "when the job is cancelled",
}


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "add",
        help="add a job from a command line",
        description="Add a job without writing JSON: queuectl add --max-retries 5 -- make "
        "report. One argument is taken as a shell line as it is; several are "
        "quoted and joined, so each stays one argument.",
    )
    parser.add_argument("--id", help="the job id (default: a generated one)")
    parser.add_argument(
        "--max-retries",
        type=int,
        metavar="N",
        help="attempts before the DLQ (default: config max-retries)",
    )
    parser.add_argument("--priority", type=int, metavar="P", help="higher runs first (default 0)")
    parser.add_argument("--queue", metavar="Q", help="the queue (default: default)")
    when = parser.add_mutually_exclusive_group()
    when.add_argument(
        "--delay", metavar="DURATION", help="start no earlier than this from now (30s, 15m, 2h, 7d)"
    )
    when.add_argument(
        "--at",
        metavar="TIME",
        help="start no earlier than this ISO 8601 time (local time without an offset)",
    )
    parser.add_argument(
        "--timeout",
        metavar="S",
        help="seconds a run may take (default: config job-timeout); 90, 30s or 5m",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--cwd", metavar="DIR", help="run in this directory")
    where.add_argument("--here", action="store_true", help="run in the current directory")
    parser.add_argument(
        "--env",
        action="append",
        metavar="K=V",
        default=[],
        help="add an environment variable (repeat for several)",
    )
    _add_policy_options(parser)
    parser.add_argument(
        "--after",
        action="append",
        metavar="ID",
        default=[],
        help="run only once job ID has completed (repeat, or separate ids with commas)",
    )
    for key in ("on_complete", "on_fail", "on_dead", "on_cancel"):
        parser.add_argument(
            "--" + key.replace("_", "-"),
            metavar="CMD",
            help=f"shell command run {HOOK_WHEN[key]} (instead of config {key.replace('_', '-')})",
        )
    add_json_flag(parser)
    parser.add_argument(
        "command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS", help="the command to run"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    words = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not words:
        raise UsageError("add needs a command after --, e.g. queuectl add -- echo hello")
    from queuectl.core import fields
    from queuectl.core.ids import new_job_id
    from queuectl.core.models import NewJob

    options = job_options(args, words, os.getcwd() if args.here else args.cwd)
    hooks = fields.check_hooks({key: getattr(args, key) for key in fields.HOOK_KEYS})
    service = open_service(args, create=True)
    defaults = service.settings()
    scheduled_at = None
    if args.delay is not None:
        scheduled_at = fields.delay_to_time(fields.parse_duration(args.delay), service.store.now())
    elif args.at is not None:
        scheduled_at = fields.parse_time(args.at)
    job_id = fields.check_job_id(args.id) if args.id is not None else new_job_id()
    job = NewJob(
        id=job_id,
        **with_defaults(options, defaults),
        scheduled_at=scheduled_at,
        **_policy_fields(args),
        depends_on=fields.check_depends_on(fields.split_after(args.after), job_id),
        hooks=hooks,
        id_generated=args.id is None,
    )
    (created,) = service.enqueue([job], skip_duplicate_keys=args.if_exists == "skip")
    if args.json:
        print_json(created.to_json())
    else:
        sys.stdout.write(f"{created.id}\n")
    return 0


def _add_policy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--retry-on-exit",
        metavar="CODES",
        help="retry only these exit codes (e.g. 75,111); any other failed exit goes to the DLQ",
    )
    parser.add_argument(
        "--fatal-on-exit",
        metavar="CODES",
        help="never retry these exit codes (e.g. 2,126): straight to the DLQ",
    )
    parser.add_argument(
        "--dedupe-key",
        metavar="KEY",
        help="refuse the job while another with this key is pending, failed or processing",
    )
    add_if_exists_flag(parser)


def _policy_fields(args: argparse.Namespace) -> dict[str, Any]:
    """retry_on_exit, fatal_on_exit and dedupe_key of NewJob from the options."""
    from queuectl.core import fields

    retry, fatal = (
        fields.parse_exit_codes(option, text) if text is not None else ()
        for option, text in (
            ("--retry-on-exit", args.retry_on_exit),
            ("--fatal-on-exit", args.fatal_on_exit),
        )
    )
    fields.check_exit_policy(retry, fatal)
    key = fields.check_dedupe_key(args.dedupe_key) if args.dedupe_key is not None else None
    return {"retry_on_exit": retry, "fatal_on_exit": fatal, "dedupe_key": key}


def job_options(args: argparse.Namespace, words: list[str], cwd: str | None) -> dict[str, Any]:
    """The job options `add` and `schedule add` share (command, queue, priority,
    max_retries, timeout, cwd, env), checked before the store is opened. max_retries and
    timeout are None when not given: with_defaults fills them from the settings."""
    from queuectl.core import fields

    return {
        "command": fields.check_command(words[0] if len(words) == 1 else shlex.join(words)),
        "queue": fields.check_queue(args.queue) if args.queue is not None else "default",
        "priority": fields.check_priority(args.priority) if args.priority is not None else 0,
        "max_retries": (
            fields.check_max_retries(args.max_retries) if args.max_retries is not None else None
        ),
        "timeout": (
            fields.check_timeout(fields.parse_duration(args.timeout))
            if args.timeout is not None
            else None
        ),
        "cwd": fields.check_cwd(os.path.abspath(cwd)) if cwd is not None else None,
        "env": fields.check_env(_env_pairs(args.env)) if args.env else None,
    }


def with_defaults(options: dict[str, Any], defaults: Settings) -> dict[str, Any]:
    """job_options with the store's default max_retries and timeout where none was given."""
    return {
        **options,
        "max_retries": (
            defaults.max_retries if options["max_retries"] is None else options["max_retries"]
        ),
        "timeout": defaults.job_timeout if options["timeout"] is None else options["timeout"],
    }


def _env_pairs(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--env {item!r}: expected NAME=VALUE")
        pairs[name] = value
    return pairs
