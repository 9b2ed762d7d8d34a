"""json.loads for enqueue without importing the json package, which pulls in `re` and
costs a shell loop of `enqueue` calls a third of each start-up.

It drives the same C scanner json.loads uses (`_json.make_scanner`), so a document it
accepts decodes to the same value; anything it does not accept outright (bad syntax, a BOM,
trailing data) goes to json.loads itself, for the very same error.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Scanner = Callable[[str, int], tuple[Any, int]]

WHITESPACE = " \t\n\r"  # JSON's, which json.loads skips around the document


class _Options:
    """The attributes the C scanner reads from its context (a JSONDecoder normally)."""

    def __init__(
        self,
        object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None,
        parse_constant: Callable[[str], Any],
    ) -> None:
        self.strict = True
        self.object_hook = None
        self.object_pairs_hook = object_pairs_hook
        self.parse_float = float
        self.parse_int = int
        self.parse_constant = parse_constant
        self.memo: dict[str, str] = {}


def loads(
    text: str,
    *,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
    parse_constant: Callable[[str], Any] | None = None,
) -> Any:
    """json.loads(text, object_pairs_hook=..., parse_constant=...), raising what it raises."""
    start = len(text) - len(text.lstrip(WHITESPACE))
    if start < len(text) and text[0] != "\ufeff":
        options = (object_pairs_hook, parse_constant or _CONSTANTS.__getitem__)
        scan = _scanners.get(options) or _new_scanner(options)
        try:
            value, end = scan(text, start)
        except (StopIteration, SystemError):
            # Bad syntax. json.loads below words the error: the scanner cannot, as it
            # looks for JSONDecodeError in a json.decoder that is not loaded (SystemError).
            pass
        else:
            if not text[end:].strip(WHITESPACE):
                return value
    import json

    return json.loads(text, object_pairs_hook=object_pairs_hook, parse_constant=parse_constant)


def _new_scanner(options: tuple[Any, Any]) -> Scanner:
    """One scanner per set of hooks, kept: `enqueue -` decodes many lines alike."""
    from _json import make_scanner

    # typeshed types the context as a scanner; any object with these attributes will do.
    scanner: Scanner = make_scanner(_Options(*options))  # type: ignore[arg-type]
    _scanners[options] = scanner
    return scanner


_scanners: dict[tuple[Any, Any], Scanner] = {}
_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
