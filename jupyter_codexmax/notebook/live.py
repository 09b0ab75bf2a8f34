"""The notebook open in the frontend, reached through the bridge (``docs/bridge.md``).

Every change goes to the frontend's notebook model (the user sees it at once, and
JupyterLab never finds the file "changed on disk"). Changes are gathered into one
``notebook.edit`` (one undo step in the notebook) and sent when the document is saved or
before a cell runs; each op that changes a cell carries the cell's source as this copy
knows it (``base``), so the frontend refuses the edit, whole, when the user has changed
the cell since: then this copy is read again and :class:`CellChanged` tells the model to
read the notebook again. Undo is sent as the ops that take the notebook back, cell by
cell: the notebook is never replaced. Saving asks the frontend to save: it owns the file.
The ``notebook.*`` requests are sent by ``call``, the bridge's, awaited on the agent's loop.
"""

from __future__ import annotations

import copy
import errno
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .document import CellNotFound, Checkpoint, NotebookDocument, NotebookError

__all__ = ["CellChanged", "LiveNotebook"]

Call = Callable[..., Awaitable[Any]]

#: Why a save of a notebook JupyterLab opened read-only is not made.
READ_ONLY_IN_LAB = (
    "the notebook is read-only in JupyterLab (the file cannot be written): the changes are "
    "on screen, not saved; File > Save Notebook As... keeps them"
)


class CellChanged(CellNotFound):
    """The user changed a cell the edit names since the agent read it: the edit was not
    made, nothing changed. Told to the model, as a missing cell is (the cell as the model
    knew it is gone): it reads the notebook again and redoes the edit on the user's text."""


def _cells(data: dict[str, Any]) -> list[Any]:
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
    return cells


