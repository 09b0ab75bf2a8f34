"""The notebook open in the frontend, reached through the bridge (``docs/bridge.md``).

Every change goes to the frontend's notebook model first (the user sees it at once, and
JupyterLab never finds the file "changed on disk"); only when the frontend has made it does
this copy change. Saving asks the frontend to save: the frontend owns the file. The
``notebook.*`` requests are sent by ``call``, the bridge's, awaited on the agent's loop.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .document import Checkpoint, NotebookDocument, NotebookError

__all__ = ["LiveNotebook"]

Call = Callable[..., Awaitable[Any]]


class LiveNotebook(NotebookDocument):
    def __init__(self, call: Call, data: dict[str, Any], path: Path) -> None:
        from .nbjson import read_v4

        keep = ("id", "cell_type", "source", "metadata", "outputs", "execution_count")
        cells: list[Any] = []
        for cell in data.get("cells") or []:
            if not isinstance(cell, dict):
                cells.append(cell)  # refused by read_v4, with the reason
                continue
            entry = {k: cell[k] for k in keep if k in cell}
            entry.setdefault("cell_type", "code")
            if entry["cell_type"] != "code":
                entry.pop("outputs", None)
                entry.pop("execution_count", None)
                if "attachments" in cell:
                    entry["attachments"] = cell["attachments"]
            cells.append(entry)
        # The frontend's model: as lenient as reading the file (missing keys filled, the
        # wrong types refused), and every cell has an id, whatever the file's format.
        nb, _ = read_v4(
            {
                "nbformat": 4,
                "nbformat_minor": data.get("nbformat_minor", 5),
                "metadata": data.get("metadata") or {},
                "cells": cells,
            },
            f"{path} (open in the frontend)",
            own_ids=True,
        )
        super().__init__(path, nb, [str(c["id"]) for c in nb.cells])
        self._call = call
        self.dirty = bool(data.get("dirty"))

    @classmethod
    async def fetch(cls, call: Call, cwd: Path) -> LiveNotebook:
        """The frontend's notebook, as it is now (unsaved edits included)."""
        data = await call("notebook.get")
        name = str(data.get("path") or "untitled.ipynb")
        local = data.get("local_path")
        path = Path(local) if local and Path(local).is_absolute() else cwd / Path(name).name
        return cls(call, data, path)

    @property
    def has_own_ids(self) -> bool:
        return True  # the frontend's model has ids for every cell, whatever the file's format

    async def _changed(self) -> None:
        return None

    async def _edit(self, *ops: dict[str, Any]) -> None:
        try:
            await self._call("notebook.edit", ops=list(ops))
        except Exception as exc:
            raise NotebookError(
                f"{self.path.name}: the frontend did not make the edit: {exc}"
            ) from exc
        self.dirty = True

    async def insert_cell(self, index: int, cell_type: str, source: str) -> str:
        index = max(0, min(index, len(self._nb.cells)))
        cell_id = self._new_id()
        await self._edit(
            {
                "op": "insert",
                "index": index,
                "id": cell_id,
                "cell_type": cell_type,
                "source": source,
            }
        )
        self._nb.cells.insert(index, self._make_cell(cell_type, source, cell_id))
        self._ids.insert(index, cell_id)
        return cell_id

    async def set_source(self, handle: str, source: str, cell_type: str | None = None) -> str:
        index = self.index_of(handle)
        op: dict[str, Any] = {"op": "set_source", "id": self._ids[index], "source": source}
        if cell_type and cell_type != self._nb.cells[index].get("cell_type"):
            op["cell_type"] = cell_type
        await self._edit(op)
        return await super().set_source(handle, source, cell_type)

    async def delete_cell(self, handle: str) -> Any:
        index = self.index_of(handle)
        await self._edit({"op": "delete", "id": self._ids[index]})
        return await super().delete_cell(handle)

    async def move_cell(self, handle: str, new_index: int) -> int:
        index = self.index_of(handle)
        new_index = max(0, min(new_index, len(self._nb.cells) - 1))
        await self._edit({"op": "move", "id": self._ids[index], "index": new_index})
        return await super().move_cell(handle, new_index)

    async def set_metadata(self, key: str, value: Any) -> None:
        await self._edit({"op": "set_metadata", "key": key, "value": value})
        await super().set_metadata(key, value)

    async def remove_metadata(self, key: str) -> bool:
        if key not in self._nb.metadata:
            return False
        await self._edit({"op": "set_metadata", "key": key, "value": None})
        return await super().remove_metadata(key)

    async def set_outputs(self, handle: str, outputs: list[Any]) -> None:
        """Replace a cell's outputs in the frontend (the ``%%agent`` cell's summary)."""
        index = self.index_of(handle)
        await self._edit({"op": "set_outputs", "id": self._ids[index], "outputs": outputs})
        self._nb.cells[index]["outputs"] = copy.deepcopy(outputs)

    async def restore(self, checkpoint: Checkpoint) -> None:
        cells = []
        for cell_id, cell in zip(checkpoint.ids, checkpoint.cells, strict=True):
            entry = {k: v for k, v in dict(cell).items() if k != "id"}
            cells.append({"id": cell_id, **entry})
        await self._edit(
            {"op": "replace", "cells": copy.deepcopy(cells), "metadata": dict(checkpoint.metadata)}
        )
        await super().restore(checkpoint)

    async def save(self) -> bool:
        if not self.dirty:
            return False
        result = await self._call("notebook.save")
        self.dirty = False
        return bool(result.get("saved", True))
