"""run_shell / ShellRun with tiny real /bin/sh commands (SPEC 2.3: process group, stdin,
output capture; 2.2: timeouts)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from queuectl import runner
from queuectl.runner import ShellRun, run_shell
from tests.conftest import processes_with_argument, wait_until

LIMIT = 65536  # bytes


def marker(n: int) -> str:
    """A `sleep` argument no other process on the machine has: `sleep` of about n seconds."""
    return f"{n}.{os.getpid() % 1000:03d}{n % 10}"


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Graces of 0.2 s instead of 2 s, to keep the unit tests quick: this process is no
    subreaper, so a killed job's orphans stay zombies (alive to killpg) until init reaps them."""
    monkeypatch.setattr(runner, "KILL_GRACE", 0.2)
    monkeypatch.setattr(runner, "LEFTOVER_GRACE", 0.2)


def test_success_with_its_output() -> None:
    result = run_shell("echo hello", timeout=10, output_limit=LIMIT)
    assert (result.exit_code, result.signal, result.timed_out, result.spawn_error) == (
        0,
        None,
        False,
        None,
    )
    assert result.output == "hello\n"
    assert result.succeeded
    assert 0 <= result.duration < 5


def test_exit_code_of_a_failure() -> None:
    result = run_shell("echo no; exit 3", timeout=10, output_limit=LIMIT)
    assert (result.exit_code, result.output, result.succeeded) == (3, "no\n", False)


def test_missing_command_exits_127() -> None:
    result = run_shell("nosuchcommand_xyz", timeout=10, output_limit=LIMIT)
    assert result.exit_code == 127
    assert "nosuchcommand_xyz" in result.output


def test_stdout_and_stderr_are_combined_in_order() -> None:
    result = run_shell("echo out; echo err >&2; echo out2", timeout=10, output_limit=LIMIT)
    assert result.output == "out\nerr\nout2\n"


def test_stdin_is_dev_null() -> None:
    result = run_shell("cat; readlink /proc/self/fd/0", timeout=10, output_limit=LIMIT)
    assert (result.exit_code, result.output) == (0, "/dev/null\n")


def test_runs_in_its_own_process_group() -> None:
    result = run_shell("ps -o pgid= -p $$; echo $$", timeout=10, output_limit=LIMIT)
    pgid, pid = result.output.split()
    assert pgid == pid
    assert int(pgid) != os.getpgid(0)


def test_environment_and_folder_are_passed(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "GREETING": "hi there"}
    result = run_shell(
        'echo "$GREETING"; pwd -P', timeout=10, output_limit=LIMIT, env=env, cwd=str(tmp_path)
    )
    assert result.output == f"hi there\n{tmp_path.resolve()}\n"


def test_a_folder_that_does_not_exist_is_a_spawn_error(tmp_path: Path) -> None:
    result = run_shell("true", timeout=10, output_limit=LIMIT, cwd=str(tmp_path / "gone"))
    assert result.exit_code is None
    assert result.spawn_error
    assert not result.succeeded


def test_output_keeps_the_last_limit_bytes() -> None:
    result = run_shell(
        "head -c 200000 /dev/zero | tr '\\0' a; printf END", timeout=10, output_limit=10
    )
    assert result.output == "aaaaaaaEND"


def test_output_limit_zero_keeps_nothing() -> None:
    result = run_shell("echo something", timeout=10, output_limit=0)
    assert (result.exit_code, result.output) == (0, "")


def test_big_output_does_not_deadlock() -> None:
    result = run_shell(
        "head -c 8000000 /dev/zero | tr '\\0' x; echo; echo done", timeout=30, output_limit=LIMIT
    )
    assert result.exit_code == 0
    assert len(result.output.encode()) == LIMIT
    assert result.output.endswith("x\ndone\n")


