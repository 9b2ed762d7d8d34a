"""Schema migrations: numbered SQL files per backend, applied in order once each."""

from __future__ import annotations

import os

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")  # a folder per backend


def migration_files(backend: str) -> list[tuple[int, str]]:
    """(version, path) pairs for `backend`, ordered by version (file name NNNN_name.sql)."""
    folder = os.path.join(MIGRATIONS, backend)
    return sorted(
        (int(name.split("_", 1)[0]), os.path.join(folder, name))
        for name in os.listdir(folder)
        if name.endswith(".sql")
    )


def migration_scripts(backend: str) -> list[tuple[int, str]]:
    """(version, sql) pairs for `backend`, ordered by version."""
    scripts = []
    for version, path in migration_files(backend):
        with open(path, encoding="utf-8") as script:
            scripts.append((version, script.read()))
    return scripts


def statements(script: str) -> list[str]:
    """Split a script on `;` at line ends (our scripts keep no `;` inside literals)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";\n") if part.strip().strip(";")]


def latest_version(backend: str) -> int:
    """The store's schema version: the number of the newest migration file, from the file
    names alone (no script is read), so that the lean paths can afford it too."""
    return migration_files(backend)[-1][0]
