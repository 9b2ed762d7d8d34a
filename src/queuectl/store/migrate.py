"""Schema migrations: numbered SQL files per backend, applied in order once each."""

from __future__ import annotations

from importlib import resources


def migration_scripts(backend: str) -> list[tuple[int, str]]:
    """(version, sql) pairs for `backend`, ordered by version (file name NNNN_name.sql)."""
    folder = resources.files("queuectl.store").joinpath("migrations", backend)
    scripts = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            scripts.append((int(entry.name.split("_", 1)[0]), entry.read_text("utf-8")))
    return sorted(scripts)


def statements(script: str) -> list[str]:
    """Split a script on `;` at line ends (our scripts keep no `;` inside literals)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";\n") if part.strip().strip(";")]


def latest_version(backend: str) -> int:
    return migration_scripts(backend)[-1][0]
