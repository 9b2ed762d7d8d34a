"""Plain jobs for the lean `enqueue` paths (store/sqlite_enqueue.py, postgres_enqueue.py):
the rules of core.spec with the store's configured defaults, and the fields those paths
write. A job that sets any other field goes down the full path."""

from __future__ import annotations

from queuectl.core.defaults import StoredDefaults
from queuectl.core.spec import parse_field_lines, parse_job_fields

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

# What the stores' insert_jobs write for a plain job, by NewJob field. A field outside this
# set (a newer feature's) that is set sends the job down the full path.
# id_generated only shapes messages and is never stored.
WRITTEN_FIELDS = frozenset(
    ("id", "command", "queue", "priority", "max_retries", "timeout", "scheduled_at", "cwd", "env")
).union(("id_generated",))


def parse_plain_jobs(
    texts: Sequence[str], stored_config: Sequence[tuple[str, str]], *, lines: bool
) -> list[dict[str, Any]] | None:
    """The validated fields of each job (one JSON object, or JSON lines with `lines`);
    None when a job needs the full path. Bad input raises InvalidJobSpec exactly as the
    full path would."""
    defaults = StoredDefaults(stored_config)
    if lines:
        jobs = [fields for _, fields in parse_field_lines(texts, defaults)]
    else:
        jobs = [parse_job_fields(texts[0], defaults)]
    if any(_has_unwritten_field(fields) for fields in jobs):
        return None
    return jobs


def env_text(env: dict[str, str] | None) -> str | None:
    if env is None:
        return None
    import json

    return json.dumps(env)


def _has_unwritten_field(fields: dict[str, Any]) -> bool:
    """Set means anything but None or an empty list (no exit policy, no dependency)."""
    for key, value in fields.items():
        if value is not None and key not in WRITTEN_FIELDS and value != ():
            return True
    return False
