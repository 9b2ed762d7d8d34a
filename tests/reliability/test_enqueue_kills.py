"""An acknowledged enqueue is durable, even when enqueue processes die all around it."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Queuectl
from tests.reliability.tools import assert_sqlite_intact, read_jobs

pytestmark = pytest.mark.slow

WAVES = 3
PER_WAVE = 10
BATCH = 20  # jobs per `enqueue -` (every other process)


def test_killed_enqueues_lose_no_acknowledged_job(q: Queuectl, tmp_path: Path) -> None:
    prefix = f"ack-{os.getpid()}-{time.monotonic_ns() % 10**6}-"
    q.ok("status")  # create the store first
    chooser = random.Random(os.getpid())
    outcomes: list[tuple[list[str], int, str]] = []  # (ids asked for, exit status, stdout)
    # Wave 0 is left alone, to time a wave on this machine: later waves are killed at
    # random within that time, so that some finish and some die at every stage.
    window = 0.0
    for wave in range(WAVES + 1):
        started = time.monotonic()
        procs = []
        for n in range(PER_WAVE):
            name = f"{prefix}{wave}-{n}"
            if n % 2:
                ids = [f"{name}-{i}" for i in range(BATCH)]
                lines = tmp_path / name
                lines.write_text(
                    "".join(json.dumps({"id": job_id, "command": "true"}) + "\n" for job_id in ids)
                )
                args = ["enqueue", "-"]
            else:
                ids, lines = [name], None
                args = ["enqueue", json.dumps({"id": name, "command": "true"})]
            with lines.open() if lines else open(os.devnull) as stdin:
                proc = subprocess.Popen(
                    q.argv(*args),
                    env=q.env,
                    stdin=stdin,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
            kill_at = started + chooser.uniform(0, window) if wave else float("inf")
            procs.append((ids, proc, kill_at))
        for ids, proc, kill_at in sorted(procs, key=lambda entry: entry[2]):
            if kill_at < float("inf"):
                time.sleep(max(0.0, kill_at - time.monotonic()))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
            out, _ = proc.communicate(timeout=60)
            outcomes.append((ids, proc.returncode, out))
        if not wave:
            window = time.monotonic() - started

    stored = read_jobs(q)
    acknowledged = [(ids, out) for ids, code, out in outcomes if code == 0]
    killed = [ids for ids, code, _ in outcomes if code == -signal.SIGKILL]
    assert acknowledged, "no enqueue finished: the kills came too early to test anything"
    assert killed, "no enqueue was killed: the kills came too late to test anything"
    assert len(acknowledged) + len(killed) == len(outcomes)  # no other failure
    for ids, out in acknowledged:
        assert out.split() == ids
        assert all(stored[job_id]["state"] == "pending" for job_id in ids)
    for ids in killed:
        # All or nothing, even when killed in the middle of a batch.
        assert sum(job_id in stored for job_id in ids) in (0, len(ids)), ids
    assert_sqlite_intact(q)
    q.ok("status")  # the store is usable after it all
    print(f"\n{len(acknowledged)} enqueues acknowledged, {len(killed)} killed")
