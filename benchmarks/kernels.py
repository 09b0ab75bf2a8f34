"""Fresh real kernels for the benchmarks: ours (this Python) or a peer's (another venv's).

A kernel is started by jupyter_client as a frontend would, over ``ipc`` sockets in a
private temporary folder (no TCP warning), from a kernel spec naming the Python to run
``ipykernel_launcher`` with: the project's own Python for ours, a peer environment's
Python (e.g. a Jupyter AI venv's) for theirs, so every kernel is started the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["kernel", "run_json"]


@contextmanager
def kernel(
    python: str = sys.executable, *, env: Mapping[str, str] | None = None, cwd: str | None = None
) -> Iterator[Any]:
    """A started, ready kernel client of a fresh kernel running ``python``; shut down after.

    ``env`` is added to this process's environment (less ``PYTHONDONTWRITEBYTECODE``, so
    the kernel's imports are as warm as a user's).
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    folder = tempfile.mkdtemp(prefix="cmx-k")
    spec = Path(folder, "specs", "bench")
    spec.mkdir(parents=True)
    argv = [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "bench", "language": "python"})
    )
    km = KernelManager(
        kernel_name="bench",
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]),
        transport="ipc",
        ip=os.path.join(folder, "k"),
    )
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    km.start_kernel(env={**base, **(env or {})}, cwd=cwd)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        shutil.rmtree(folder, ignore_errors=True)


def run_json(kc: Any, code: str, timeout: float = 120) -> Any:
    """Run ``code`` (which prints one JSON document) in the kernel; its value.

    An error in the kernel is raised here as ``RuntimeError`` with the kernel's message.
    """
    out: list[str] = []
    errors: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            errors.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")

    kc.execute_interactive(code, output_hook=hook, timeout=timeout)
    if errors:
        raise RuntimeError(errors[0])
    return json.loads("".join(out))
