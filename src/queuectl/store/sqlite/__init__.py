"""The SQLite backend, one module per concern; SqliteStore (store.py) puts them together."""

from __future__ import annotations

from queuectl.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
