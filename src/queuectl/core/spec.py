"""Enqueue JSON to NewJob: one object or many lines, each field checked by core.fields.

Cheap to import on purpose (no json, re, datetime, dataclasses): `enqueue` validates with
these rules before anything heavier is loaded; the rest is imported where it is needed.
"""

from __future__ import annotations

import math

from queuectl.core.errors import InvalidJobSpec
from queuectl.core.fields import (
    HOOK_KEYS,
    check_command,
    check_cwd,
    check_dedupe_key,
    check_depends_on,
    check_env,
    check_exit_codes,
    check_exit_policy,
    check_hooks,
    check_job_id,
    check_max_retries,
    check_priority,
    check_queue,
    check_timeout,
    json_type,
    parse_time,
)
from queuectl.core.flat_json import read_flat_object
from queuectl.core.ids import new_job_id

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (enqueue start-up)
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from json import JSONDecoder
    from typing import Any, Protocol

    from queuectl.core.models import NewJob
    from queuectl.core.settings import Settings

    class JobDefaults(Protocol):
        """What validation needs from Settings: the defaults of new jobs."""

        @property
        def max_retries(self) -> int: ...
        @property
        def job_timeout(self) -> float: ...


ALLOWED_KEYS = (
    "id",
    "command",
    "max_retries",
    "scheduled_at",
    "priority",
    "queue",
    "timeout",
    "cwd",
    "env",
    "retry_on_exit",
    "fatal_on_exit",
    "dedupe_key",
    "depends_on",
    *HOOK_KEYS,
    *("state", "attempts", "created_at", "updated_at"),  # a record's shape: see record_fields
)
_ALLOWED = frozenset(ALLOWED_KEYS)  # for the look-up per key of every line of `enqueue -`
_decoder: JSONDecoder | None = None  # made on first use: see _decode()
JSON_WHITESPACE = " \t\n\r"


def parse_job_json(text: str, settings: Settings, line: int | None = None) -> NewJob:
    """One enqueue JSON object to a NewJob, or InvalidJobSpec saying what is wrong."""
    from queuectl.core.models import NewJob

    return NewJob(**parse_job_fields(text, settings, line))


def parse_job_lines(
    lines: Iterable[str], settings: Settings, *, skip_duplicate_keys: bool = False
) -> list[tuple[int, NewJob]]:
    """JSON lines (blank ones skipped) to (line number, NewJob) pairs, validating all before
    any is used; numbers count physical lines from 1. A dedupe key given twice is refused
    unless `skip_duplicate_keys` (`--if-exists skip`: the first line's job stands)."""
    from queuectl.core.models import NewJob

    numbered = parse_field_lines(lines, settings, skip_duplicate_keys=skip_duplicate_keys)
    return [(number, NewJob(**fields)) for number, fields in numbered]


def decode_job_object(text: str, line: int | None = None) -> dict[str, Any]:
    """The JSON object of one enqueue line, before its fields are checked."""
    if line is None:  # one job (`enqueue '{...}'`): most are read without importing json
        easy = read_flat_object(text)
        if easy is not None:
            return easy
    try:
        data = _decode(text)
    except ValueError as exc:
        from json import JSONDecodeError

        if isinstance(exc, JSONDecodeError):
            raise InvalidJobSpec(f"invalid JSON: {exc.msg} at column {exc.colno}", line) from None
        raise InvalidJobSpec(f"invalid JSON: {exc}", line) from None  # a duplicate key, NaN
    except RecursionError:  # arrays or objects nested thousands deep
        raise InvalidJobSpec("invalid JSON: nested too deeply", line) from None
    if not isinstance(data, dict):
        raise InvalidJobSpec(f"expected a JSON object, got {json_type(data)}", line)
    return data


def parse_job_fields(text: str, settings: JobDefaults, line: int | None = None) -> dict[str, Any]:
    """One enqueue JSON object to NewJob's keyword arguments (see job_fields)."""
    data = decode_job_object(text, line)
    try:
        return job_fields(data, settings)
    except InvalidJobSpec as exc:
        raise InvalidJobSpec(exc.message, line) from None


