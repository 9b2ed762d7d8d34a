"""`queuectl top` for real, on a terminal: inside a detached tmux session of a fixed size,
read back with `capture-pane`, driven with `send-keys`."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests import pgtools
from tests.conftest import Queuectl, assert_error, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.in_process]

TMUX = shutil.which("tmux") or "/usr/bin/tmux"
WIDTH, HEIGHT = 140, 40
DEADLINE = 30.0  # seconds: generous, for a loaded machine


class TopScreen:
    """`queuectl top` in a tmux session of its own tmux server, so that nothing of the
    user's tmux (or of another test) is touched. The pane stays after the program ends
    (`remain-on-exit`), so that its last screen can be read; a small shell around it writes
    the exit status and the terminal's settings afterwards, to prove they were restored.
    (tmux's own #{pane_dead_status} is not always filled in, so the shell writes it.)"""

    def __init__(self, q: Queuectl, folder: Path) -> None:
        # A socket path of its own, short enough for a Unix socket (tmp_path may not be).
        self.socket_folder = Path(tempfile.mkdtemp(prefix="queuectl-tmux-"))
        self.socket = self.socket_folder / "tmux"
        self.status_file = folder / "top-status"
        self.stty_file = folder / "top-stty"
        self.output_file = folder / "top-output"  # every byte the program wrote
        self.q = q

    def start(self, *args: str) -> None:
        env = {key: self.q.env[key] for key in ("QUEUECTL_DB", "QUEUECTL_HOME")}
        # Passed explicitly: a tmux server keeps the environment it was started with.
        assignments = [f"{key}={value}" for key, value in env.items()]
        command = shlex.join(
            ["env", "-u", "COLUMNS", "-u", "LINES", *assignments, *self.q.argv("top", *args)]
        )
        # `trap : INT` keeps this shell alive through Ctrl+C (which reaches it too), while
        # `top` gets the default SIGINT handling, as from an interactive shell.
        script = (
            f"trap : INT; {command}; echo $? > {shlex.quote(str(self.status_file))}; "
            f"stty -a > {shlex.quote(str(self.stty_file))}"
        )
        self.tmux(
            "new-session", "-d", "-s", "top", "-x", str(WIDTH), "-y", str(HEIGHT), script,
            ";", "set-option", "-w", "-t", "top", "remain-on-exit", "on",
            ";", "pipe-pane", "-t", "top", f"cat > {shlex.quote(str(self.output_file))}",
        )  # fmt: skip

    def tmux(self, *args: str) -> str:
        result = subprocess.run(
            [TMUX, "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            env=self.q.env,
        )
        assert result.returncode == 0, f"tmux {' '.join(args)}: {result.stderr}"
        return result.stdout

    def text(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "top")

    def wait_for(self, found: Callable[[str], object], message: str) -> str:
        """The screen once `found(screen)` is true; the last screen in the failure."""
        seen = [""]

        def look() -> object:
            seen[0] = self.text()
            return found(seen[0])

        try:
            wait_until(look, timeout=DEADLINE, interval=0.2, message=message)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the screen:\n{seen[0]}") from None
        return seen[0]

    def wait_for_line(self, pattern: str, message: str | None = None) -> re.Match[str]:
        regex = re.compile(pattern)
        screen = self.wait_for(regex.search, message or f"a line matching {pattern!r}")
        match = regex.search(screen)
        assert match is not None
        return match

    def press(self, key: str) -> None:
        self.tmux("send-keys", "-t", "top", key)

    def pane(self, field: str) -> str:
        return self.tmux("display-message", "-p", "-t", "top", f"#{{{field}}}").strip()

    def exit_status(self) -> int:
        """Wait for the program (and the shell around it) to end; its exit status."""
        wait_until(
            lambda: self.pane("pane_dead") == "1" and self.stty_file.exists(),
            timeout=DEADLINE,
            message="`queuectl top` to exit",
        )
        return int(self.status_file.read_text())

    def close(self) -> None:
        subprocess.run(
            [TMUX, "-S", str(self.socket), "kill-server"],
            capture_output=True,
            timeout=20,
            check=False,
        )
        shutil.rmtree(self.socket_folder, ignore_errors=True)


@contextlib.contextmanager
def top_screen(q: Queuectl, folder: Path) -> Iterator[TopScreen]:
    if not os.path.exists(TMUX):
        if os.environ.get("CI"):
            pytest.fail("tmux is missing (apt-get install tmux)", pytrace=False)
        pytest.skip("tmux is missing (apt-get install tmux)")
    screen = TopScreen(q, folder)
    try:
        yield screen
    finally:
        screen.close()


@pytest.fixture
def top(q: Queuectl, tmp_path: Path) -> Iterator[TopScreen]:
    with top_screen(q, tmp_path) as screen:
        yield screen


def section(screen: str, title: str) -> str:
    """The lines of the screen from the panel titled `title` to the next panel."""
    lines = screen.splitlines()
    start = next(i for i, line in enumerate(lines) if f"─ {title}" in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("╭")), len(lines))
    return "\n".join(lines[start:end])


def count(name: str, value: int | str) -> str:
    """A row of the Jobs panel: the label, then the count."""
    return rf"│ {re.escape(name)}\s+{value}\b"


def test_top_shows_the_counts_and_follows_the_queue(q: Queuectl, top: TopScreen) -> None:
    for n in range(3):
        q.enqueue(id=f"quick-{n}", command="true")
    q.ok("queue", "pause", "paused-queue")
    q.ok("queue", "limit", "default", "2")
    q.ok("queue", "rate", "default", "30/m")
    top.start("--interval", "0.5")
    screen = top.wait_for(lambda text: re.search(count("Pending", 3), text), "3 pending jobs")
    assert re.search(r"^queuectl top\s+3 jobs, 0 workers, 2 queues", screen, re.M), screen
    assert re.search(count("Total", 3), screen), screen
    assert re.search(count("Completed", 0), screen), screen
    assert "No active workers" in screen
    queues = section(screen, "Queues")
    assert re.search(r"default\s+3\s+0\s+0\s+0\s+0\s+limit 2 rate 30/m", queues), queues
    assert re.search(r"paused-queue\s+0\s+0\s+0\s+0\s+0\s+paused", queues), queues
    footer = screen.rstrip().splitlines()[-1]
    assert f"store: {q.target}" in footer, footer
    assert footer.endswith("q to quit"), footer

    proc = q.start_workers("--burst")
    screen = top.wait_for(
        lambda text: (
            re.search(count("Completed", 3), text) and re.search(count("Pending", 0), text)
        ),
        "the 3 jobs to show as completed",
    )
    assert q.finish(proc)[0] == 0
    # One character a minute for 30 minutes; the minute of the runs has the top bar (or two
    # minutes share them, if a minute turned meanwhile), and the 30-minute total says 3.
    spark = re.search(count("Completed", 3) + r"\s+([▁▂▃▄▅▆▇█]{30})\s+3\b", screen)
    assert spark is not None, screen
    assert "█" in spark.group(1), screen


def test_top_shows_a_worker_and_the_job_it_runs(q: Queuectl, top: TopScreen) -> None:
    top.start("--interval", "0.5")
    top.wait_for_line("No active workers")
    q.start_workers()
    worker = wait_until(q.active_workers, timeout=DEADLINE, message="a worker")[0]
    q.enqueue(id="sleepy", command="sleep 30")
    # worker, host, pid, uptime, job, running for, command
    row = (
        rf"│ {re.escape(worker['id'])}\s+(\S+)\s+(\d+)\s+\d+[smhd]( \d+[smh])?"
        r"\s+sleepy\s+(\d+)s\s+sleep 30\b"
    )
    match = top.wait_for_line(row, "the worker's line with its job")
    host, pid, running_for = match.group(1), int(match.group(2)), int(match.group(4))
    assert worker["host"].startswith(host.rstrip("…")), match.group()
    assert pid == worker["pid"], match.group()
    assert "Workers (1 active)" in match.string

    def has_run_longer(screen: str) -> bool:
        later = re.search(row, screen)
        return later is not None and int(later.group(4)) > running_for

    top.wait_for(has_run_longer, "the job's running time to grow")
    q.ok("cancel", "sleepy")
    top.wait_for_line(rf"│ {re.escape(worker['id'])}\s.*\sidle\b", "the worker to be idle")


def test_top_shows_the_latest_failures(q: Queuectl, top: TopScreen) -> None:
    q.enqueue(id="fine", command="true")
    q.enqueue(id="doomed", command="echo no space left >&2; exit 7", max_retries=1)
    top.start("--interval", "0.5")
    top.wait_for(
        lambda text: "No failed or dead jobs." in text and "Pending" in text, "the first screen"
    )
    q.finish(q.start_workers("--burst"))
    screen = top.wait_for(lambda text: "doomed" in section(text, "Latest failures"), "a failure")
    failures = section(screen, "Latest failures")
    assert re.search(r"doomed\s+dead\s+1/1\s+exited with code 7\s+echo no space left", failures)
    assert "fine" not in failures
    assert re.search(count("Dead (DLQ)", 1), screen), screen


def assert_terminal_restored(top: TopScreen) -> None:
    settings = top.stty_file.read_text().split()
    assert "icanon" in settings, settings  # cbreak mode is over
    assert "echo" in settings, settings

    # The full-screen view was left and the cursor shown again, after they last changed.
    # (Read from the bytes the program wrote: once a pane is dead, tmux hides its cursor.)
    def restored() -> bytes | None:
        output = top.output_file.read_bytes()
        left_screen = output.rfind(b"\x1b[?1049l") > output.rfind(b"\x1b[?1049h")
        shown_cursor = output.rfind(b"\x1b[?25h") > output.rfind(b"\x1b[?25l")
        return output if left_screen and shown_cursor else None

    output = wait_until(restored, timeout=DEADLINE, message="the screen and cursor restored")
    assert b"Traceback" not in output
    assert "Traceback" not in top.text()


@pytest.mark.parametrize("key", ["q", "C-c", "SIGTERM"])
def test_top_quits_cleanly_on_q_ctrl_c_and_sigterm(q: Queuectl, top: TopScreen, key: str) -> None:
    q.enqueue(command="true")
    top.start()
    top.wait_for_line(count("Pending", 1))
    if key == "SIGTERM":
        shell = top.pane("pane_pid")
        children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
        assert len(children) == 1, children
        os.kill(int(children[0]), signal.SIGTERM)
    else:
        top.press(key)
    assert top.exit_status() == 0
    assert_terminal_restored(top)


@pytest.mark.postgres
def test_top_shows_a_store_error_and_recovers(tmp_path: Path) -> None:
    with pgtools.fresh_database() as url, top_screen(Queuectl(url, tmp_path), tmp_path) as top:
        top.q.enqueue(command="true")
        top.start("--interval", "0.5")
        top.wait_for_line(count("Pending", 1))
        # The tables vanish from under it (as on a restore, or a wrong search_path).
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("ALTER SCHEMA queuectl RENAME TO queuectl_away")
            screen = top.wait_for_line(r"store error: .*does not exist").string
            assert re.search(count("Pending", 1), screen), screen  # the last data stays
            admin.execute("ALTER SCHEMA queuectl_away RENAME TO queuectl")
        top.wait_for(lambda text: "store error" not in text, "the error to go")
        top.q.enqueue(command="true")
        top.wait_for_line(count("Pending", 2))
        top.press("q")
        assert top.exit_status() == 0


def test_top_refuses_a_pipe_and_suggests_status_watch(q: Queuectl) -> None:
    message = assert_error(q.run("top"), 2)
    assert "status --watch" in message


def test_top_checks_its_interval(q: Queuectl) -> None:
    assert "--interval" in assert_error(q.run("top", "--interval", "0"), 2)
    assert "duration" in assert_error(q.run("top", "--interval", "soon"), 2)