class LiveNotebook(NotebookDocument):
    def __init__(self, call: Call, data: dict[str, Any], path: Path) -> None:
        nb = self._read(data, path)
        super().__init__(path, nb, [str(c["id"]) for c in nb.cells])
        self._call = call
        self.dirty = bool(data.get("dirty"))
        #: Ops made here and not yet sent to the frontend, and this copy as the frontend
        #: has it (to go back to when it refuses them).
        self._pending: list[dict[str, Any]] = []
        self._before: Checkpoint | None = None
        #: Whether the agent changed the notebook since the frontend last saved it.
        self._unsaved = False
        #: Outputs as the frontend showed them after a run (``noted_outputs``): when the
        #: agent masks a secret in them, the frontend's copy is masked too.
        self._shown_outputs: dict[str, str] = {}
        #: The last edit was refused: this copy is the frontend's again (read again when
        #: the user changed a cell), so the edit's caller has nothing to take back.
        self._refused = False

    @staticmethod
    def _read(data: dict[str, Any], path: Path) -> Any:
        from .nbjson import read_v4

        # The frontend's model: as lenient as reading the file (missing keys filled, the
        # wrong types refused), and every cell has an id, whatever the file's format.
        nb, _ = read_v4(
            {
                "nbformat": 4,
                "nbformat_minor": data.get("nbformat_minor", 5),
                "metadata": data.get("metadata") or {},
                "cells": _cells(data),
            },
            f"{path} (open in the frontend)",
            own_ids=True,
        )
        return nb

    @classmethod
    async def fetch(cls, call: Call, cwd: Path) -> LiveNotebook:
        """The frontend's notebook, as it is now (unsaved edits included)."""
        data = await call("notebook.get")
        name = str(data.get("path") or "untitled.ipynb")
        local = data.get("local_path")
        path = Path(local) if local and Path(local).is_absolute() else cwd / Path(name).name
        return cls(call, data, path)

    async def reload(self) -> None:
        """Read the frontend's notebook again (what is on screen now)."""
        data = await self._call("notebook.get")
        self._nb = self._read(data, self.path)
        self._ids = [str(c["id"]) for c in self._nb.cells]
        self._pending, self._before = [], None
        self._shown_outputs.clear()
        self.dirty = bool(data.get("dirty"))

    @property
    def has_own_ids(self) -> bool:
        return True  # the frontend's model has ids for every cell, whatever the file's format

    async def _changed(self) -> None:
        return None

    # -- sending ------------------------------------------------------------------------------

    def _queue(self, op: dict[str, Any]) -> None:
        self._refused = False
        if not self._pending:
            self._before = NotebookDocument.checkpoint(self, "sent")
        self._pending.append(op)

    def _base(self, index: int) -> str:
        return str(self._nb.cells[index].get("source", ""))

    async def flush(self) -> None:
        """Send the changes made here to the frontend, as one edit. When it refuses them,
        this copy goes back to what the frontend has (read again when the user changed a
        cell meanwhile) and the error says why."""
        if not self._pending:
            return
        ops, before = self._pending, self._before
        self._pending, self._before = [], None
        try:
            await self._call("notebook.edit", ops=ops)
        except Exception as exc:
            if before is not None:
                await NotebookDocument.restore(self, before)
            self._refused = True
            stale = [str(cell) for cell in getattr(exc, "stale", None) or []]
            if stale:
                shown = [self._shown(cell) for cell in stale]
                try:
                    await self.reload()
                except Exception as again:
                    raise NotebookError(
                        f"{self.path.name}: the user changed {', '.join(shown)} meanwhile, and "
                        f"the notebook could not be read again: {again}"
                    ) from exc
                raise CellChanged(
                    f"the user changed cell {', '.join(shown)} in the notebook since you read "
                    "it, so this edit was not made (nothing changed): read the notebook again "
                    "(read_notebook) to see their text, and make the edit on that"
                ) from exc
            raise NotebookError(
                f"{self.path.name}: the frontend did not make the edit: {exc}"
            ) from exc
        self._unsaved = True
        self.dirty = True

    def _shown(self, cell_id: str) -> str:
        return self.short_id(self._ids.index(cell_id)) if cell_id in self._ids else cell_id

    # -- changing ---------------------------------------------------------------------------

    async def insert_cell(self, index: int, cell_type: str, source: str) -> str:
        index = max(0, min(index, len(self._nb.cells)))
        cell_id = self._new_id()
        op = {"op": "insert", "index": index, "id": cell_id, "cell_type": cell_type}
        self._queue({**op, "source": source})
        self._nb.cells.insert(index, self._make_cell(cell_type, source, cell_id))
        self._ids.insert(index, cell_id)
        return cell_id

    async def set_source(self, handle: str, source: str, cell_type: str | None = None) -> str:
        index = self.index_of(handle)
        op: dict[str, Any] = {
            "op": "set_source",
            "id": self._ids[index],
            "source": source,
            "base": self._base(index),
        }
        if cell_type and cell_type != self._nb.cells[index].get("cell_type"):
            op["cell_type"] = cell_type
        self._queue(op)
        return await super().set_source(handle, source, cell_type)

    async def delete_cell(self, handle: str) -> Any:
        index = self.index_of(handle)
        self._queue({"op": "delete", "id": self._ids[index], "base": self._base(index)})
        return await super().delete_cell(handle)

    async def move_cell(self, handle: str, new_index: int) -> int:
        index = self.index_of(handle)
        new_index = max(0, min(new_index, len(self._nb.cells) - 1))
        self._queue({"op": "move", "id": self._ids[index], "index": new_index})
        return await super().move_cell(handle, new_index)

    async def set_metadata(self, key: str, value: Any) -> None:
        self._queue({"op": "set_metadata", "key": key, "value": value})
        await super().set_metadata(key, value)

    async def remove_metadata(self, key: str) -> bool:
        if key not in self._nb.metadata:
            return False
        self._queue({"op": "set_metadata", "key": key, "value": None})
        return await super().remove_metadata(key)

    async def set_outputs(self, handle: str, outputs: list[Any]) -> None:
        """Replace a cell's outputs in the frontend (the ``%%agent`` cell's summary)."""
        index = self.index_of(handle)
        self._queue({"op": "set_outputs", "id": self._ids[index], "outputs": outputs})
        self._nb.cells[index]["outputs"] = copy.deepcopy(outputs)

    def note_outputs(self, cell_id: str, outputs: list[Any]) -> None:
        """The outputs the frontend shows after a run of the cell (the runner's note)."""
        self._shown_outputs[cell_id] = json.dumps(outputs, sort_keys=True)

    async def outputs_changed(self, handle: str) -> None:
        """After a run: where the agent masked a secret in the outputs, the frontend's
        outputs are masked too (they are written with the notebook)."""
        index = self.index_of(handle)
        cell_id = self._ids[index]
        outputs = list(self._nb.cells[index].get("outputs") or [])
        shown = self._shown_outputs.pop(cell_id, None)
        if shown is not None and shown != json.dumps(outputs, sort_keys=True):
            self._queue({"op": "set_outputs", "id": cell_id, "outputs": copy.deepcopy(outputs)})

    async def restore(self, checkpoint: Checkpoint) -> None:
        """Back to ``checkpoint`` (undo), by the ops that take the frontend's notebook there,
        cell by cell; a cell the user changed since refuses them all (``flush``)."""
        if self._refused:
            # The edit to take back was refused: the frontend's notebook has none of it,
            # and this copy is the frontend's (with the user's changes, read again).
            self._refused = False
            return
        if self._pending and self._before is not None:
            # Not sent yet: this copy goes back to the frontend's first.
            await NotebookDocument.restore(self, self._before)
            self._pending, self._before = [], None
        for op in _ops_towards(self, checkpoint):
            self._queue(op)
        await NotebookDocument.restore(self, checkpoint)

    async def save(self) -> bool:
        await self.flush()
        if not self._unsaved:
            return False
        result = await self._call("notebook.save")
        if result.get("read_only"):
            # The change stays on screen (and in this copy); no save is tried, so no error
            # dialog opens in JupyterLab. Said as a file that cannot be written is.
            raise PermissionError(errno.EACCES, READ_ONLY_IN_LAB)
        self._unsaved = False
        self.dirty = False
        return bool(result.get("saved", True))


