"""The command-line interface: parse, call the service, print. main() is the only place
that turns a QueuectlError into `error: ...` and an exit status."""

from __future__ import annotations

import os
import sys

from queuectl.core.errors import QueuectlError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (enqueue start-up)
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        fast = _plain_enqueue(words)
        if fast is not None:
            from queuectl.cli.plain_enqueue import run_plain

            return run_plain(*fast)
        return _call_parsed(words)
    except QueuectlError as exc:
        # One line, always (SPEC 4), even when a driver's message spans several.
        message = " ".join(line.strip() for line in exc.message.splitlines() if line.strip())
        print(f"error: {_without_passwords(message, words)}", file=sys.stderr)
        return exc.exit_code
    except SystemExit as exc:  # argparse's own exits (--help, usage errors)
        return exc.code if isinstance(exc.code, int) else 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`queuectl list | head`): not an error worth a traceback.
        sys.stderr.close()
        return 0


def _without_passwords(message: str, words: list[str]) -> str:
    """The message with the passwords of every target it may quote masked: `--db`,
    `store migrate --to`, $QUEUECTL_DB (SPEC 1)."""
    from queuectl.core.redact import redact

    targets = [os.environ.get("QUEUECTL_DB", ""), *words]
    return redact(message, *(t for t in targets if "://" in t or "password" in t.lower()))


def _call_parsed(words: list[str]) -> int:
    from queuectl.cli.parser import build_parser

    completing = "_ARGCOMPLETE" in os.environ
    parser = build_parser(None if completing else _command_word(words))
    if completing:  # a shell asking for completions: answer and exit
        import argcomplete

        argcomplete.autocomplete(parser)
    args = parser.parse_args(words)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    return _call(handler, args)


def _command_word(words: list[str]) -> str | None:
    """The command a command line names (after the global `--db`), if any."""
    if len(words) >= 2 and words[0] == "--db":
        words = words[2:]
    elif words and words[0].startswith("--db="):
        words = words[1:]
    return words[0] if words else None


def _call(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    return int(handler(args))


def _plain_enqueue(words: list[str]) -> tuple[str | None, str, bool] | None:
    """`[--db T] enqueue JSON|- [--json]`, recognised without building the whole parser:
    `enqueue` runs once per job from shell loops, so its start-up is what users feel.
    Anything else (help, a typo, other options) goes through argparse as usual."""
    db = None
    if len(words) >= 2 and words[0] == "--db":
        db, words = words[1], words[2:]
    elif words and words[0].startswith("--db="):
        db, words = words[0].removeprefix("--db="), words[1:]
    if not words or words[0] != "enqueue" or "_ARGCOMPLETE" in os.environ:
        return None
    rest = words[1:]
    as_json = "--json" in rest
    rest = [word for word in rest if word != "--json"]
    if len(rest) != 1 or (rest[0].startswith("-") and rest[0] != "-"):
        return None
    return db, rest[0], as_json
