"""Helpers for tests that need notebooks and agents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
from nbformat import v4

from jupyter_codexmax import events as ev
from jupyter_codexmax.agent.approvals import Approver
from jupyter_codexmax.agent.core import Agent
from jupyter_codexmax.cli.run import kernel_environment
from jupyter_codexmax.config import CodexMax
from jupyter_codexmax.notebook.file import FileNotebook
from jupyter_codexmax.runners.headless import HeadlessRunner
from jupyter_codexmax.workspace import Workspace

Cell = tuple[str, str, str]  # id, type, source


def make_notebook(
    path: Path, cells: list[Cell], *, minor: int = 5, outputs: dict[str, list[Any]] | None = None
) -> Path:
    nb = v4.new_notebook()
    nb.nbformat_minor = minor
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    }
    for cid, kind, source in cells:
        cell = v4.new_markdown_cell(source) if kind == "markdown" else v4.new_code_cell(source)
        cell.pop("id", None)
        if minor >= 5:
            cell["id"] = cid
        if outputs and cid in outputs and kind == "code":
            cell["outputs"] = [nbformat.from_dict(o) for o in outputs[cid]]
        nb.cells.append(cell)
    path.write_text(nbformat.writes(nb) + "\n")
    return path


def raw_cells(path: Path) -> dict[str, dict[str, Any]]:
    """The cells as stored (sources as lists of lines), by id."""
    data = json.loads(path.read_text())
    return {c.get("id", f"c{i}"): c for i, c in enumerate(data["cells"], 1)}


def cells_by_id(path: Path) -> dict[str, Any]:
    """The cells as nbformat reads them (sources and texts joined), by id."""
    nb = nbformat.reads(path.read_text(), as_version=nbformat.NO_CONVERT)
    return {c.get("id", f"c{i}"): c for i, c in enumerate(nb.cells, 1)}


class Session:
    """An agent on a notebook with a real kernel; events collected."""

    def __init__(
        self,
        settings: CodexMax,
        notebook: Path,
        *,
        approval: str = "auto",
        approver: Approver | None = None,
    ) -> None:
        self.doc = FileNotebook.open(notebook)
        self.events: list[ev.Event] = []
        self.runner = HeadlessRunner(self.doc.path, self.doc.nb, env=kernel_environment(settings))
        self.agent = Agent(
            settings,
            workspace=Workspace(notebook.parent.resolve()),
            notebook=self.doc,
            runner=self.runner,
            approval=approval,
            approver=approver,
            on_event=self.events.append,
        )

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def outputs(self) -> dict[str, Any]:
        """Each function call's output, by call id."""
        return {
            i["call_id"]: i["output"]
            for i in self.agent.history
            if i.get("type") == "function_call_output"
        }

    async def close(self) -> None:
        await self.agent.aclose()


def without_session(path: Path) -> bytes:
    """The notebook's bytes as our writer makes them, without the agent's metadata key."""
    from jupyter_codexmax.notebook.nbjson import notebook_bytes, read_v4

    nb, _ = read_v4(json.loads(path.read_text()), str(path))
    nb.metadata.pop("codexmax", None)
    return notebook_bytes(nb)


def call(name: str, arguments: Any) -> dict[str, Any]:
    """A function call for a scripted model's step."""
    return {"name": name, "arguments": arguments}
