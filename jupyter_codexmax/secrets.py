"""Secrets: a value type that never shows itself, a trait for it, and redaction.

API keys and credential headers travel as :class:`Secret`; only the HTTP layer calls
:meth:`Secret.reveal`. Anything that leaves the process as text (logs, error messages,
events, reports, notebook metadata, tool output for the model) can be passed through
:func:`redact`, which removes every secret registered with :func:`register` in every form
:mod:`.redaction` knows (plain, reversed, base64, hex, spaced, in pieces), the password of
any ``scheme://user:password@host`` URL, and anything that looks like a bearer token or an
OpenAI-style key.
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
    "is_credential",
    "is_credential_name",
    "is_sensitive_header",
    "mask_config",
    "redact",
    "redact_value",
    "url_passwords",
    "without_credentials",
]

MASK = "********"

#: Secrets shorter than this are not redacted by value: they cannot be real keys, and
#: replacing every "x" in a text would make it unreadable.
MIN_REDACTED_LENGTH = 6

_SENSITIVE_HEADER = re.compile(r"(auth|key|token|secret|cookie|password|signature)", re.I)
#: Words that make an environment variable's name a credential's, as the whole name, as one
#: ``_``-separated part of it, or (for passwords) as the end of a part: ``PGPASSWORD``.
_CREDENTIAL_WORDS = frozenset(
    {
        "APIKEY", "KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PWD", "PASS", "CREDENTIAL",
        "CREDENTIALS", "CREDS", "AUTH", "PASSPHRASE", "DSN", "COOKIE", "PRIVATE", "SIGNATURE",
    }
)  # fmt: skip
_PASSWORD_ENDINGS = ("PASSWORD", "PASSWD", "PASSPHRASE")
#: A part after the credential word that says the value is *about* the credential, not
#: the credential: ``SSH_AUTH_SOCK``, ``HF_TOKEN_PATH``, ``ACTIONS_ID_TOKEN_REQUEST_URL``,
#: ``AWS_ACCESS_KEY_ID``.
_ABOUT_WORDS = frozenset(
    {
        "SOCK", "SOCKET", "PATH", "FILE", "DIR", "URL", "URI", "HOST", "PORT", "ID", "NAME",
        "USER", "USERNAME", "TYPE", "MODE", "METHOD", "ENABLED", "DISABLED", "DISABLE",
        "REQUIRED", "PROVIDER", "ENDPOINT", "HEADER", "PREFIX", "LENGTH", "TIMEOUT",
        "FORMAT", "VERSION", "COMMAND", "CMD", "PROGRAM", "HELPER", "EXPIRY", "EXPIRES",
        "EXPIRATION", "REGION", "SCOPE", "SCOPES", "ALGORITHM", "LIFETIME", "TTL",
    }
)  # fmt: skip
#: Variables whose names look like credentials and never are: the shell's working folders.
_NOT_CREDENTIALS = frozenset({"PWD", "OLDPWD"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Known credential formats, masked wherever they appear (a pasted task, a file read, an
#: output): bearer tokens; OpenAI, GitHub, Hugging Face, Slack, GitLab and Stripe tokens;
#: JWTs; Slack webhook URLs; private keys in PEM.
_TOKEN = (
    r"sk-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}"
    r"|hf_[A-Za-z0-9]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|glpat-[A-Za-z0-9_-]{20,}"
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
    r"|https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}"
)
_PATTERNS = [
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(rf"(?<![A-Za-z0-9_])(?:{_TOKEN})"),
    re.compile(
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S
    ),
]
#: ``name = value`` where the name says credential and the value looks like one (a long run
#: of token characters with a digit in it, quoted or not): configuration files
#: (``aws_secret_access_key = ...``, ``oauth_token: ...``, ``.env``), whatever else they
#: hold. Code does not look like that (``key = os.environ[...]``, ``auth = make_auth()``)
#: and is left alone, and so are paths (``SSH_AUTH_SOCK=/tmp/...``).
_ASSIGNED = re.compile(
    r"(?i)((?:^|[\s{,;\"'])[\"']?)"
    r"([\w.-]*(?:secret|token|passw(?:or)?d|pass|api[_-]?key|access[_-]?key"
    r"|auth|credential|private[_-]?key)[\w.-]*)([\"']?\s*[:=]\s*[\"']?)"
    r"((?![/~.])(?=[A-Za-z0-9+/=_\-.~]*\d)[A-Za-z0-9+/=_\-.~]{12,})(?![\w(])"
)
#: ``.netrc``: ``machine host login user password SECRET``.
_NETRC = re.compile(r"(?i)(\blogin\s+\S+\s+password\s+)(\S+)")
#: A URL's password: ``postgres://user:PASSWORD@host`` (the scheme and user stay; the user
#: may be empty: ``redis://:PASSWORD@host``).
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{1,20}://[^\s:/@'\"]*:)([^\s@/'\"]+)(?=@)")

_lock = threading.Lock()
_registered: set[str] = set()
#: The registered secrets that are API keys (random: even short pieces of them count).
_keys: set[str] = set()


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


def register(*values: str | Secret | None, key: bool = False) -> None:
    """Remember secret values so :func:`redact` removes them wherever they appear. ``key``:
    API keys (random, so even short pieces of them are masked)."""
    with _lock:
        for value in values:
            text = value.reveal() if isinstance(value, Secret) else value
            if text and len(text) >= MIN_REDACTED_LENGTH:
                _registered.add(text)
                if key:
                    _keys.add(text)


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
    from .redaction import find_spans, forms_of, mask_spans

    spans: list[tuple[int, int]] = []
    for value in known:
        spans.extend(find_spans(text, forms_of(value, value in _keys)))
    text = mask_spans(text, spans, MASK)
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: m.group(1) + MASK, text)
    lowered = text.lower()
    if any(word in lowered for word in ("secret", "token", "pass", "key", "auth", "credential")):
        text = _ASSIGNED.sub(_mask_assigned, text)
    if "password" in lowered:
        text = _NETRC.sub(lambda m: m.group(1) + MASK, text)
    for pattern in _PATTERNS:
        text = pattern.sub(
            lambda m: f"{m.group(1)} {MASK}" if m.lastindex else MASK,
            text,
        )
    return text


def _mask_assigned(match: re.Match[str]) -> str:
    """``name = value``: the value masked when the name is a credential's (not an id, a
    path or a URL about one: the same rule as environment variables)."""
    lead, name, sep, _value = match.groups()
    if not is_credential_name(re.sub(r"[.-]", "_", name)):
        return match.group(0)
    return f"{lead}{name}{sep}{MASK}"


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
    """Whether an environment variable's name says it holds a credential: a credential
    word as one ``_``-separated part (``GITHUB_TOKEN``, ``AWS_SECRET_ACCESS_KEY``,
    ``MYSQL_PWD``) or a part ending in a password word (``PGPASSWORD``), unless a later
    part says the value is about it (``SSH_AUTH_SOCK``, ``HF_TOKEN_PATH``,
    ``AWS_ACCESS_KEY_ID``). ``PWD`` and ``OLDPWD`` are the shell's folders."""
    upper = name.upper()
    if upper in _NOT_CREDENTIALS:
        return False
    parts = [p for p in upper.split("_") if p]
    last = -1
    for index, part in enumerate(parts):
        if part in _CREDENTIAL_WORDS or part.endswith(_PASSWORD_ENDINGS):
            last = index
    if last < 0:
        return False
    return not any(part in _ABOUT_WORDS for part in parts[last + 1 :])


