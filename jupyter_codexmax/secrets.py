"""Secrets: a value type that never shows itself, a trait for it, and redaction.

API keys and credential headers travel as :class:`Secret`; only the HTTP layer calls
:meth:`Secret.reveal`. Anything that leaves the process as text (logs, error messages,
events, reports, notebook metadata, tool output for the model) can be passed through
:func:`redact`, which removes every secret registered with :func:`register` and anything
that looks like a bearer token or an OpenAI-style key.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

from traitlets import TraitType

__all__ = ["MASK", "RedactingFilter", "Secret", "SecretTrait", "is_sensitive_header", "redact"]

MASK = "********"

#: Secrets shorter than this are not redacted by value: they cannot be real keys, and
#: replacing every "x" in a text would make it unreadable.
MIN_REDACTED_LENGTH = 6

_SENSITIVE_HEADER = re.compile(r"(auth|key|token|secret|cookie|password|signature)", re.I)
_PATTERNS = [
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),
]

_lock = threading.Lock()
_registered: set[str] = set()


class Secret:
    """A string that is never shown: ``repr`` and ``str`` give a mask, pickling fails."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a Secret holds a string")
        self._value = value

    def reveal(self) -> str:
        """The secret itself. Call only where it is sent to the server."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"Secret({MASK!r})" if self._value else "Secret('')"

    def __str__(self) -> str:
        return MASK if self._value else ""

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self) -> Any:
        raise TypeError("secrets are not pickled or serialized")


class SecretTrait(TraitType[Secret, "str | Secret"]):
    """A trait holding a :class:`Secret`; plain strings are wrapped on assignment."""

    default_value = Secret("")
    info_text = "a secret string (never shown)"

    def validate(self, obj: Any, value: Any) -> Secret:
        if isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return Secret(value)
        self.error(obj, value)
        raise AssertionError  # pragma: no cover - error() always raises

    def from_string(self, s: str) -> Secret:
        return Secret(s)


def register(*values: str | Secret | None) -> None:
    """Remember secret values so :func:`redact` removes them wherever they appear."""
    with _lock:
        for value in values:
            text = value.reveal() if isinstance(value, Secret) else value
            if text and len(text) >= MIN_REDACTED_LENGTH:
                _registered.add(text)


def redact(text: str, extra: Iterable[str | Secret] = ()) -> str:
    """``text`` with every known secret, bearer token and ``sk-...`` key masked."""
    with _lock:
        values = set(_registered)
    for value in extra:
        raw = value.reveal() if isinstance(value, Secret) else value
        if raw and len(raw) >= MIN_REDACTED_LENGTH:
            values.add(raw)
    # Longest first, so a secret that contains another is masked whole.
    for value in sorted(values, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(
            lambda m: f"{m.group(1)} {MASK}" if m.lastindex else MASK,
            text,
        )
    return text


def is_sensitive_header(name: str) -> bool:
    """Whether a header's value should be treated as a secret (``api-key``, ``Authorization``)."""
    return bool(_SENSITIVE_HEADER.search(name))


class RedactingFilter(logging.Filter):
    """A logging filter that redacts secrets from each record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
