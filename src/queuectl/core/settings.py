"""Persistent settings: one registry of config keys, their parsers and defaults."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from queuectl.core.defaults import (
    DEFAULT_JOB_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    MAX_SETTING_SECONDS,
    parse_job_timeout,
    parse_max_retries,
)
from queuectl.core.defaults import (
    display_number as _display,
)
from queuectl.core.defaults import (
    number_parser as _parser,
)
from queuectl.core.durations import format_seconds, parse_seconds
from queuectl.core.errors import InvalidConfig

MAX_OUTPUT_LIMIT = 256 * 1024 * 1024  # bytes; SQLite refuses strings over about 1 GB


@dataclass(frozen=True, slots=True)
class Settings:
    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_base: float = 2.0
    backoff_max: float = 3600.0  # seconds
    job_timeout: float = DEFAULT_JOB_TIMEOUT  # seconds
    lease_timeout: float = 30.0  # seconds
    poll_interval: float = 1.0  # seconds
    output_limit: int = 65536  # bytes
    retention_completed: float = 7 * 86400.0  # seconds a completed job is kept; 0: forever
    retention_dead: float = 30 * 86400.0  # seconds a dead or cancelled job is kept; 0: forever
    dlq_threshold: int = 100  # dead jobs above which `doctor` reports a problem
    backoff_jitter: str = "none"  # "full": each retry delay drawn uniformly from [0, delay]
    # Hooks and webhooks (docs/HOOKS.md); "" is none.
    on_complete: str = ""  # a shell command run when a job completes
    on_fail: str = ""  # ... when an attempt failed and will be retried
    on_dead: str = ""  # ... when a job dies (into the DLQ)
    on_cancel: str = ""  # ... when a job is cancelled
    hook_timeout: float = 10.0  # seconds a hook command or one webhook request may take
    webhook_url: str = ""  # a JSON POST of each of those events
    webhook_secret: str = ""  # HMAC-SHA256 key of the X-Queuectl-Signature header

    @property
    def hooks_configured(self) -> bool:
        """Whether any hook or webhook is configured for every job (not per job or queue)."""
        return any((self.on_complete, self.on_fail, self.on_dead, self.on_cancel, self.webhook_url))

    @classmethod
    def from_stored(cls, stored: Mapping[str, str]) -> Settings:
        """Settings from the config table's text values; unknown or broken rows are ignored."""
        values: dict[str, float | int | str] = {}
        for key, text in stored.items():
            spec = CONFIG_KEYS.get(key)
            if spec is None:
                continue
            try:
                values[spec.attribute] = spec.parse(text)
            except InvalidConfig:
                continue
        return cls(**values)  # type: ignore[arg-type]

    def value_of(self, key: str) -> float | int | str:
        return getattr(self, config_key(key).attribute)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class ConfigKey:
    key: str
    parse: Callable[[str], float | int | str]
    help: str
    format: Callable[[Any], str] = lambda value: format_value(value)  # takes parse's result
    secret: bool = False  # shown as SECRET_MASK wherever it is printed

    @property
    def attribute(self) -> str:
        return self.key.replace("-", "_")


def _duration(text: str) -> float:
    seconds = parse_seconds(text)
    if seconds is None or not math.isfinite(seconds):
        raise InvalidConfig(f"{text!r} is not a duration (e.g. 90s, 30m, 12h, 7d)")
    if seconds > MAX_SETTING_SECONDS:
        raise InvalidConfig(f"{text!r} is longer than {format_seconds(MAX_SETTING_SECONDS)}")
    return seconds


def _choice(*choices: str) -> Callable[[str], str]:
    """A parser for a key whose value is one word of `choices`."""

    def parse(text: str) -> str:
        word = text.strip().lower()
        if word not in choices:
            raise InvalidConfig(f"{text!r} is not one of {', '.join(choices)}")
        return word

    return parse


