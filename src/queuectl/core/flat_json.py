"""The JSON that most `queuectl enqueue '{...}'` calls get, read without the json module:
importing json imports re and compiles its patterns, which costs a shell loop of enqueues a
third of a bare interpreter's start-up on every job.

Only the easy case is read here: one object whose keys are distinct and whose values are
strings without escapes, whole numbers, true, false or null. For anything else (an escape,
a fraction, an array, a syntax error) read_flat_object() returns None and the caller hands
the text to json, which then builds the object or words the error. Where both read a text
they give the same object: tests/unit/test_flat_json.py checks it against json.loads.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (enqueue start-up)
if TYPE_CHECKING:
    from typing import TypeAlias

    Scalar: TypeAlias = str | int | bool | None

WHITESPACE = " \t\n\r"  # JSON's own: no other character may stand between tokens
DIGITS = "0123456789"
MAX_DIGITS = 18  # longer numbers go to json, whose int() may refuse them (4300 digits)
WORDS = (("true", True), ("false", False), ("null", None))


def read_flat_object(text: str) -> dict[str, Scalar] | None:
    """The object `text` holds, when it is that easy case; else None (json decides)."""
    end = len(text)
    at = _skip(text, 0)
    if at >= end or text[at] != "{":
        return None
    at = _skip(text, at + 1)
    found: dict[str, Scalar] = {}
    if at < end and text[at] == "}":
        return found if _skip(text, at + 1) == end else None
    while True:
        key, at = _string(text, at)
        if key is None or key in found:
            return None  # a duplicate key: json words the refusal
        at = _skip(text, at)
        if at >= end or text[at] != ":":
            return None
        at = _skip(text, at + 1)
        value, at = _value(text, at)
        if at < 0:
            return None
        found[key] = value
        at = _skip(text, at)
        if at >= end:
            return None
        if text[at] == "}":
            return found if _skip(text, at + 1) == end else None
        if text[at] != ",":
            return None
        at = _skip(text, at + 1)


def _skip(text: str, at: int) -> int:
    """The index of the first character at or after `at` that is not JSON whitespace."""
    end = len(text)
    while at < end and text[at] in WHITESPACE:
        at += 1
    return at


def _string(text: str, at: int) -> tuple[str | None, int]:
    """A string without escapes or control characters starting at `at`, and the index
    after it; None when it is anything else."""
    if at >= len(text) or text[at] != '"':
        return None, at
    close = text.find('"', at + 1)
    if close < 0:
        return None, at
    value = text[at + 1 : close]
    # isprintable() is False for every control character (and for some harmless ones,
    # which json then reads): a cheap test that keeps the easy case easy.
    if "\\" in value or not value.isprintable():
        return None, at
    return value, close + 1


def _value(text: str, at: int) -> tuple[Scalar, int]:
    """A value starting at `at` and the index after it; index -1 when json must read it."""
    if at >= len(text):
        return None, -1
    first = text[at]
    if first == '"':
        value, after = _string(text, at)
        return (value, after) if value is not None else (None, -1)
    if first == "-" or first in DIGITS:
        return _whole_number(text, at)
    for word, meaning in WORDS:
        if text.startswith(word, at):
            return meaning, at + len(word)
    return None, -1


def _whole_number(text: str, at: int) -> tuple[Scalar, int]:
    """JSON's `-?(0|[1-9][0-9]*)` not followed by a fraction or exponent."""
    end = len(text)
    start = at
    if text[at] == "-":
        at += 1
    digits_from = at
    while at < end and text[at] in DIGITS:
        at += 1
    digits = text[digits_from:at]
    if not digits or len(digits) > MAX_DIGITS or (digits[0] == "0" and len(digits) > 1):
        return None, -1
    if at < end and text[at] in ".eE":
        return None, -1
    return int(text[start:at]), at
