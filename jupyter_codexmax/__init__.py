"""jupyter-codexmax: a coding agent that lives in Jupyter notebooks.

The public surface is what this module exports (pinned by ``tests/test_public_api.py``).
Importing the package is cheap: everything heavier is imported on first use.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from ._version import __version__

# The library never prints: without a handler of the host's, log records go nowhere
# (not to logging's last-resort stderr handler, which would write into notebook cells).
logging.getLogger(__name__).addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from .agent.tokens import TokenCounter
    from .config import CodexMax, load_settings
    from .errors import (
        APIError,
        CodexmaxError,
        ConfigError,
        ContextLengthExceeded,
        ModelError,
        QuotaExceededError,
    )
    from .providers import ModelRequest, ModelResponse, Provider, ToolSpec, Usage, open_provider

__all__ = [
    "APIError",
    "CodexMax",
    "CodexmaxError",
    "ConfigError",
    "ContextLengthExceeded",
    "ModelError",
    "ModelRequest",
    "ModelResponse",
    "Provider",
    "QuotaExceededError",
    "TokenCounter",
    "ToolSpec",
    "Usage",
    "__version__",
    "load_ipython_extension",
    "load_settings",
    "open_provider",
    "unload_ipython_extension",
]

_LAZY = {
    "CodexMax": "config",
    "load_settings": "config",
    "TokenCounter": "agent.tokens",
    "ModelRequest": "providers",
    "ModelResponse": "providers",
    "Provider": "providers",
    "ToolSpec": "providers",
    "Usage": "providers",
    "open_provider": "providers",
    "APIError": "errors",
    "CodexmaxError": "errors",
    "ConfigError": "errors",
    "ContextLengthExceeded": "errors",
    "ModelError": "errors",
    "QuotaExceededError": "errors",
}


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext jupyter_codexmax``: the ``%%agent`` magics (see :mod:`.kernel`)."""
    from .kernel import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell: Any) -> None:
    from .kernel import unload_ipython_extension as unload

    unload(shell)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jupyter_codexmax' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
