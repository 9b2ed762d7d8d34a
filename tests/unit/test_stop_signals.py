"""How a worker counts stop signals: by who sent them, not by how close they came."""

from __future__ import annotations

from queuectl.worker.signals import PAIR_WINDOW, Source, StopCounter


def test_each_terminal_ctrl_c_is_a_request_however_quick() -> None:
    counter = StopCounter()
    assert counter.count(Source.TERMINAL, now=10.0) == 1
    assert counter.count(Source.TERMINAL, now=10.01) == 2


def test_a_direct_and_a_forwarded_copy_are_one_request() -> None:
    counter = StopCounter()
    assert counter.count(Source.OTHER, now=10.0) == 1
    assert counter.count(Source.SUPERVISOR, now=10.001) == 1
    # The next pair is the second request, in either order.
    assert counter.count(Source.SUPERVISOR, now=10.2) == 2
    assert counter.count(Source.OTHER, now=10.201) == 2


def test_copies_far_apart_are_two_requests() -> None:
    counter = StopCounter()
    assert counter.count(Source.OTHER, now=10.0) == 1
    assert counter.count(Source.SUPERVISOR, now=10.0 + PAIR_WINDOW + 0.5) == 2


def test_repeats_from_one_sender_are_never_folded() -> None:
    counter = StopCounter()
    assert counter.count(Source.SUPERVISOR, now=1.0) == 1
    assert counter.count(Source.SUPERVISOR, now=1.001) == 2
    other = StopCounter()
    assert other.count(Source.OTHER, now=1.0) == 1
    assert other.count(Source.OTHER, now=1.001) == 2


def test_a_terminal_signal_never_pairs_with_a_forwarded_one() -> None:
    counter = StopCounter()
    assert counter.count(Source.TERMINAL, now=1.0) == 1
    assert counter.count(Source.SUPERVISOR, now=1.001) == 2
