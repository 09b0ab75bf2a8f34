"""The cell runner interface: run a notebook's cell in a kernel, report what happened.

Backends: *headless* (nbclient and jupyter_client, one kernel per notebook, for
``jupyter codexmax run``), and later *frontend* (JupyterLab runs the cell) and *in-process*
(the current kernel).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import CodexmaxError

__all__ = ["CellRun", "CellRunner", "KernelError", "ThisKernelRunner"]

RunStatus = Literal["ok", "error", "timeout", "dead", "interrupted", "skipped"]


class KernelError(CodexmaxError):
    """The kernel could not be started or reached. Told to the model; not fatal."""


@dataclass
class CellRun:
    """The result of running one cell."""

    cell_id: str
    status: RunStatus
    duration: float
    execution_count: int | None = None
    outputs: list[Any] = field(default_factory=list)
    error_name: str | None = None
    error_value: str | None = None
    traceback: list[str] = field(default_factory=list)
    note: str = ""


class CellRunner(abc.ABC):
    """Runs cells of one notebook."""

    @property
    @abc.abstractmethod
    def kernel_name(self) -> str: ...

    @property
    @abc.abstractmethod
    def started(self) -> bool:
        """Whether a kernel is running now."""

    @abc.abstractmethod
    async def run(self, doc: Any, index: int, timeout: float) -> CellRun:
        """Run cell ``index`` of ``doc``, storing its outputs in the cell. Starts the kernel
        on first use. Cancelling interrupts the kernel, then stops."""

    @abc.abstractmethod
    async def restart(self) -> None:
        """A fresh kernel (its variables are gone)."""

    @abc.abstractmethod
    async def shutdown(self) -> None:
        """Stop the kernel, if one is running."""


class ThisKernelRunner(CellRunner):
    """A runner for the kernel the agent itself lives in (in-process, or through the
    frontend): always started, never restarted or shut down by the agent."""

    def __init__(self, kernel_name: str = "python3") -> None:
        self._kernel_name = kernel_name
        self.starts = 0

    @property
    def kernel_name(self) -> str:
        return self._kernel_name

    @property
    def started(self) -> bool:
        return True

    async def restart(self) -> None:
        raise KernelError(
            "the agent runs inside this kernel and cannot restart it; ask the user to "
            "restart the kernel (then run %%agent again: the session carries on)"
        )

    async def shutdown(self) -> None:
        return None
