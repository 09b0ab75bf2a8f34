"""Testing aids: the scripted model server, and pytest fixtures that use it.

Enable the fixtures in a test suite with
``pytest_plugins = ["jupyter_codexmax.testing.pytest_plugin"]``.
"""

from __future__ import annotations

from .script import Script, ScriptError, decode_scripted, load_script
from .server import RecordedRequest, ScriptedModelServer

__all__ = [
    "RecordedRequest",
    "Script",
    "ScriptError",
    "ScriptedModelServer",
    "decode_scripted",
    "load_script",
]
