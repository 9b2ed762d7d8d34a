"""One dataclass <-> one JSON object, field by field: how export writes jobs, attempts,
schedules and queue settings and import reads them back, so that a field added to a model
travels without changes to either."""

from __future__ import annotations

import dataclasses
import json
import typing
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from queuectl.core.errors import InvalidJobSpec

_UnionType = type(int | None)


def to_plain(model: Any) -> dict[str, Any]:
    """Every field of a dataclass as JSON: times in RFC 3339 UTC with microseconds."""
    return {
        field.name: plain_value(getattr(model, field.name)) for field in dataclasses.fields(model)
    }


def plain_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [plain_value(item) for item in value]
    return value


def from_plain(kind: type[Any], data: Any, what: str) -> Any:
    """A dataclass from to_plain()'s output, checking every field's JSON type."""
    if not isinstance(data, dict):
        raise InvalidJobSpec(f"{what}: expected an object")
    hints = typing.get_type_hints(kind)
    fields = {field.name: field for field in dataclasses.fields(kind)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InvalidJobSpec(f"{what}: unknown field {unknown[0]!r}")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in data:
            if (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            ):
                raise InvalidJobSpec(f"{what}: missing field {name!r}")
            continue
        values[name] = _typed_value(hints[name], data[name], f"{what}: {name}")
    return kind(**values)


def _typed_value(hint: Any, value: Any, what: str) -> Any:  # noqa: C901 (one case per type)
    options = (
        typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, _UnionType) else (hint,)
    )
    if value is None:
        if type(None) in options:
            return None
        raise InvalidJobSpec(f"{what} must not be null")
    for option in options:
        origin = typing.get_origin(option) or option
        if option is datetime and isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                break
            if parsed.tzinfo is None:
                break
            return parsed.astimezone(UTC)
        if isinstance(origin, type) and issubclass(origin, Enum) and isinstance(value, str):
            try:
                return origin(value)
            except ValueError:
                break
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if option is str and isinstance(value, str):
            return value
        if origin is dict and isinstance(value, dict):
            return value
        if origin in (list, tuple) and isinstance(value, list):
            return value if origin is list else tuple(value)
    raise InvalidJobSpec(f"{what} has the wrong type or value: {json.dumps(value)[:60]}")
