"""Defaults of new jobs, in a module of their own so that `enqueue` reads them without
loading Settings (a dataclass, with typing and inspect: half of `enqueue`'s start-up);
Settings parses its numeric keys with the same parsers, so the two cannot disagree."""

from __future__ import annotations

import math

from queuectl.core.errors import InvalidConfig

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (enqueue start-up)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

DEFAULT_MAX_RETRIES = 3  # config max-retries
DEFAULT_JOB_TIMEOUT = 300.0  # seconds; config job-timeout
# The longest duration a setting may hold: far beyond any sane lease, timeout or backoff,
# yet small enough for every store's interval arithmetic and for thread waits (issue 4:
# a lease-timeout of 1e308 made every PostgreSQL command fail with "interval out of range").
MAX_SETTING_SECONDS = 10 * 365 * 86400.0  # seconds (ten years)
MAX_RETRIES_SETTING = 1000  # as a job's own max_retries


def number_parser(
    minimum: float, *, inclusive: bool = True, integer: bool = False, maximum: float | None = None
) -> Callable[[str], float | int]:
    """A config value's parser: a (whole) number within bounds, or InvalidConfig."""

    def parse(text: str) -> float | int:
        value = _number(text.strip(), minimum=minimum, inclusive=inclusive, integer=integer)
        if maximum is not None and value > maximum:
            raise InvalidConfig(f"{text!r} must be <= {display_number(maximum)}")
        return value

    return parse


def _number(text: str, *, minimum: float, inclusive: bool, integer: bool) -> float | int:
    try:
        value: float | int = int(text) if integer else float(text)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise InvalidConfig(f"{text!r} is not {kind}") from None
    if not math.isfinite(value):
        raise InvalidConfig(f"{text!r} is not a finite number")
    if value < minimum or (value == minimum and not inclusive):
        relation = ">=" if inclusive else ">"
        raise InvalidConfig(f"{text!r} must be {relation} {display_number(minimum)}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value


def display_number(value: float | int) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


parse_max_retries = number_parser(0, integer=True, maximum=MAX_RETRIES_SETTING)
parse_job_timeout = number_parser(0, inclusive=False, maximum=MAX_SETTING_SECONDS)


class StoredDefaults:
    """What validation needs from the config table: the defaults of new jobs, read as
    Settings.from_stored reads them (unknown keys and broken values ignored)."""

    def __init__(self, stored: Iterable[tuple[str, str]] = ()) -> None:
        self.max_retries: int = DEFAULT_MAX_RETRIES
        self.job_timeout: float = DEFAULT_JOB_TIMEOUT
        for key, text in stored:
            try:
                if key == "max-retries":
                    self.max_retries = int(parse_max_retries(text))
                elif key == "job-timeout":
                    self.job_timeout = parse_job_timeout(text)
            except InvalidConfig:
                continue
