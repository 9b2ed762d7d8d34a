"""Workers in the background (issue 14): `worker start --detach` and `worker service`."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from queuectl.cli import main
from queuectl.cli.background import LOG_ROTATE_SIZE
from tests.conftest import Queuectl, assert_error, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.in_process]


@pytest.fixture
def detached(q: Queuectl) -> Iterator[Queuectl]:
    """`q`, with every worker a test left running in the background killed at teardown."""
    yield q
    for worker in q.json("worker", "list"):
        if worker["state"] == "active":
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker["pid"], signal.SIGKILL)


def test_detach_returns_once_the_workers_run_in_a_session_of_their_own(
    detached: Queuectl,
) -> None:
    q = detached
    home = Path(q.env["QUEUECTL_HOME"])
    out = q.ok("worker", "start", "--detach", "--count", "2")
    pids = [int(pid) for pid in re.search(r"pids (\d+), (\d+);", out).groups()]  # type: ignore[union-attr]
    assert f"Log: {home / 'workers.log'}" in out
    # Registered before it returned: status sees them at once.
    assert sorted(worker["pid"] for worker in q.active_workers()) == sorted(pids)
    for pid in pids:
        assert os.getsid(pid) != os.getsid(0)  # not in this terminal's session
    job_id = q.enqueue(command="echo from-the-background")
    q.wait_for_state(job_id, "completed")
    assert stat.S_IMODE((home / "workers.log").stat().st_mode) == 0o600
    assert "Asked 2 workers to stop." in q.ok("worker", "stop", "--wait")
    assert q.active_workers() == []
    log = (home / "workers.log").read_text()
    assert job_id in log  # the log says what each job did


def test_detach_rotates_a_big_log(detached: Queuectl) -> None:
    q = detached
    home = Path(q.env["QUEUECTL_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "workers.log").write_bytes(b"old line\n" * (LOG_ROTATE_SIZE // 9 + 1))
    q.ok("worker", "start", "--detach")
    assert (home / "workers.log.1").stat().st_size > LOG_ROTATE_SIZE
    assert (home / "workers.log").stat().st_size < LOG_ROTATE_SIZE
    q.ok("worker", "stop", "--wait")


def test_detach_shows_the_log_when_the_workers_exit_at_start(
    q_sqlite: Queuectl,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # An interpreter that cannot start the workers: it says why in the log and exits.
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'cannot start the workers' >&2\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(broken))
    monkeypatch.setenv("QUEUECTL_HOME", q_sqlite.env["QUEUECTL_HOME"])
    assert main(["--db", q_sqlite.target, "worker", "start", "--detach"]) == 1
    err = capsys.readouterr().err
    assert "cannot start the workers" in err
    assert err.splitlines()[-1].startswith("error: the workers exited at start (status 3)")


def test_worker_service_unit_runs_workers_on_this_store(q_sqlite: Queuectl, tmp_path: Path) -> None:
    q_sqlite.config("job-timeout", "600")
    unit = q_sqlite.ok("worker", "service", "--count", "2", "--queue", "mail")
    assert f"--db {q_sqlite.target} worker start --count 2 --queue mail" in unit
    for line in ("KillMode=mixed", "TimeoutStopSec=630", "Restart=on-failure"):
        assert line in unit.splitlines()
    assert "WantedBy=multi-user.target" in unit
    config = tmp_path / "config"
    env = dict(q_sqlite.env, XDG_CONFIG_HOME=str(config))
    result = subprocess.run(
        q_sqlite.argv("worker", "service", "--user", "--install"),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    written = config / "systemd" / "user" / "queuectl-worker.service"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert "WantedBy=default.target" in written.read_text()
    assert "systemctl --user enable --now queuectl-worker.service" in result.stdout
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: the unit file was not verified")
    checked = tmp_path / "verify" / "queuectl-worker.service"
    checked.parent.mkdir()
    for text in (unit, written.read_text()):
        checked.write_text(text)
        verdict = subprocess.run(
            ["systemd-analyze", "verify", str(checked)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert verdict.returncode == 0, verdict.stderr
        assert verdict.stderr == "", verdict.stderr


def test_worker_service_never_prints_a_password(q_sqlite: Queuectl) -> None:
    url = "postgresql://someone:s3cret@127.0.0.1:1/queue"
    unit = q_sqlite.ok("--db", url, "worker", "service")
    assert "s3cret" not in unit
    assert "postgresql://someone:***@127.0.0.1:1/queue" in unit


def test_detach_on_a_missing_folder_is_refused_before_anything_starts(
    q_sqlite: Queuectl, tmp_path: Path
) -> None:
    missing = tmp_path / "typo" / "q.db"
    assert "does not exist" in assert_error(
        q_sqlite.run("--db", str(missing), "worker", "start", "--detach"), 1
    )
    wait_until(lambda: not (Path(q_sqlite.env["QUEUECTL_HOME"]) / "workers.log").exists())