def _harmless(value: str) -> bool:
    """A value that cannot be a credential whatever its variable's name: a path to
    something on this machine (``GOOGLE_APPLICATION_CREDENTIALS``: the file holds the
    secret, not its name), a yes/no, a number."""
    import os

    text = value.strip()
    if text.lower() in ("true", "false", "yes", "no", "on", "off", "none", "null"):
        return True
    if text.isdigit() and len(text) < 8:
        return True
    return os.path.isabs(text) and "\n" not in text and os.path.exists(text)


#: Values that are credentials whatever their variable is called: well-known token shapes
#: (OpenAI, GitHub, Hugging Face, Slack, GitLab, JWTs) and URLs with a password.
_CREDENTIAL_VALUE = re.compile(rf"^\s*(?:{_TOKEN})")


def url_passwords(value: str) -> list[str]:
    """The passwords of the ``scheme://user:password@host`` URLs in ``value``."""
    return [m.group(2) for m in _URL_PASSWORD.finditer(value)] if "://" in value else []


def is_credential(name: str, value: str) -> bool:
    """Whether the environment variable ``name=value`` holds a credential: its name says
    so (:func:`is_credential_name`) and its value is not plainly something else; or its
    value is a credential by its shape (a known token format, a URL with a password:
    ``DATABASE_URL=postgres://user:secret@db``)."""
    if is_credential_name(name) and not _harmless(value):
        return True
    return bool(_CREDENTIAL_VALUE.match(value)) or bool(url_passwords(value))


def credential_values(environ: Mapping[str, str]) -> list[str]:
    """What to redact wherever it might show up: the values of credential variables, and
    the passwords inside URLs (alone, as a program may print them)."""
    found: list[str] = []
    for name, value in environ.items():
        found.extend(p for p in url_passwords(value) if len(p) >= MIN_REDACTED_LENGTH)
        if len(value) >= MIN_REDACTED_LENGTH and (
            (is_credential_name(name) and not _harmless(value)) or _CREDENTIAL_VALUE.match(value)
        ):
            found.append(value)
    return list(dict.fromkeys(found))


def without_credentials(environ: Mapping[str, str], *, also: Iterable[str] = ()) -> dict[str, str]:
    """``environ`` without credential variables (and the names in ``also``)."""
    drop = set(also)
    return {k: v for k, v in environ.items() if k not in drop and not is_credential(k, v)}


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
        if record.exc_info and not record.exc_text:
            # The formatter shows exc_text when it is set: the traceback, masked.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
