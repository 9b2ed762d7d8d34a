"""queuectl's benchmark suite: `python -m bench [--quick] [--backend ...] [--out FILE]`.

Every figure is measured on the installed `queuectl` console script, in subprocesses, on
a fresh store, next to a reference measured in the same run, so that the ratios still mean
something on a busy or slow machine. Nothing here asserts a time: the report says which
targets pass, and the exit status is non-zero only when a measurement crashed.
"""

from __future__ import annotations
