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


def test_load_ext_does_not_load_heavy_modules() -> None:
    """``%load_ext jupyter_codexmax`` registers the magics and nothing heavier (the agent,
    httpx, nbformat, ipywidgets come with the first ``%%agent``)."""
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'jupyter_codexmax')\n"
        "assert 'agent' in ip.magics_manager.magics['cell']\n"
        "heavy = [m for m in ('httpx', 'tiktoken', 'nbformat', 'jsonschema', 'nbclient', "
        "'ipywidgets', 'jupyter_codexmax.agent') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