def parse_field_lines(
    lines: Iterable[str], settings: JobDefaults, *, skip_duplicate_keys: bool = False
) -> list[tuple[int, dict[str, Any]]]:
    """JSON lines to (line number, NewJob keyword arguments), all validated: ids unique,
    dedupe keys unique (unless `skip_duplicate_keys`), no dependency cycle."""
    jobs: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    keys: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        if not raw or raw.isspace():  # as `not raw.strip()`, without a copy of each line
            continue
        # Without its line break: a JSON error at the end of the line then points there.
        fields = parse_job_fields(raw.rstrip("\r\n"), settings, line=number)
        job_id = fields["id"]
        if job_id in seen:
            raise InvalidJobSpec(f"duplicate id {job_id!r} (also on line {seen[job_id]})", number)
        seen[job_id] = number
        key = fields["dedupe_key"]
        if key is not None:
            if key in keys and not skip_duplicate_keys:
                raise InvalidJobSpec(
                    f"duplicate dedupe key {key!r} (also on line {keys[key]})", number
                )
            keys.setdefault(key, number)
        jobs.append((number, fields))
    check_batch_dependencies(jobs)
    return jobs


def job_from_fields(data: dict[str, Any], settings: Settings) -> NewJob:
    from queuectl.core.models import NewJob

    return NewJob(**job_fields(data, settings))


def job_fields(data: dict[str, Any], settings: JobDefaults) -> dict[str, Any]:
    """A decoded enqueue object to NewJob's keyword arguments: every SPEC 2.1 rule, with
    the defaults of `settings`. A plain dict, so that `enqueue` can insert it without
    loading the models."""
    if not _ALLOWED.issuperset(data):
        unknown = [key for key in data if key not in ALLOWED_KEYS]
        allowed = ", ".join(ALLOWED_KEYS)
        raise InvalidJobSpec(f"unknown key {unknown[0]!r} (allowed keys: {allowed})")
    if "command" not in data:
        raise InvalidJobSpec("missing required key 'command'")
    check_record_fields(data)
    job_id = data.get("id")
    id_generated = job_id is None
    job_id = new_job_id() if job_id is None else check_job_id(_typed(data, "id", str))
    return dict(
        id=job_id,
        id_generated=id_generated,
        command=check_command(_typed(data, "command", str)),
        queue=check_queue(_typed(data, "queue", str)) if "queue" in data else "default",
        priority=check_priority(_integer(data, "priority")) if "priority" in data else 0,
        max_retries=(
            check_max_retries(_integer(data, "max_retries"))
            if "max_retries" in data
            else settings.max_retries
        ),
        timeout=check_timeout(_real(data, "timeout"))
        if "timeout" in data
        else settings.job_timeout,
        scheduled_at=(
            parse_time(_typed(data, "scheduled_at", str))
            if data.get("scheduled_at") is not None
            else None
        ),
        cwd=check_cwd(_typed(data, "cwd", str)) if data.get("cwd") is not None else None,
        env=check_env(data["env"]) if data.get("env") is not None else None,
        **_policy_fields(data),
        depends_on=(
            check_depends_on(data["depends_on"], job_id)
            if data.get("depends_on") is not None
            else ()
        ),
        hooks=check_hooks(data),
    )


def check_record_fields(data: dict[str, Any]) -> None:
    """A job written in the stored record's shape enqueues when its bookkeeping says what a
    new job is anyway (state pending, no attempts); created_at and updated_at are ignored.
    Any other value is refused: queuectl keeps these itself."""
    if "state" in data and data["state"] != "pending":
        raise InvalidJobSpec(
            f"state must be 'pending' or left out, got {json_type(data['state'])}: "
            "queuectl sets a job's state (a new job is pending)"
        )
    attempts = data.get("attempts", 0)
    if isinstance(attempts, bool) or attempts != 0:
        raise InvalidJobSpec(
            f"attempts must be 0 or left out, got {json_type(attempts)}: "
            "queuectl counts a job's attempts (a new job has none)"
        )


