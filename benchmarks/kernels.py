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
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["Unmeasured", "interleave", "kernel", "run_json"]


class Unmeasured(Exception):
    """A peer's sample that could not be taken (it failed to load or answer): the reason."""


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


def interleave(
    keys: Iterable[str], rounds: int, sample: Callable[[str], dict[str, Any]]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """``sample(key)`` for each key in turn, round by round: ``rounds`` samples of each.

    Round 0 is a warm-up, not kept (it warms the file cache and the bytecode). A key whose
    sample raises :class:`Unmeasured` is dropped, not sampled again: the second value maps
    it to the reason.
    """
    order = list(keys)
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in order}
    failed: dict[str, str] = {}
    for round_ in range(rounds + 1):
        for key in order:
            if key in failed:
                continue
            try:
                result = sample(key)
            except Unmeasured as why:
                failed[key] = str(why)
                continue
            if round_:
                runs[key].append(result)
    return {k: v for k, v in runs.items() if k not in failed}, failed
