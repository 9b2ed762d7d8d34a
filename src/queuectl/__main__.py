"""`python -m queuectl` runs the command-line interface."""

from __future__ import annotations

import sys

from queuectl.cli import main

sys.exit(main())