def _ops_towards(doc: NotebookDocument, target: Checkpoint) -> list[dict[str, Any]]:
    """The ops that make ``doc`` into ``target``: deletes, then each of the target's cells
    inserted or moved into its place and its source, type and outputs set; then the
    notebook's metadata."""
    now = {cid: cell for cid, cell in zip(doc.ids, doc.nb.cells, strict=True)}
    wanted = set(target.ids)
    ops: list[dict[str, Any]] = []
    order = [cid for cid in doc.ids if cid in wanted]
    for cid in doc.ids:
        if cid not in wanted:
            ops.append({"op": "delete", "id": cid, "base": str(now[cid].get("source", ""))})
    for index, (cid, cell) in enumerate(zip(target.ids, target.cells, strict=True)):
        cell_type = str(cell.get("cell_type", "code"))
        source = str(cell.get("source", ""))
        if cid not in now:
            op: dict[str, Any] = {
                "op": "insert",
                "index": index,
                "id": cid,
                "cell_type": cell_type,
                "source": source,
                "metadata": copy.deepcopy(dict(cell.get("metadata") or {})),
            }
            if cell_type == "code":
                op["outputs"] = copy.deepcopy(list(cell.get("outputs") or []))
                op["execution_count"] = cell.get("execution_count")
            elif cell.get("attachments"):
                op["attachments"] = copy.deepcopy(cell["attachments"])
            ops.append(op)
            order.insert(index, cid)
            continue
        if order.index(cid) != index:
            ops.append({"op": "move", "id": cid, "index": index})
            order.remove(cid)
            order.insert(index, cid)
        current = now[cid]
        old_type = str(current.get("cell_type", "code"))
        old_source = str(current.get("source", ""))
        if source != old_source or cell_type != old_type:
            change: dict[str, Any] = {
                "op": "set_source",
                "id": cid,
                "source": source,
                "base": old_source,
            }
            if cell_type != old_type:
                change["cell_type"] = cell_type
            ops.append(change)
        if cell_type == "code" and list(cell.get("outputs") or []) != list(
            current.get("outputs") or []
        ):
            ops.append(
                {
                    "op": "set_outputs",
                    "id": cid,
                    "outputs": copy.deepcopy(list(cell.get("outputs") or [])),
                }
            )
    old_meta, new_meta = dict(doc.metadata), dict(target.metadata)
    for key in old_meta:
        if key not in new_meta:
            ops.append({"op": "set_metadata", "key": key, "value": None})
    for key, value in new_meta.items():
        if old_meta.get(key) != value:
            ops.append({"op": "set_metadata", "key": key, "value": copy.deepcopy(value)})
    return ops