def _hook_command(text: str) -> str:
    """A shell command (surrounding blanks dropped), or "" (also "none") for none."""
    if "\0" in text:
        raise InvalidConfig("a command cannot contain a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidConfig("a command must be valid UTF-8 text") from None
    command = text.strip()
    return "" if command.lower() == "none" else command


def webhook_url_text(text: str) -> str:
    """An http:// or https:// URL, or "" (also "none") for none."""
    url = text.strip()
    if url.lower() in ("", "none"):
        return ""
    if not url.lower().startswith(("http://", "https://")) or any(c.isspace() for c in url):
        raise InvalidConfig(f"{text!r} is not an http:// or https:// URL")
    return url


def _or_none(value: str) -> str:
    """A command or URL as stored and shown: `none` when unset."""
    return value or "none"


CONFIG_KEYS: dict[str, ConfigKey] = {
    spec.key: spec
    for spec in (
        ConfigKey(
            "max-retries",
            parse_max_retries,
            "default max_retries of new jobs (attempts before the DLQ)",
        ),
        ConfigKey("backoff-base", _parser(1), "retry delay = base ** attempts seconds"),
        ConfigKey(
            "backoff-max",
            _parser(0, maximum=MAX_SETTING_SECONDS),
            "cap on one retry delay, seconds",
        ),
        ConfigKey(
            "job-timeout",
            parse_job_timeout,
            "default job timeout, seconds",
        ),
        ConfigKey(
            "lease-timeout",
            _parser(1, maximum=MAX_SETTING_SECONDS),
            "seconds without heartbeat before a worker's job is rescued",
        ),
        ConfigKey(
            "poll-interval",
            _parser(0, inclusive=False, maximum=MAX_SETTING_SECONDS),
            "upper bound between checks of an idle worker, seconds",
        ),
        ConfigKey(
            "output-limit",
            _parser(0, integer=True, maximum=MAX_OUTPUT_LIMIT),
            "bytes of output kept per attempt",
        ),
        ConfigKey(
            "retention-completed",
            _duration,
            "how long completed jobs are kept (30m, 12h, 7d; 0 keeps them)",
            format_seconds,
        ),
        ConfigKey(
            "retention-dead",
            _duration,
            "how long dead and cancelled jobs are kept (0 keeps them)",
            format_seconds,
        ),
        ConfigKey(
            "dlq-threshold",
            _parser(0, integer=True),
            "dead jobs above which `queuectl doctor` reports a problem",
        ),
        ConfigKey(
            "backoff-jitter",
            _choice("none", "full"),
            "none: exact retry delays; full: each a random time between 0 and the delay",
        ),
        ConfigKey("on-complete", _hook_command, "shell command run when a job completes", _or_none),
        ConfigKey(
            "on-fail",
            _hook_command,
            "shell command run when an attempt fails (retried)",
            _or_none,
        ),
        ConfigKey("on-dead", _hook_command, "shell command run when a job dies (DLQ)", _or_none),
        ConfigKey(
            "on-cancel", _hook_command, "shell command run when a job is cancelled", _or_none
        ),
        ConfigKey(
            "hook-timeout",
            _parser(0, inclusive=False, maximum=3600),
            "seconds a hook command or one webhook request may take",
        ),
        ConfigKey(
            "webhook-url",
            webhook_url_text,
            "URL that gets a JSON POST for each of those events",
            _or_none,
        ),
        ConfigKey(
            "webhook-secret",
            _hook_command,
            "key of the webhook's X-Queuectl-Signature (HMAC-SHA256); never shown",
            _or_none,
            secret=True,
        ),
    )
}
SECRET_MASK = "********"  # noqa: S105 - what a secret shows as, not one


def config_key(key: str) -> ConfigKey:
    """A key's spec; `max_retries` is `max-retries` (the spelling of many QueueCTL designs)."""
    try:
        return CONFIG_KEYS[key.replace("_", "-")]
    except KeyError:
        known = ", ".join(CONFIG_KEYS)
        raise InvalidConfig(f"unknown config key {key!r} (known keys: {known})") from None


def listed_texts(current: Settings) -> list[tuple[str, str]]:
    """Every key with its value as `config list` prints it (a secret masked)."""
    return [(key, shown_text(key, current.value_of(key))) for key in CONFIG_KEYS]


def shown_text(key: str, value: float | int | str) -> str:
    """A value as printed: a secret that is set is SECRET_MASK."""
    spec = config_key(key)
    return SECRET_MASK if spec.secret and value else spec.format(value)


def shown_stored(key: str, text: str) -> str:
    """A value as stored (what normalize returned), as printed: a secret masked."""
    spec = config_key(key)
    return SECRET_MASK if spec.secret and spec.parse(text) else text


def listed_values(current: Settings) -> dict[str, float | int | str]:
    """Every setting as a number (durations in seconds) or a word, for JSON (a secret
    masked)."""
    values = {
        key: SECRET_MASK if spec.secret and current.value_of(key) else current.value_of(key)
        for key, spec in CONFIG_KEYS.items()
    }
    return {
        key: int(v) if not isinstance(v, str) and float(v).is_integer() else v
        for key, v in values.items()
    }


def format_value(value: float | int | str) -> str:
    """The bare form `config get` prints: 3, 2, 0.5, full."""
    return _display(value) if isinstance(value, float) else str(value)


def normalize(key: str, text: str) -> str:
    """Validate a user's value for `key` and return the text to store."""
    spec = config_key(key)
    try:
        return spec.format(spec.parse(text))
    except InvalidConfig as exc:
        raise InvalidConfig(f"invalid value for {spec.key}: {exc.message}") from None
