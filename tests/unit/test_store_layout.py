"""The store's layout (docs/store.md): modules of one concern each, under about 400 lines,
and statements as named constants that say what they do and which index they go through."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import queuectl
import queuectl.store

SOURCE = Path(queuectl.__file__).parent
STORE = Path(queuectl.store.__file__).parent
MODULES = sorted(STORE.rglob("*.py"))
BACKEND_MODULES = [path for path in MODULES if path.parent.name in ("sqlite", "postgres")]
MAX_LINES = 400
SQL_WORDS = ("SELECT", "UPDATE", "INSERT", "DELETE", "WITH", "PRAGMA")


def sql_constants(path: Path) -> list[tuple[str, int]]:
    """(name, line) of each module-level constant whose value is SQL text."""
    found = []
    for node in ast.parse(path.read_text("utf-8")).body:
        if not isinstance(node, ast.Assign) or not isinstance(node.targets[0], ast.Name):
            continue
        name = node.targets[0].id
        value = node.value
        text = ""
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            text = value.value
        elif isinstance(value, ast.JoinedStr) and value.values:
            first = value.values[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                text = first.value
        if name.isupper() and text.lstrip().upper().startswith(SQL_WORDS):
            found.append((name, node.lineno))
    return found


@pytest.mark.parametrize(
    "path", sorted(SOURCE.rglob("*.py")), ids=lambda path: str(path.relative_to(SOURCE))
)
def test_no_module_is_over_400_lines(path: Path) -> None:
    """Every module reads in one sitting; one that grows past this is split by concern."""
    assert len(path.read_text("utf-8").splitlines()) <= MAX_LINES


@pytest.mark.parametrize("path", BACKEND_MODULES, ids=lambda path: str(path.relative_to(STORE)))
def test_each_statement_constant_has_a_comment_above(path: Path) -> None:
    lines = path.read_text("utf-8").splitlines()
    bare = [name for name, line in sql_constants(path) if not lines[line - 2].startswith("#")]
    assert bare == [], f"statements without a comment (what, and which index): {bare}"


def test_the_claims_of_both_backends_are_named_statements() -> None:
    """The check above finds something to check where it matters most."""
    for backend in ("sqlite", "postgres"):
        names = {name for name, _ in sql_constants(STORE / backend / "claims.py")}
        if backend == "postgres":  # the reads of `status` and `show` share it, psycopg-free
            names |= {name for name, _ in sql_constants(STORE / backend / "statements.py")}
        assert {"STALE_JOBS", "HOLDS_CLAIM", "SAVE_OUTPUT"} <= names
