"""One field of a job: the checks that enqueue JSON, `add` options, the API and the
dashboard share, each with the one-line error a user sees.

Cheap to import on purpose (no json, re, datetime, dataclasses), like core.spec: both sit on
the start-up path of `enqueue`.
"""

from __future__ import annotations

import math

from queuectl.core.errors import InvalidJobSpec, UsageError
from queuectl.core.ids import is_valid_job_id

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (enqueue start-up)
if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

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
# A job's own hook commands (docs/HOOKS.md), one per event: the JSON keys
# and `add` options, stored together in the job's `hooks` object.
HOOK_KEYS = ("on_complete", "on_fail", "on_dead", "on_cancel")


def check_exit_codes(name: str, value: object) -> tuple[int, ...]:
    """A JSON array of exit codes (0-255) as a sorted tuple without repeats; null is ()."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidJobSpec(f"{name} must be an array of exit codes, got {json_type(value)}")
    codes = set()
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int):
            raise InvalidJobSpec(f"{name}: exit codes are integers, got {json_type(item)}")
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
    if not is_utf8(value):
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
    if not is_utf8(value):
        raise InvalidJobSpec("command must be valid UTF-8 text")
    # Encoding costs only for commands that could be too long (4 bytes per character at most).
    if len(value) * 4 > MAX_COMMAND_BYTES and len(value.encode()) > MAX_COMMAND_BYTES:
        raise InvalidJobSpec(
            f"command is {len(value.encode())} bytes, over the system's limit of "
            f"{MAX_COMMAND_BYTES} bytes for one argument (128 KiB): put it in a script "
            "and enqueue the script"
        )
    return value


def check_hook(key: str, value: object) -> str:
    """One hook command: a non-empty shell command, run by `sh -c` (the job's facts reach
    it in the environment only)."""
    if not isinstance(value, str):
        raise InvalidJobSpec(f"{key} must be a string (a shell command), got {json_type(value)}")
    if not value.strip():
        raise InvalidJobSpec(f"{key} must not be empty")
    if "\0" in value:
        raise InvalidJobSpec(f"{key} must not contain a NUL character")
    if not is_utf8(value):
        raise InvalidJobSpec(f"{key} must be valid UTF-8 text")
    if len(value) * 4 > MAX_COMMAND_BYTES and len(value.encode()) > MAX_COMMAND_BYTES:
        raise InvalidJobSpec(f"{key} is over {MAX_COMMAND_BYTES} bytes: put it in a script")
    return value


def check_hooks(data: dict[str, object]) -> dict[str, str] | None:
    """The hook keys of an enqueue object (null: unset) as the job's hooks, None if none."""
    hooks = {key: check_hook(key, data[key]) for key in HOOK_KEYS if data.get(key) is not None}
    return hooks or None


def check_cwd(value: str) -> str:
    if not value.strip():
        raise InvalidJobSpec("cwd must not be empty")
    if "\0" in value:
        raise InvalidJobSpec("cwd must not contain a NUL character")
    if not is_utf8(value):
        raise InvalidJobSpec("cwd must be valid UTF-8 text")
    return value


def check_env(value: object) -> dict[str, str]:
    """An object of environment variables: names like SHELL_NAMES, string values."""
    if not isinstance(value, dict):
        raise InvalidJobSpec(f"env must be an object of strings, got {json_type(value)}")
    for name, text in value.items():
        if not name or name[0] not in ENV_NAME_FIRST or name.strip(ENV_NAME_CHARACTERS):
            raise InvalidJobSpec(f"env: invalid variable name {name!r}")
        if not isinstance(text, str):
            raise InvalidJobSpec(f"env: {name} must be a string, got {json_type(text)}")
        if "\0" in text:
            raise InvalidJobSpec(f"env: {name} must not contain a NUL character")
        if not is_utf8(text):
            raise InvalidJobSpec(f"env: {name} must be valid UTF-8 text")
    return dict(value)


def check_depends_on(value: object, job_id: str) -> tuple[str, ...]:
    """A list of job ids this job waits for: valid ids, not itself; repeats dropped."""
    if not isinstance(value, list):
        raise InvalidJobSpec(f"depends_on must be an array of job ids, got {json_type(value)}")
    ids: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise InvalidJobSpec(f"depends_on must hold job ids (strings), got {json_type(item)}")
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


def is_utf8(value: str) -> bool:
    """False for text holding lone surrogates: bytes that were not UTF-8 (argv, stdin) or a
    `\\udcff` JSON escape. The stores keep UTF-8 only."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_type(value: object) -> str:
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
