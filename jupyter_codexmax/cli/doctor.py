"""``jupyter codexmax doctor``: what is configured, and whether each part works."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TYPE_CHECKING

from .._version import __version__
from ..errors import ConfigError

if TYPE_CHECKING:
    from .app import DoctorApp

LABEXTENSION_NAME = "jupyter-codexmax"


def _line(mark: str, name: str, detail: str) -> None:
    print(f"  [{mark:>4}] {name}: {detail}")


def _kernels() -> tuple[bool, str]:
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        specs = KernelSpecManager().find_kernel_specs()
    except Exception as exc:  # a broken kernelspec folder should not stop the doctor
        return False, f"could not list kernels: {exc}"
    if not specs:
        return False, "none found (pip install ipykernel; python -m ipykernel install --user)"
    return True, ", ".join(f"{name} ({path})" for name, path in sorted(specs.items()))


def _labextension() -> tuple[bool, str]:
    from jupyter_core.paths import jupyter_path

    for folder in jupyter_path("labextensions"):
        candidate = os.path.join(folder, LABEXTENSION_NAME, "package.json")
        if os.path.exists(candidate):
            return True, f"installed at {os.path.dirname(candidate)}"
    return False, f"{LABEXTENSION_NAME} is not installed in any labextensions folder"


def doctor(app: DoctorApp) -> int:
    print(f"jupyter-codexmax {__version__} (Python {sys.version.split()[0]}, {sys.executable})")
    try:
        settings = app.settings()
    except ConfigError as exc:
        print("\nSettings")
        _line("fail", "configuration", str(exc))
        return exc.exit_code
    print("\nSettings")
    for name, value in settings.describe().items():
        print(f"  {name}: {value}")
    files = [f for f in app.loaded_config_files]
    print(f"  config files: {', '.join(files) if files else 'none'}")

    print("\nChecks")
    status = 0
    try:
        settings.require_api_key()
    except ConfigError as exc:
        _line("fail", "API key", str(exc))
        status = exc.exit_code
    if status == 0:
        from ..providers import open_provider

        async def check() -> tuple[bool, str, float]:
            async with open_provider(settings) as provider:
                result = await provider.check_endpoint()
            return result.ok, result.detail, result.seconds

        ok, detail, seconds = asyncio.run(check())
        _line("ok" if ok else "fail", "endpoint", f"{detail} ({seconds:.2f} s)")
        if not ok:
            status = 1

    from ..agent.tokens import TokenCounter

    counter = TokenCounter.from_settings(settings)
    _line("ok" if counter.exact else "warn", "token counting", counter.source)
    ok, detail = _kernels()
    _line("ok" if ok else "warn", "kernels", detail)
    from ..sandbox import sandbox_status

    sandbox = sandbox_status(settings)
    detail = sandbox.describe()
    if not sandbox.active:
        detail += "; shell commands are not confined, so the auto level asks before each one"
    _line("ok" if sandbox.active else "warn", "sandbox", detail)
    ok, detail = _labextension()
    _line("ok" if ok else "warn", "JupyterLab extension", detail)
    print()
    print("Ready." if status == 0 else "Not ready: see the failed checks above.")
    return status
