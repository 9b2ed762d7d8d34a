"""What a `queuectl` command loaded: the lean start-up paths promise to leave heavy modules
out (tests/cli/test_lean_enqueue.py, test_pg_reads.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

IMPORT_LINE = "import time:"
# The full path of a command, as it runs where psycopg2 is not installed.
WITHOUT_PSYCOPG2 = (
    "import sys; sys.modules['psycopg2'] = None; from queuectl.cli import main; sys.exit(main())"
)


def traced(
    env: Mapping[str, str], *args: str, full: bool = False
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`queuectl ARGS` under `python -X importtime` (with `full`, as without psycopg2): its
    result, stderr without the import lines, and the modules it imported."""
    entry = ["-c", WITHOUT_PSYCOPG2] if full else ["-m", "queuectl"]
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *entry, *args],
        capture_output=True,
        text=True,
        env=dict(env),
        check=False,
        timeout=60,
    )
    lines = result.stderr.splitlines(keepends=True)
    modules = {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith(IMPORT_LINE)}
    result.stderr = "".join(line for line in lines if not line.startswith(IMPORT_LINE))
    return result, modules
