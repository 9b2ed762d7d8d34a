"""User input to NewJob: enqueue JSON, `add` options, durations and times.

Cheap to import on purpose (no json, re, datetime, dataclasses): `enqueue` validates with
these rules before anything heavier is loaded; the rest is imported where it is needed.
"""

from __future__ import annotations

import math

from queuectl.core.errors import InvalidJobSpec, UsageError
from queuectl.core.ids import is_valid_job_id, new_job_id

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (enqueue start-up)
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from datetime import datetime
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
    *("state", "attempts", "created_at", "updated_at"),  # a record's shape: see record_fields
)
ENV_NAME_FIRST = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
ENV_NAME_CHARACTERS = ENV_NAME_FIRST + "0123456789"
QUEUE_PATTERN = r"[A-Za-z0-9_.-]{1,128}"  # for schemas; check_queue checks the same
QUEUE_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"
MAX_QUEUE_LENGTH = 128
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
MAX_RETRIES_LIMIT = 1000
MAX_EXIT_CODE = 255
MAX_DEDUPE_KEY_LENGTH = 256  # characters
# The command is one `sh -c` argument: Linux refuses an argument over MAX_ARG_STRLEN (32
# pages, 128 KiB, its NUL included) with "Argument list too long" at every attempt.
MAX_COMMAND_BYTES = 128 * 1024 - 1


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
    import json  # here, not at the top: only what decodes JSON pays for it

    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidJobSpec(f"invalid JSON: {exc.msg} at column {exc.colno}", line) from None
    except ValueError as exc:  # a duplicate key or NaN, refused by the hooks
        raise InvalidJobSpec(f"invalid JSON: {exc}", line) from None
    except RecursionError:  # arrays or objects nested thousands deep
        raise InvalidJobSpec("invalid JSON: nested too deeply", line) from None
    if not isinstance(data, dict):
        raise InvalidJobSpec(f"expected a JSON object, got {_json_type(data)}", line)
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
        if not raw.strip():
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
    unknown = [key for key in data if key not in ALLOWED_KEYS]
    if unknown:
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
    )


def check_record_fields(data: dict[str, Any]) -> None:
    """A job written in the stored record's shape enqueues when its bookkeeping says what a
    new job is anyway (state pending, no attempts); created_at and updated_at are ignored.
    Any other value is refused: queuectl keeps these itself."""
    if "state" in data and data["state"] != "pending":
        raise InvalidJobSpec(
            f"state must be 'pending' or left out, got {_json_type(data['state'])}: "
            "queuectl sets a job's state (a new job is pending)"
        )
    attempts = data.get("attempts", 0)
    if isinstance(attempts, bool) or attempts != 0:
        raise InvalidJobSpec(
            f"attempts must be 0 or left out, got {_json_type(attempts)}: "
            "queuectl counts a job's attempts (a new job has none)"
        )


def _policy_fields(data: dict[str, Any]) -> dict[str, Any]:
    """retry_on_exit, fatal_on_exit and dedupe_key of an enqueue object (null: unset)."""
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


def check_exit_codes(name: str, value: object) -> tuple[int, ...]:
    """A JSON array of exit codes (0-255) as a sorted tuple without repeats; null is ()."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidJobSpec(f"{name} must be an array of exit codes, got {_json_type(value)}")
    codes = set()
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int):
            raise InvalidJobSpec(f"{name}: exit codes are integers, got {_json_type(item)}")
        if not 0 <= item <= MAX_EXIT_CODE:
            raise InvalidJobSpec(f"{name}: exit code {item} is outside 0-{MAX_EXIT_CODE}")
        codes.add(item)
    return tuple(sorted(codes))


def check_exit_policy(retry_on_exit: tuple[int, ...], fatal_on_exit: tuple[int, ...]) -> None:
    both = sorted(set(retry_on_exit) & set(fatal_on_exit))
    if both:
        raise InvalidJobSpec(
            f"exit code {both[0]} is in both retry_on_exit and fatal_on_exit: choose one"
        )


def parse_exit_codes(option: str, text: str) -> tuple[int, ...]:
    """`add --retry-on-exit 75,111`: comma-separated exit codes."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() and part.isascii() for part in parts):
        raise UsageError(f"{option} {text!r}: expected exit codes separated by commas, e.g. 75,111")
    return check_exit_codes(option, [int(part) for part in parts])


def check_dedupe_key(value: str) -> str:
    if not value.strip():
        raise InvalidJobSpec("dedupe_key must not be empty")
    if len(value) > MAX_DEDUPE_KEY_LENGTH:
        raise InvalidJobSpec(
            f"dedupe_key must be at most {MAX_DEDUPE_KEY_LENGTH} characters, got {len(value)}"
        )
    if "\0" in value:
        raise InvalidJobSpec("dedupe_key must not contain a NUL character")
    if not _is_utf8(value):
        raise InvalidJobSpec("dedupe_key must be valid UTF-8 text")
    return value


def check_job_id(value: str) -> str:
    if not is_valid_job_id(value):
        raise InvalidJobSpec(
            f"invalid id {value!r}: use 1-128 letters, digits, '.', '_', ':', '@' or '-'"
        )
    return value


def check_command(value: str) -> str:
    if not value.strip():
        raise InvalidJobSpec("command must not be empty")
    if "\0" in value:
        raise InvalidJobSpec("command must not contain a NUL character")
    if not _is_utf8(value):
        raise InvalidJobSpec("command must be valid UTF-8 text")
    # Encoding costs only for commands that could be too long (4 bytes per character at most).
    if len(value) * 4 > MAX_COMMAND_BYTES and len(value.encode()) > MAX_COMMAND_BYTES:
        raise InvalidJobSpec(
            f"command is {len(value.encode())} bytes, over the system's limit of "
            f"{MAX_COMMAND_BYTES} bytes for one argument (128 KiB): put it in a script "
            "and enqueue the script"
        )
    return value


