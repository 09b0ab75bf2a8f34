"""Running a notebook top to bottom as papermill does (nbclient, no input), for tests and
demos of notebooks with ``%%agent`` cells."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["run_notebook"]


def run_notebook(
    nb: Any,
    cwd: Path,
    env: dict[str, str],
    *,
    allow_errors: bool = False,
    timeout: int = 300,
) -> Any:
    """Execute ``nb`` (in place, and returned) in a fresh python3 kernel started in ``cwd``
    with ``env``. The kernel talks over ipc sockets in a private folder (no TCP ports) and
    is shut down at the end."""
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    sockets = tempfile.mkdtemp(prefix="cmx-nb")
    try:
        km = AsyncKernelManager(
            kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "k")
        )
        client = NotebookClient(
            nb,
            km=km,
            timeout=timeout,
            allow_errors=allow_errors,
            kernel_name="python3",
            resources={"metadata": {"path": str(cwd)}},
        )
        client.execute(cleanup_kc=True, env=env)
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    return nb
