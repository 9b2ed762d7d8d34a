"""The job loop reaps its jobs' orphans while a hook runs in another thread: the hook's
shell must stay its own run's to wait for (issue 16, item 1)."""

from __future__ import annotations

import threading

from queuectl.core.models import RunResult
from queuectl.reaping import reap_zombies
from queuectl.runner import ShellRun


def hook(results: list[RunResult], errors: list[BaseException]) -> None:
    try:
        results.append(ShellRun("exit 3", timeout=10, output_limit=100).run())
    except BaseException as exc:  # what the hook thread would die of
        errors.append(exc)


def test_reaping_orphans_never_takes_a_shell_another_run_waits_for() -> None:
    for _ in range(30):
        results: list[RunResult] = []
        errors: list[BaseException] = []
        thread = threading.Thread(target=hook, args=(results, errors))
        thread.start()
        while thread.is_alive():
            reap_zombies()  # as the job loop does after each job, as often as it can
        thread.join()
        assert errors == []
        assert results[0].exit_code == 3
