"""The benchmark's peer comparisons: a missing peer is reported, never a failure, and
queuectl is held against the fastest way a peer was run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from bench.env import Context
from bench.peers.drains import Drain, read_log, tsp_drain
from bench.peers.install import TSP, Peers
from bench.report import Run, markdown, verdict
from bench.results import BenchError, Sizes
from bench.throughput import Contender, comparisons


def _context(tmp_path: Path, peers: Peers) -> Context:
    return Context(Sizes.pick(True), tmp_path, None, peers)


def _contender(label: str, spans: list[float], peer: str | None = None) -> Contender:
    def never(_workdir: Path) -> Drain:
        raise AssertionError("not run in this test")

    return Contender(label, never, peer, [Drain(900, span, span) for span in spans])


def test_a_peer_left_out_is_reported_as_not_measured_with_the_reason(tmp_path: Path) -> None:
    ctx = _context(tmp_path, Peers.off("a quick run leaves them out (--peers)"))
    everyone = [
        _contender("xargs", [0.5]),
        _contender("queuectl", [1.5]),
        _contender(TSP, [], TSP),
        _contender("huey (thread)", [], "huey"),
    ]
    found = comparisons(ctx, "sqlite", everyone)

    assert [r.name for r in found] == ["vs huey", "vs task-spooler"]
    for result in found:
        assert result.passed is None
        assert verdict(result) == "not measured"
    report = markdown(Run(found, {}, "python -m bench --quick", quick=True))
    assert "Not measured: a quick run leaves them out (--peers)." in report
    assert "FAIL" not in report


def test_queuectl_is_compared_with_the_faster_huey(tmp_path: Path) -> None:
    peers = Peers(found={"huey": Path("python"), TSP: Path("tsp")})
    everyone = [
        _contender("xargs", [0.5, 0.5, 0.5]),
        _contender("queuectl", [1.0, 1.2, 0.8]),
        _contender(TSP, [0.6, 0.6, 0.6], TSP),
        _contender("huey (thread)", [1.8, 1.8, 1.8], "huey"),
        _contender("huey (process)", [0.9, 0.9, 0.9], "huey"),
    ]
    versus_huey, versus_tsp = comparisons(_context(tmp_path, peers), "sqlite", everyone)

    assert versus_huey.reference == pytest.approx(1000.0)  # 900 jobs in 0.9 s
    assert versus_huey.reference_label.startswith("huey (process)")
    assert versus_huey.passed is False  # 900 jobs/s is not ahead of 1,000
    assert versus_tsp.reference == pytest.approx(1500.0)


def test_a_peer_that_lost_jobs_cannot_pass_for_a_fast_one(tmp_path: Path) -> None:
    log = tmp_path / "times"
    log.write_text("10.0 10.5\n10.1 11.0\n")
    assert read_log(log, 2) == (10.0, 11.0)
    with pytest.raises(BenchError, match="1 of 3 jobs were not completed"):
        read_log(log, 3)


def test_a_failed_comparison_says_why_not_error(tmp_path: Path) -> None:
    peers = Peers(found={"pgqueuer": Path("python")})
    broken = _contender("pgqueuer (limit)", [], "pgqueuer")
    broken.failed = "pgq install exited 1: permission denied"
    everyone = [_contender("xargs", [0.5]), _contender("queuectl", [1.0]), broken]
    (result,) = comparisons(_context(tmp_path, peers), "postgres", everyone)

    assert result.not_measured == "it failed: pgq install exited 1: permission denied"
    assert result.error is None  # a broken peer does not make the run exit non-zero


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tsp") is None, reason="task-spooler is not installed")
def test_task_spooler_drains_every_job_behind_its_gate_on_a_private_queue(
    tmp_path: Path,
) -> None:
    tsp = shutil.which("tsp")
    assert tsp is not None
    drain = tsp_drain(Path(tsp), tmp_path, 20)

    assert drain.jobs == 20
    assert drain.span > 0
    # Its own queue: every job's output file is in the run's folder, the gate's included.
    assert len(list((tmp_path / "tmp").glob("ts-out.*"))) == 21
    assert not (tmp_path / "ts.sock").exists()  # and its server is gone with the run
