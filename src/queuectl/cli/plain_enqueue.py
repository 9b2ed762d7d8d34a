"""`queuectl [--db T] enqueue JSON|- [--json]` without building the parser: its start-up
is what a shell loop of enqueues pays per job, so only json, sqlite3 and the validation
rules load on the common path (store.quick_enqueue); the rest falls back to the
`enqueue` command as usual."""

from __future__ import annotations

import sys


def run_plain(db: str | None, job: str, as_json: bool) -> int:
    texts = _read_lines() if job == "-" else [job]
    if not as_json:
        from queuectl.store import quick_enqueue

        ids = quick_enqueue(db, texts, lines=job == "-")
        if ids is not None:
            sys.stdout.write("".join(f"{job_id}\n" for job_id in ids))
            return 0
    import argparse

    from queuectl.cli.commands.enqueue import run

    return run(argparse.Namespace(db=db, job=job, json=as_json), lines=texts)


def _read_lines() -> list[str]:
    # Bytes, decoded here: a line that is not UTF-8 is then refused by its number like
    # any other bad line, whatever the locale's encoding of sys.stdin. Read whole and
    # split on line feeds only, as iterating over the stream splits (in a fraction of
    # its time per line): the lines are numbered alike, a trailing empty one is blank.
    return sys.stdin.buffer.read().decode("utf-8", "surrogateescape").split("\n")
