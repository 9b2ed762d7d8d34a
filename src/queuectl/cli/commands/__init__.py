"""One module per subcommand: `register(subparsers)` adds it and sets its handler."""

from __future__ import annotations

from queuectl.cli.subparsers import Subparsers

__all__ = ["Subparsers"]
