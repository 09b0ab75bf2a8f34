"""Tool arguments checked at the boundary, before any tool runs.

Each tool declares one JSON schema (:attr:`Tool.parameters`); :func:`check_arguments` holds
a call's arguments to it: types, required and unknown keys, enums, ranges (``minimum``,
``maximum``, ``exclusiveMinimum``), lengths (``minLength``, ``maxLength``, ``minItems``,
``maxItems``). Limits hold where a schema says nothing, so no argument is unbounded:

- every number is finite (JSON has no NaN or Infinity; some models send them anyway);
- a string is at most :data:`MAX_STRING` characters, a list at most :data:`MAX_ITEMS` long;
- arguments nest at most :data:`MAX_DEPTH` deep, and their JSON is at most
  :data:`MAX_ARGUMENTS` characters.

Every failure is a :class:`~.registry.ToolError` whose message names the argument and the
rule, for the model to fix; values are never echoed whole.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import CodexmaxError
from ..limits import depth_of

__all__ = [
    "MAX_ARGUMENTS",
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_NAME",
    "MAX_STRING",
    "PATH",
    "ArgumentError",
    "check_arguments",
    "clip",
    "depth_of",
]

#: Characters of a call's arguments as JSON.
MAX_ARGUMENTS = 4_000_000
#: How deep arguments may nest (objects and lists).
MAX_DEPTH = 32
#: Characters of a string argument whose schema gives no ``maxLength``.
MAX_STRING = 2_000_000
#: Items of a list argument whose schema gives no ``maxItems``.
MAX_ITEMS = 10_000
#: Characters of a tool's name shown back in an error.
MAX_NAME = 64
#: The schema of a path argument (Linux's PATH_MAX).
PATH: dict[str, Any] = {"type": "string", "maxLength": 4096}


class ArgumentError(CodexmaxError):
    """Arguments that do not fit their tool's schema. The message is meant for the model."""


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def clip(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to about ``limit`` characters (saying how long it was)."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    text = repr(value) if not isinstance(value, (dict, list)) else _kind(value)
    return text if len(text) <= limit else text[:limit] + "..."


def check_arguments(schema: dict[str, Any], value: Any, where: str = "arguments") -> None:
    """Check ``value`` against ``schema`` (the subset of JSON Schema our tools use) and the
    limits that hold everywhere. Raises :class:`ArgumentError`."""
    if where == "arguments":
        depth = depth_of(value)
        if depth > MAX_DEPTH:
            raise ArgumentError(
                f"the arguments nest {depth:,} levels deep; at most {MAX_DEPTH} are accepted"
            )
    _check(schema, value, where)


def _check(schema: dict[str, Any], value: Any, where: str) -> None:
    expected = schema.get("type")
    if expected:
        kinds = expected if isinstance(expected, list) else [expected]
        if value is None and "null" in kinds:
            return
        allowed = tuple(t for kind in kinds for t in _TYPES.get(kind, ()))
        is_bool = isinstance(value, bool)
        if allowed and (not isinstance(value, allowed) or (is_bool and bool not in allowed)):
            raise ArgumentError(f"{where} must be {' or '.join(kinds)}, not {_kind(value)}")
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(repr(c) for c in schema["enum"])
        raise ArgumentError(f"{where} must be one of {choices}, not {clip(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ArgumentError(f"{where} must be a finite number, not {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_range(schema, value, where)
    elif isinstance(value, str):
        _check_length(schema, len(value), where, "characters")
    elif isinstance(value, list):
        _check_length(schema, len(value), where, "items")
        if "items" in schema:
            for number, item in enumerate(value):
                _check(schema["items"], item, f"{where}[{number}]")
    elif isinstance(value, dict):
        _check_object(schema, value, where)


def _check_range(schema: dict[str, Any], value: float, where: str) -> None:
    low, high = schema.get("minimum"), schema.get("maximum")
    above = schema.get("exclusiveMinimum")
    if low is not None and value < low:
        raise ArgumentError(f"{where} must be at least {low:g}, not {value:g}")
    if above is not None and value <= above:
        raise ArgumentError(f"{where} must be more than {above:g}, not {value:g}")
    if high is not None and value > high:
        raise ArgumentError(f"{where} must be at most {high:g}, not {value:g}")


_LENGTHS = {
    "characters": ("minLength", "maxLength", MAX_STRING),
    "items": ("minItems", "maxItems", MAX_ITEMS),
}


def _check_length(schema: dict[str, Any], size: int, where: str, unit: str) -> None:
    low, high, cap = _LENGTHS[unit]
    least = schema.get(low, 0)
    most = min(schema.get(high, cap), cap)
    if size < least:
        what = "empty" if size == 0 else f"{size:,} {unit} long"
        needed = f"{least:,} {unit if least != 1 else unit[:-1]}"
        raise ArgumentError(f"{where} must have at least {needed}, not be {what}")
    if size > most:
        raise ArgumentError(f"{where} has {size:,} {unit}; at most {most:,} are accepted")


def _check_object(schema: dict[str, Any], value: dict[str, Any], where: str) -> None:
    properties = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            raise ArgumentError(f"{where} is missing {name!r}")
    if schema.get("additionalProperties") is False:
        unknown = sorted(set(value) - set(properties))
        if unknown:
            shown = ", ".join(clip(k, 40) for k in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise ArgumentError(
                f"{where} has unknown key(s) [{shown}]{more}; known: {', '.join(properties)}"
            )
    for name, sub in properties.items():
        if name in value:
            _check(sub, value[name], f"{name!r}" if where == "arguments" else f"{where}.{name}")


def _kind(value: Any) -> str:
    for name, types in _TYPES.items():
        if isinstance(value, types) and not (isinstance(value, bool) and name != "boolean"):
            return name
    return "null" if value is None else type(value).__name__
