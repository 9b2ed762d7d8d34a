"""`logs`: what a follower prints of output that grows, and colour codes stripped off a
terminal."""

from __future__ import annotations

import pytest

from queuectl.cli.commands.logs import ANSI_ESCAPE, _new_part


@pytest.mark.parametrize(
    ("before", "now", "new"),
    [
        ("", "", ""),
        ("", "line 1\n", "line 1\n"),
        ("line 1\n", "line 1\n", ""),
        ("line 1\n", "line 1\nline 2\n", "line 2\n"),
        ("line 1\nli", "line 1\nline 2\n", "ne 2\n"),  # a save mid-line
    ],
)
def test_new_part_of_output_that_grows(before: str, now: str, new: str) -> None:
    assert _new_part(before, now) == new


def numbered(first: int, last: int) -> str:
    return "".join(f"line {n}\n" for n in range(first, last + 1))


def test_new_part_once_the_kept_tail_slides() -> None:
    before = numbered(1, 500)
    now = numbered(100, 520)  # the oldest lines fell out of the kept tail
    assert _new_part(before, now) == numbered(501, 520)


def test_new_part_when_the_new_text_repeats_the_old_end() -> None:
    # Output that repeats itself: the old end turns up again in the new text, and only
    # the first place it fits tells where the new text starts.
    block = "".join(f"step {n}\n" for n in range(60))
    before = "header\n" + block
    now = block[10:] + block + block
    assert _new_part(before, now) == block + block


def test_new_part_when_the_slid_tail_starts_inside_a_character() -> None:
    before = "é" * 300 + "end\n"
    # The kept bytes start in the middle of a two-byte character: U+FFFD at the start.
    now = "\ufffd" + "é" * 200 + "end\nmore\n"
    assert _new_part(before, now) == "more\n"


def test_new_part_after_more_than_the_kept_tail_gives_all_of_it() -> None:
    assert _new_part(numbered(1, 100), numbered(900, 1000)) == numbered(900, 1000)


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b[1;38;5;208mbold orange\x1b[m", "bold orange"),
        ("\x1b[2K\x1b[1Gprogress 50%\r", "progress 50%\r"),
        ("\x1b]0;window title\x07text", "text"),
        ("\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("\x1b[1m\x1b[31mtput\x1b(B\x1b[m plain", "tput plain"),  # `tput bold; tput sgr0`
        ("\x1b7saved\x1b8", "saved"),
        ("\x1bcreset", "reset"),
        ("no escapes [31m here", "no escapes [31m here"),
    ],
)
def test_ansi_escapes_are_stripped(raw: str, plain: str) -> None:
    assert ANSI_ESCAPE.sub("", raw) == plain
