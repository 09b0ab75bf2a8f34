"""The frontend runner: the frontend holding the notebook runs the cell, as if the user had.

Through the bridge's ``notebook.run`` request (``docs/bridge.md``): the frontend sends the
cell to the kernel as an ordinary execution, so its outputs appear in the notebook; it
answers with the cell's status and outputs. The agent (on its own thread) leaves the
kernel free to run it. Interrupting a cell past its time limit is the frontend's job (it
holds the kernel connection); this runner cannot restart the kernel it lives in.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from .base import CellRun, KernelError, ThisKernelRunner

__all__ = ["FrontendRunner"]

#: Seconds beyond the cell's time limit the frontend gets to answer.
REPLY_SLACK = 30.0


class FrontendRunner(ThisKernelRunner):
    def __init__(self, call: Callable[..., Awaitable[Any]], *, kernel_name: str = "python3"):
        super().__init__(kernel_name)
        self._call = call
        self.note = (
            "cells run in the user's open notebook, in the kernel you live in: their outputs "
            "appear in the notebook, and what they define stays defined"
        )

    async def run(self, doc: Any, index: int, timeout: float) -> CellRun:
        cell = doc.nb.cells[index]
        cell_id = doc.cell_id(index)
        if cell.get("cell_type") != "code" or not str(cell.get("source", "")).strip():
            return CellRun(cell_id, "skipped", 0.0, note="not a code cell, or empty")
        flush = getattr(doc, "flush", None)
        if flush is not None:
            await flush()  # the agent's edits are in the frontend's notebook before it runs
        started = time.monotonic()
        try:
            result = await self._call(
                "notebook.run", wait=timeout + REPLY_SLACK, ids=[cell_id], timeout=timeout
            )
        except Exception as exc:
            raise KernelError(f"the frontend could not run the cell: {exc}") from exc
        runs = result.get("runs") or []
        run = runs[0] if runs else {}
        outputs = list(run.get("outputs") or [])
        cell["outputs"] = outputs
        cell["execution_count"] = run.get("execution_count")
        note = getattr(doc, "note_outputs", None)
        if note is not None:
            note(cell_id, outputs)
        status = str(run.get("status") or "error")
        if status not in ("ok", "error", "timeout", "dead", "interrupted"):
            status = "error"
        found = CellRun(
            cell_id,
            status,  # type: ignore[arg-type]
            float(run.get("duration") or time.monotonic() - started),
            execution_count=run.get("execution_count"),
            outputs=outputs,
        )
        error = run.get("error") or next(
            (o for o in outputs if o.get("output_type") == "error"), None
        )
        if error:
            found.error_name = str(error.get("ename", ""))
            found.error_value = str(error.get("evalue", ""))
            found.traceback = list(error.get("traceback") or [])
        return found
