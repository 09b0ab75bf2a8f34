"""The package's public surface is exactly what is listed here; importing it is cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

import jupyter_codexmax

PUBLIC = {
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
}


def test_exported_names_are_pinned() -> None:
    assert set(jupyter_codexmax.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(jupyter_codexmax, name) is not None


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        jupyter_codexmax.no_such_thing  # noqa: B018


def test_import_does_not_load_heavy_modules() -> None:
    code = (
        "import sys, jupyter_codexmax; "
        "heavy = [m for m in ('httpx', 'traitlets', 'tiktoken', 'IPython', 'nbformat', "
        "'jupyter_client', 'ipywidgets') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
