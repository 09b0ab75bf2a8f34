"""The in-process runner: cells run in the kernel the agent itself lives in.

For ``%%agent`` in a kernel without the bridge. The agent works on its own thread; each run
is handed to the kernel's main thread (where user code must run: the shell is not
thread-safe, and libraries such as matplotlib expect it), executed with
``shell.run_cell`` and captured: standard output and error, rich displays, the value of the
last expression and the error with its traceback become the cell's outputs in the agent's
working copy, and are not printed into the ``%%agent`` cell. The kernel's execution count is
not advanced (the cells are not the user's).

A run past its timeout is interrupted, as the user would (SIGINT to the main thread). A
run the user interrupts stops the agent (the user pressed interrupt to stop it all).
The runner cannot restart the kernel it runs in: the model is told to ask the user.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .base import CellRun, ThisKernelRunner

__all__ = ["InProcessRunner", "execute_in_shell"]

#: Runs a callable on the kernel's main thread and returns its result; ``on_timeout`` is
#: called (from the agent's thread) if it takes longer than ``timeout`` seconds.
MainCall = Callable[[Callable[[], Any], float, Callable[[], None]], Awaitable[Any]]


class InProcessRunner(ThisKernelRunner):
    def __init__(
        self,
        shell: Any,
        on_main: MainCall,
        interrupt: Callable[[], None],
        *,
        on_user_interrupt: Callable[[], None] | None = None,
        kernel_name: str = "python3",
    ) -> None:
        super().__init__(kernel_name)
        self.shell = shell
        self.on_main = on_main
        self.interrupt = interrupt
        #: Called (on the agent's loop) when the user interrupted the kernel during a run:
        #: the user means to stop the agent, not just the cell.
        self.on_user_interrupt = on_user_interrupt
        #: Told to the model once, with the first run.
        self.note = (
            "cells run in the user's own kernel (the one you live in): what they define "
            "stays defined for the user; the kernel's execution count is not advanced"
        )

    async def run(self, doc: Any, index: int, timeout: float) -> CellRun:
        cell = doc.nb.cells[index]
        cell_id = doc.cell_id(index)
        source = str(cell.get("source", ""))
        if cell.get("cell_type") != "code" or not source.strip():
            return CellRun(cell_id, "skipped", 0.0, note="not a code cell, or empty")
        timed_out = False

        def on_timeout() -> None:
            nonlocal timed_out
            timed_out = True
            self.interrupt()

        started = time.monotonic()
        status, outputs, error = await self.on_main(
            lambda: execute_in_shell(self.shell, source), timeout, on_timeout
        )
        duration = time.monotonic() - started
        if timed_out and status == "interrupted":
            status = "timeout"
        cell["outputs"] = outputs
        cell["execution_count"] = None
        if status == "interrupted" and self.on_user_interrupt is not None:
            self.on_user_interrupt()
            await asyncio.sleep(0)  # the stop is delivered here, with the outputs kept
        run = CellRun(cell_id, status, duration, outputs=outputs)
        if error is not None:
            run.error_name, run.error_value, run.traceback = error
        if status == "timeout":
            run.note = f"interrupted after {timeout:g} s"
        return run


def execute_in_shell(
    shell: Any, source: str
) -> tuple[str, list[dict[str, Any]], tuple[str, str, list[str]] | None]:
    """Run ``source`` in ``shell`` (on the main thread), capturing everything it shows.
    Returns (status, nbformat outputs, (ename, evalue, traceback) or None)."""
    from IPython.utils.capture import capture_output

    errors: list[tuple[str, str, list[str]]] = []

    def keep_traceback(etype: type[BaseException], evalue: BaseException, stb: Any) -> None:
        lines = list(stb) if isinstance(stb, (list, tuple)) else str(stb).splitlines()
        errors.append((etype.__name__, str(evalue), lines))

    own = "_showtraceback" in vars(shell)
    previous = vars(shell).get("_showtraceback")
    shell._showtraceback = keep_traceback
    try:
        with capture_output(stdout=True, stderr=True, display=True) as captured:
            result = shell.run_cell(source, store_history=False, silent=False)
    finally:
        if own:
            shell._showtraceback = previous
        else:
            del shell._showtraceback
    outputs: list[dict[str, Any]] = []
    if captured.stdout:
        outputs.append({"output_type": "stream", "name": "stdout", "text": captured.stdout})
    if captured.stderr:
        outputs.append({"output_type": "stream", "name": "stderr", "text": captured.stderr})
    for rich in captured.outputs:
        data = getattr(rich, "data", None)
        if data is None and isinstance(rich, dict):
            data = rich.get("data")
        metadata = getattr(rich, "metadata", None)
        if metadata is None and isinstance(rich, dict):
            metadata = rich.get("metadata")
        if data:
            outputs.append(
                {"output_type": "display_data", "data": dict(data), "metadata": metadata or {}}
            )
    failure = result.error_before_exec or result.error_in_exec
    if failure is None and not errors:
        return "ok", outputs, None
    if errors:
        ename, evalue, stb = errors[-1]
    else:
        assert failure is not None
        ename, evalue, stb = type(failure).__name__, str(failure), []
    outputs.append({"output_type": "error", "ename": ename, "evalue": evalue, "traceback": stb})
    status = "interrupted" if isinstance(failure, KeyboardInterrupt) else "error"
    return status, outputs, (ename, evalue, stb)
