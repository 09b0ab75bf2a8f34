"""Building and reading items (the Responses API's input-item shape, as plain dicts)."""

from __future__ import annotations

import json
from typing import Any

from ..errors import ToolArgumentsError
from .base import Item

__all__ = [
    "function_call_output",
    "image_part",
    "message_text",
    "parse_tool_arguments",
    "user_message",
]


def image_part(url: str, detail: str = "auto") -> dict[str, Any]:
    """An image content part: an https URL or a ``data:image/png;base64,...`` URL."""
    return {"type": "input_image", "image_url": url, "detail": detail}


def user_message(text: str, images: list[str] | tuple[str, ...] = (), role: str = "user") -> Item:
    """A user (or developer) message with text and optional image URLs."""
    content: list[dict[str, Any]] = [{"type": "input_text", "text": text}]
    content.extend(image_part(url) for url in images)
    return {"type": "message", "role": role, "content": content}


def function_call_output(call_id: str, output: str | list[dict[str, Any]]) -> Item:
    """The result of a function call, as text or as text and image parts."""
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def message_text(item: Item) -> str:
    """All text in a message item, whatever its role."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(
        str(part.get("text", ""))
        for part in content or []
        if isinstance(part, dict) and part.get("type") in ("input_text", "output_text", "text")
    )


class _NotANumber(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity`` in JSON text (Python reads them; JSON has none)."""


def _no_constant(name: str) -> Any:
    raise _NotANumber(name)


def load_json(text: str | bytes, **kwargs: Any) -> Any:
    """``json.loads``, with every lone surrogate (``"\\ud800"``: legal JSON, but no
    character, and it cannot be encoded again) replaced by U+FFFD. Everything the model
    sends is read through it, so no such string gets into the history, a notebook or a
    file."""
    value = json.loads(text, **kwargs)
    raw = text if isinstance(text, str) else text.decode("utf-8", "replace")
    if "\\ud" in raw or "\\uD" in raw:
        value = _whole_characters(value)
    return value


def _whole_characters(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_whole_characters(v) for v in value]
    if isinstance(value, dict):
        return {_whole_characters(k): _whole_characters(v) for k, v in value.items()}
    return value


def parse_tool_arguments(call: Item) -> dict[str, Any]:
    """A function call's arguments as a dict, or :class:`ToolArgumentsError` whose message
    tells the model what was wrong (broken or truncated JSON, not an object)."""
    name = str(call.get("name", "?"))
    raw = call.get("arguments")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if isinstance(raw, dict):
        return raw
    text = str(raw)
    try:
        value = load_json(text, parse_constant=_no_constant)
    except _NotANumber as exc:
        raise ToolArgumentsError(
            f"the arguments for {name} hold {exc}, which JSON does not allow; "
            "send a finite number.",
            tool=name,
            arguments=text,
        ) from exc
    except RecursionError as exc:
        raise ToolArgumentsError(
            f"the arguments for {name} nest too deeply to be read; send a flat JSON object.",
            tool=name,
            arguments=text,
        ) from exc
    except ValueError as exc:
        where = f"at character {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        truncated = " (it looks cut off)" if text.count("{") > text.count("}") else ""
        raise ToolArgumentsError(
            f"the arguments for {name} are not valid JSON {where}{truncated}: {exc}. "
            "Send the call again with a complete JSON object.",
            tool=name,
            arguments=text,
        ) from exc
    if not isinstance(value, dict):
        raise ToolArgumentsError(
            f"the arguments for {name} must be a JSON object, not {type(value).__name__}. "
            "Send the call again with an object of named arguments.",
            tool=name,
            arguments=text,
        )
    return value