def check_cwd(value: str) -> str:
    if not value.strip():
        raise InvalidJobSpec("cwd must not be empty")
    if "\0" in value:
        raise InvalidJobSpec("cwd must not contain a NUL character")
    if not _is_utf8(value):
        raise InvalidJobSpec("cwd must be valid UTF-8 text")
    return value


def check_env(value: object) -> dict[str, str]:
    """An object of environment variables: names like SHELL_NAMES, string values."""
    if not isinstance(value, dict):
        raise InvalidJobSpec(f"env must be an object of strings, got {_json_type(value)}")
    for name, text in value.items():
        if not name or name[0] not in ENV_NAME_FIRST or name.strip(ENV_NAME_CHARACTERS):
            raise InvalidJobSpec(f"env: invalid variable name {name!r}")
        if not isinstance(text, str):
            raise InvalidJobSpec(f"env: {name} must be a string, got {_json_type(text)}")
        if "\0" in text:
            raise InvalidJobSpec(f"env: {name} must not contain a NUL character")
        if not _is_utf8(text):
            raise InvalidJobSpec(f"env: {name} must be valid UTF-8 text")
    return dict(value)


def check_depends_on(value: object, job_id: str) -> tuple[str, ...]:
    """A list of job ids this job waits for: valid ids, not itself; repeats dropped."""
    if not isinstance(value, list):
        raise InvalidJobSpec(f"depends_on must be an array of job ids, got {_json_type(value)}")
    ids: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise InvalidJobSpec(f"depends_on must hold job ids (strings), got {_json_type(item)}")
        if not is_valid_job_id(item):
            raise InvalidJobSpec(f"depends_on: invalid job id {item!r}")
        if item == job_id:
            raise InvalidJobSpec(f"job {job_id!r} cannot depend on itself")
        if item not in ids:
            ids.append(item)
    return tuple(ids)


def split_after(values: Iterable[str]) -> list[str]:
    """`add --after a --after b,c` to ["a", "b", "c"]."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def check_batch_dependencies(jobs: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """Refuse a dependency cycle among the jobs (as NewJob keyword arguments) of one batch
    (jobs already stored cannot be part of one: a dependency must exist when its dependent
    is added)."""
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


def check_queue(value: str) -> str:
    if not 0 < len(value) <= MAX_QUEUE_LENGTH or value.strip(QUEUE_CHARACTERS):
        raise InvalidJobSpec(f"invalid queue {value!r}: use 1-128 letters, digits, '-', '_' or '.'")
    return value


def check_priority(value: int) -> int:
    if not INT32_MIN <= value <= INT32_MAX:
        raise InvalidJobSpec(f"priority {value} is outside the 32-bit range")
    return value


def check_max_retries(value: int) -> int:
    if value < 0:
        raise InvalidJobSpec(f"max_retries must be >= 0, got {value}")
    if value > MAX_RETRIES_LIMIT:
        raise InvalidJobSpec(f"max_retries must be <= {MAX_RETRIES_LIMIT}, got {value}")
    return value


def check_timeout(value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise InvalidJobSpec(f"timeout must be a number > 0, got {value:g}")
    return value


def parse_time(text: str) -> datetime:
    """ISO 8601 to an aware UTC datetime; without an offset it is this machine's local time."""
    from datetime import UTC, datetime

    cleaned = text.strip()
    try:
        value = datetime.fromisoformat(cleaned)
    except ValueError:
        raise InvalidJobSpec(
            f"invalid time {text!r}: expected ISO 8601, e.g. 2026-01-31T09:30:00Z"
        ) from None
    try:
        if value.tzinfo is None:
            value = value.astimezone()  # naive means local time on the enqueuing machine
        return value.astimezone(UTC)
    except (OverflowError, ValueError):  # within a day of year 1 or 9999
        raise InvalidJobSpec(f"invalid time {text!r}: out of range") from None


def parse_duration(text: str) -> float:
    """'30s', '15m', '2h', '7d', '1w', '250ms' or bare seconds to float seconds."""
    from queuectl.core.durations import parse_seconds

    seconds = parse_seconds(text)
    if seconds is None:
        raise UsageError(f"invalid duration {text!r}: expected e.g. 30s, 15m, 2h, 7d")
    return seconds


def delay_to_time(seconds: float, now: datetime) -> datetime:
    from datetime import timedelta

    try:
        return now + timedelta(seconds=seconds)
    except OverflowError:  # past year 9999
        raise UsageError(f"delay of {seconds:g}s is too long") from None


def _is_utf8(value: str) -> bool:
    """False for text holding lone surrogates: bytes that were not UTF-8 (argv, stdin) or a
    `\\udcff` JSON escape. The stores keep UTF-8 only."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _typed(data: dict[str, Any], key: str, kind: type[str]) -> str:
    value = data[key]
    if not isinstance(value, kind):
        raise InvalidJobSpec(f"{key} must be a string, got {_json_type(value)}")
    return value


def _integer(data: dict[str, Any], key: str) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise InvalidJobSpec(f"{key} must be an integer, got {_json_type(value)}")
    return value


def _real(data: dict[str, Any], key: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidJobSpec(f"{key} must be a number, got {_json_type(value)}")
    try:
        return float(value)
    except OverflowError:  # an integer beyond any float: as good as infinite
        return math.inf


def _json_type(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return f"the number {value}"
        case str():
            return f"the string {value!r}" if len(value) < 40 else "a string"
        case list():
            return "an array"
        case dict():
            return "an object"
    return type(value).__name__


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
