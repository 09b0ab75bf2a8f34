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
from collections.abc import Iterable, Mapping
from typing import Any

from traitlets import TraitType

__all__ = [
    "MASK",
    "RedactingFilter",
    "Secret",
    "SecretTrait",
    "credential_values",
    "is_credential_name",
    "is_sensitive_header",
    "mask_config",
    "redact",
    "redact_value",
    "without_credentials",
]

MASK = "********"

#: Secrets shorter than this are not redacted by value: they cannot be real keys, and
#: replacing every "x" in a text would make it unreadable.
MIN_REDACTED_LENGTH = 6

_SENSITIVE_HEADER = re.compile(r"(auth|key|token|secret|cookie|password|signature)", re.I)
_CREDENTIAL_NAME = re.compile(
    r"(^|_)(API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|PWD|CREDENTIALS?|AUTH|PRIVATE_KEY|"
    r"ACCESS_KEY|SESSION_TOKEN|CONNECTION_STRING|DSN)(_|$)",
    re.I,
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
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
            value = value.reveal()
        if isinstance(value, str):
            # A key pasted or read from a file often ends in a newline: drop surrounding
            # space; anything else unprintable could never be sent in a header.
            value = value.strip()
            if _CONTROL.search(value):
                from traitlets import TraitError

                raise TraitError(
                    f"the {self.name} setting contains a control character (a line break "
                    "inside the key?)"
                )
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


def _known(extra: Iterable[str | Secret]) -> list[str]:
    """Registered secrets and ``extra``, longest first (a secret that contains another is
    masked whole)."""
    with _lock:
        values = set(_registered)
    for value in extra:
        raw = value.reveal() if isinstance(value, Secret) else value
        if raw and len(raw) >= MIN_REDACTED_LENGTH:
            values.add(raw)
    return sorted(values, key=len, reverse=True)


def _mask(text: str, known: list[str]) -> str:
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(
            lambda m: f"{m.group(1)} {MASK}" if m.lastindex else MASK,
            text,
        )
    return text


def redact(text: str, extra: Iterable[str | Secret] = ()) -> str:
    """``text`` with every known secret, bearer token and ``sk-...`` key masked."""
    return _mask(text, _known(extra))


def redact_value(value: Any, extra: Iterable[str | Secret] = ()) -> Any:
    """``value`` (strings, dicts, lists, as JSON holds them) with :func:`redact` applied to
    every string in it, keys included. Redact values, never their JSON text: escapes such
    as ``\\n`` hide word boundaries from the patterns."""
    known = _known(extra)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return _mask(item, known)
        if isinstance(item, dict):
            return {_mask(str(k), known): walk(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(v) for v in item]
        return item

    return walk(value)


def is_credential_name(name: str) -> bool:
    """Whether an environment variable's name says it holds a credential."""
    return bool(_CREDENTIAL_NAME.search(name))


def credential_values(environ: Mapping[str, str]) -> list[str]:
    """Values of credential-like variables, to redact wherever they might show up."""
    return [
        v for k, v in environ.items() if is_credential_name(k) and len(v) >= MIN_REDACTED_LENGTH
    ]


def without_credentials(environ: Mapping[str, str], *, also: Iterable[str] = ()) -> dict[str, str]:
    """``environ`` without credential-like variables (and the names in ``also``)."""
    drop = set(also)
    return {k: v for k, v in environ.items() if k not in drop and not is_credential_name(k)}


def mask_config(config: Any) -> Any:
    """A copy of a traitlets ``Config`` with secret settings and credential headers masked."""
    import copy

    from traitlets.config import Config

    masked = Config(copy.deepcopy(config))
    for section in masked.values():
        if not isinstance(section, dict):
            continue
        for name in list(section):
            value = section[name]
            if name in ("api_key",) or isinstance(value, Secret):
                section[name] = MASK if value else ""
            elif isinstance(value, dict):
                section[name] = {
                    k: (MASK if is_sensitive_header(str(k)) else v) for k, v in value.items()
                }
    return masked


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
