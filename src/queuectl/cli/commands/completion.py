"""`queuectl completion bash|zsh|fish`: print the shell's completion script."""

from __future__ import annotations

import argparse
import sys

from queuectl.cli.commands import Subparsers
from queuectl.core.errors import MissingDependency

SHELLS = ("bash", "zsh", "fish")


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print the completion script for a shell. For example, in ~/.bashrc: "
        'eval "$(queuectl completion bash)"; in ~/.zshrc: '
        'eval "$(queuectl completion zsh)"; for fish: '
        "queuectl completion fish > ~/.config/fish/completions/queuectl.fish",
    )
    parser.add_argument("shell", choices=SHELLS)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        from argcomplete.shell_integration import shellcode
    except ImportError:
        raise MissingDependency(
            "shell completion needs argcomplete: pip install argcomplete"
        ) from None
    sys.stdout.write(shellcode(["queuectl"], shell=args.shell))
    return 0
