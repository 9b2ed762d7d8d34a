"""Config keys: one registry, parsers that refuse bad values, bare printed values (SPEC 2.5)."""

from __future__ import annotations

import pytest

from queuectl.core.errors import InvalidConfig
from queuectl.core.settings import CONFIG_KEYS, Settings, config_key, format_value, normalize

DEFAULTS = {
    "max-retries": 3,
    "backoff-base": 2,
    "backoff-max": 3600,
    "job-timeout": 300,
    "lease-timeout": 30,
    "poll-interval": 1,
    "output-limit": 65536,
    "retention-completed": 7 * 86400,
    "retention-dead": 30 * 86400,
}


def test_the_registry_starts_with_the_spec_keys_in_order() -> None:
    assert list(CONFIG_KEYS)[: len(DEFAULTS)] == list(DEFAULTS)


def test_defaults_are_the_specs() -> None:
    settings = Settings()
    assert {key: settings.value_of(key) for key in DEFAULTS} == DEFAULTS


def test_from_stored_parses_known_keys() -> None:
    settings = Settings.from_stored({"max-retries": "5", "poll-interval": "0.5"})
    assert (settings.max_retries, settings.poll_interval) == (5, 0.5)
    assert settings.backoff_base == 2


def test_from_stored_ignores_unknown_keys_and_broken_values() -> None:
    settings = Settings.from_stored({"nope": "1", "max-retries": "lots", "lease-timeout": "0"})
    assert settings == Settings()


@pytest.mark.parametrize(
    ("key", "given", "stored"),
    [
        ("max-retries", "0", "0"),
        ("max-retries", "1000", "1000"),
        ("max-retries", " 7 ", "7"),
        ("backoff-base", "1", "1"),
        ("backoff-base", "2.0", "2"),
        ("backoff-base", "1.5", "1.5"),
        ("backoff-max", "0", "0"),
        ("job-timeout", "0.25", "0.25"),
        ("lease-timeout", "1", "1"),
        ("poll-interval", ".5", "0.5"),
        ("output-limit", "0", "0"),
    ],
)
def test_normalize_accepts_and_canonicalizes(key: str, given: str, stored: str) -> None:
    assert normalize(key, given) == stored


@pytest.mark.parametrize(
    ("key", "given"),
    [
        ("max-retries", "-1"),
        ("max-retries", "1001"),
        ("max-retries", "1.5"),
        ("max-retries", ""),
        ("backoff-base", "0.99"),
        ("backoff-base", "nan"),
        ("backoff-max", "-0.1"),
        ("backoff-max", "inf"),
        ("job-timeout", "0"),
        ("lease-timeout", "0.5"),
        ("poll-interval", "0"),
        ("poll-interval", "-1"),
        ("output-limit", "-1"),
        ("output-limit", "64k"),
    ],
)
def test_normalize_refuses_bad_values_naming_the_key(key: str, given: str) -> None:
    with pytest.raises(InvalidConfig, match=key):
        normalize(key, given)


def test_unknown_key_lists_the_known_ones() -> None:
    with pytest.raises(InvalidConfig, match="max-retries") as info:
        config_key("retries")
    assert "'retries'" in info.value.message
    with pytest.raises(InvalidConfig):
        normalize("retries", "3")


@pytest.mark.parametrize(("value", "text"), [(3, "3"), (2.0, "2"), (0.5, "0.5"), (65536, "65536")])
def test_format_value_prints_bare_numbers(value: float, text: str) -> None:
    assert format_value(value) == text


def test_invalid_config_is_a_usage_error() -> None:
    assert InvalidConfig.exit_code == 2


@pytest.mark.parametrize(
    ("text", "stored"),
    [("7d", "7d"), ("36h", "36h"), ("90", "90s"), ("5400", "90m"), ("0", "0"), ("2w", "14d")],
)
def test_retention_keys_take_durations_and_print_them_short(text: str, stored: str) -> None:
    assert normalize("retention-completed", text) == stored
    assert (
        Settings.from_stored({"retention-dead": stored}).retention_dead
        == Settings.from_stored({"retention-dead": text}).retention_dead
    )


@pytest.mark.parametrize("text", ["soon", "-1d", "7x", ""])
def test_retention_keys_refuse_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(InvalidConfig):
        normalize("retention-dead", text)
