"""jupyter-codexmax in a kernel: the ``%%agent`` magics, the widget panel, the host.

``%load_ext jupyter_codexmax`` calls :func:`load_ipython_extension`, which only registers
the magics and the settings: it imports nothing heavy (the agent, httpx, ipywidgets and
nbformat come with the first ``%%agent``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension"]

_loaded: dict[int, Any] = {}


def load_ipython_extension(shell: Any) -> None:
    from ..config import load_settings
    from ..errors import ConfigError
    from .magics import AgentMagics

    if id(shell) in _loaded:
        return
    settings = None
    problem = None
    try:
        settings = load_settings(config=shell.config, parent=shell)
    except ConfigError as exc:
        problem = str(exc)
    if settings is not None:
        shell.configurables.append(settings)
    magics = AgentMagics(shell, settings, problem)
    shell.configurables.append(magics)
    shell.register_magics(magics)
    magics.start_bridge()
    _loaded[id(shell)] = magics
    if problem is not None:
        print(f"jupyter-codexmax: {problem}")


def unload_ipython_extension(shell: Any) -> None:
    magics = _loaded.pop(id(shell), None)
    if magics is None:
        return
    host = magics._host
    if host is not None:
        host.close_session()
    if magics.bridge is not None:
        magics.bridge.stop()
    shell.magics_manager.magics["line"].pop("agent", None)
    shell.magics_manager.magics["cell"].pop("agent", None)
    shell.configurables[:] = [
        c for c in shell.configurables if c is not magics and c is not magics.settings
    ]