@pytest.mark.parametrize("limit", [0, 1, 100])
def test_the_output_buffer_stays_bounded(limit: int) -> None:
    """A chatty job must not grow the worker's memory, whatever output-limit is."""
    proc = subprocess.Popen(["head", "-c", "3000000", "/dev/zero"], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    pipe = proc.stdout.fileno()
    buffer = bytearray()
    assert not runner._drain(pipe, buffer, limit)  # a blocking pipe: reads to the end
    proc.wait()
    proc.stdout.close()
    assert len(buffer) <= 2 * limit + runner.READ_CHUNK
    assert len(buffer) >= limit


def test_output_that_is_not_utf8_is_decoded_with_replacement() -> None:
    result = run_shell("printf 'caf\\351 \\342\\202\\254'", timeout=10, output_limit=LIMIT)
    assert result.output == "caf\ufffd \u20ac"


def test_timeout_kills_the_run() -> None:
    started = time.monotonic()
    result = run_shell("echo before; sleep 20; echo after", timeout=0.3, output_limit=LIMIT)
    assert result.timed_out
    assert result.exit_code is None
    assert result.output == "before\n"
    assert not result.succeeded
    assert time.monotonic() - started < 5


def test_timeout_kills_background_processes_too() -> None:
    arg = marker(41)
    result = run_shell(f"sleep {arg} & wait", timeout=0.3, output_limit=LIMIT)
    assert result.timed_out
    assert processes_with_argument(arg) == []


def test_timeout_kills_a_run_that_ignores_sigterm() -> None:
    arg = marker(42)
    started = time.monotonic()
    result = run_shell(f"trap '' TERM; sleep {arg}", timeout=0.3, output_limit=LIMIT)
    assert result.timed_out
    assert result.signal == signal.SIGKILL
    assert time.monotonic() - started < 5
    assert processes_with_argument(arg) == []


def test_background_processes_of_a_finished_shell_are_ended() -> None:
    arg = marker(43)
    result = run_shell(f"sleep {arg} & echo done", timeout=10, output_limit=LIMIT)
    assert (result.exit_code, result.output) == (0, "done\n")
    assert processes_with_argument(arg) == []


def test_a_run_killed_by_a_signal() -> None:
    result = run_shell("kill -9 $$", timeout=10, output_limit=LIMIT)
    assert (result.exit_code, result.signal, result.timed_out) == (None, signal.SIGKILL, False)


def test_kill_from_another_thread_stops_the_run() -> None:
    arg = marker(44)
    run = ShellRun(f"echo started; sleep {arg}", timeout=30, output_limit=LIMIT)
    results = []
    thread = threading.Thread(target=lambda: results.append(run.run()))
    thread.start()
    wait_until(lambda: run.pid is not None and processes_with_argument(arg), message="the run")
    run.kill("stopped by the test")
    thread.join(timeout=10)
    (result,) = results
    assert run.kill_reason == "stopped by the test"
    assert (result.signal, result.timed_out) == (signal.SIGTERM, False)
    assert result.output == "started\n"
    assert processes_with_argument(arg) == []


def test_output_so_far_leaves_out_a_character_still_being_written(tmp_path: Path) -> None:
    # The live output `logs -f` follows must only grow: a half-written character shown as
    # U+FFFD would turn into something else at the next save.
    gate = tmp_path / "gate"
    run = ShellRun(
        f"printf 'ok \\342\\234'; while [ ! -e {gate} ]; do sleep 0.02; done; printf '\\223\\n'",
        timeout=30,
        output_limit=LIMIT,
    )
    results = []
    thread = threading.Thread(target=lambda: results.append(run.run()))
    thread.start()
    try:
        wait_until(lambda: len(run._output) == 5, message="the first bytes of the check mark")
        assert run.output_so_far() == "ok "
    finally:
        gate.touch()
        thread.join(timeout=10)
    (result,) = results
    assert result.output == "ok \u2713\n"


def test_output_cut_inside_a_character_at_the_end_is_replaced() -> None:
    result = run_shell("printf 'x\\342\\234'", timeout=10, output_limit=LIMIT)
    assert result.output == "x\ufffd"
