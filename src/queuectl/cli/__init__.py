"""The command-line interface: parse, call the service, print. main() is the only place
that turns a QueuectlError into `error: ...` and an exit status."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from queuectl.core.errors import QueuectlError


def main(argv: Sequence[str] | None = None) -> int:
    from queuectl.cli.parser import build_parser

    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # a shell asking for completions: answer and exit
        import argcomplete

        argcomplete.autocomplete(parser)
    try:
        args = parser.parse_args(argv)
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help(sys.stderr)
            return 2
        return int(handler(args))
    except QueuectlError as exc:
        # One line, always (SPEC 4), even when a driver's message spans several.
        message = " ".join(line.strip() for line in exc.message.splitlines() if line.strip())
        print(f"error: {message}", file=sys.stderr)
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
