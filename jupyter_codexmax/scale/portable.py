"""Settings that travel with a task to another machine, and never the secrets among them.

A task carries the run's settings as plain values (:func:`portable_settings`), and the
worker builds its own :class:`~jupyter_codexmax.config.CodexMax` from them
(:func:`settings_from`). Left out, so they never reach the scheduler, a task or a log:
the API key (the worker reads it from its own environment, the variable named by
``api_key_env``), extra headers that carry credentials, and a proxy URL with a password
(the worker uses its own proxy settings).
"""

from __future__ import annotations

from typing import Any

from .. import secrets
from ..config import CodexMax

__all__ = ["portable_settings", "settings_from"]


def portable_settings(settings: CodexMax) -> dict[str, Any]:
    """The settings' values, as plain data, without anything secret."""
    values: dict[str, Any] = {}
    for name, trait in CodexMax.class_traits(config=True).items():
        if isinstance(trait, secrets.SecretTrait):
            continue
        value = getattr(settings, name)
        if name == "extra_headers":
            value = {k: v for k, v in value.items() if not secrets.is_sensitive_header(k)}
        elif name == "proxy" and secrets.url_passwords(value):
            continue
        values[name] = value
    return values


def settings_from(values: dict[str, Any]) -> CodexMax:
    """Settings on a worker: the travelling values; the key from this environment."""
    from traitlets.config import Config

    return CodexMax(config=Config({"CodexMax": dict(values)}))