def _policy_fields(data: dict[str, Any]) -> dict[str, Any]:
    """retry_on_exit, fatal_on_exit and dedupe_key of an enqueue object (null: unset)."""
    if (  # most jobs: nothing to check
        data.get("retry_on_exit") is None
        and data.get("fatal_on_exit") is None
        and data.get("dedupe_key") is None
    ):
        return {"retry_on_exit": (), "fatal_on_exit": (), "dedupe_key": None}
    retry = check_exit_codes("retry_on_exit", data.get("retry_on_exit"))
    fatal = check_exit_codes("fatal_on_exit", data.get("fatal_on_exit"))
    check_exit_policy(retry, fatal)
    key = data.get("dedupe_key")
    return {
        "retry_on_exit": retry,
        "fatal_on_exit": fatal,
        "dedupe_key": check_dedupe_key(_typed(data, "dedupe_key", str))
        if key is not None
        else None,
    }


def check_batch_dependencies(jobs: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """Refuse a dependency cycle among the jobs (as NewJob keyword arguments) of one batch
    (jobs already stored cannot be part of one: a dependency must exist when its dependent
    is added)."""
    if not any(fields["depends_on"] for _, fields in jobs):
        return  # most batches: no dependency, no cycle
    by_id = {fields["id"]: tuple(fields["depends_on"]) for _, fields in jobs}
    done: set[str] = set()
    for number, fields in jobs:
        cycle = _cycle_from(fields["id"], by_id, done)
        if cycle is not None:
            shown = (
                cycle if len(cycle) <= 8 else [*cycle[:4], f"({len(cycle) - 6} more)", *cycle[-2:]]
            )
            raise InvalidJobSpec(f"dependency cycle: {' -> '.join(shown)}", number)


def _cycle_from(start: str, by_id: dict[str, tuple[str, ...]], done: set[str]) -> list[str] | None:
    """Depth-first walk along depends_on within the batch (iterative: a chain may be long
    enough to break Python's recursion limit); the cycle found, if any."""
    if start in done:
        return None
    path: list[str] = [start]
    on_path = {start}
    pending: list[list[str]] = [list(by_id[start])]
    while path:
        if not pending[-1]:
            finished = path.pop()
            on_path.discard(finished)
            done.add(finished)
            pending.pop()
            continue
        step = pending[-1].pop()
        if step in on_path:
            return [*path[path.index(step) :], step]
        if step in done or step not in by_id:
            continue
        path.append(step)
        on_path.add(step)
        pending.append(list(by_id[step]))
    return None


def _typed(data: dict[str, Any], key: str, kind: type[str]) -> str:
    value = data[key]
    if not isinstance(value, kind):
        raise InvalidJobSpec(f"{key} must be a string, got {json_type(value)}")
    return value


def _integer(data: dict[str, Any], key: str) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise InvalidJobSpec(f"{key} must be an integer, got {json_type(value)}")
    return value


def _real(data: dict[str, Any], key: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidJobSpec(f"{key} must be a number, got {json_type(value)}")
    try:
        return float(value)
    except OverflowError:  # an integer beyond any float: as good as infinite
        return math.inf


def _decode(text: str) -> Any:
    """json.loads(text) with the hooks, through one decoder for every line (json.loads with
    hooks builds a new one per call, a tenth of what `enqueue -` spends per line)."""
    global _decoder
    if _decoder is None:
        import json  # here, not at the top: only what decodes JSON pays for it

        _decoder = json.JSONDecoder(
            object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant
        )
    if text.startswith("{"):  # the usual line: no whitespace or byte order mark to skip first
        data, end = _decoder.raw_decode(text)
        if end == len(text) or not text[end:].strip(JSON_WHITESPACE):
            return data
    elif text.startswith("\ufeff"):
        import json  # json.loads refuses a byte order mark before it decodes: let it say so

        return json.loads(text)
    return _decoder.decode(text)  # words any error as json.loads does


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):  # rare: only then look for the key, in Python
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return result


def _no_constant(name: str) -> Iterator[Any]:
    raise ValueError(f"{name} is not a valid JSON number")
