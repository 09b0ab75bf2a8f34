"""The notebook document interface: cells addressed by id, edits, saving, checkpoints.

Two backends implement it: the *file* backend (nbformat on disk, :mod:`.file`) and, later,
the *live* one (the notebook open in JupyterLab, through the kernel bridge). Tools only
ever use this interface.

Cells are addressed by id. Notebooks in nbformat 4.5 and later have ids of their own; older
ones get ids for the session (``c1``, ``c2``, ... by their position when opened)
that are never written to the file. The model may use any unique prefix of an id.
"""

from __future__ import annotations

import abc
import copy
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CodexmaxError

__all__ = [
    "CELL_TYPES",
    "CellNotFound",
    "Checkpoint",
    "NotebookDocument",
    "NotebookError",
    "NotebookReadOnly",
]

CELL_TYPES = ("code", "markdown", "raw")


class NotebookError(CodexmaxError):
    """A notebook that cannot be read or written. One line naming the file and the reason."""

    exit_code = 2


class CellNotFound(CodexmaxError):
    """No cell (or more than one) matches the id the model gave. Told to the model."""


class NotebookReadOnly(CodexmaxError):
    """The notebook cannot be changed (an old nbformat version). Told to the model."""


@dataclass
class Checkpoint:
    """The notebook as it was, to restore with :meth:`NotebookDocument.restore`."""

    cells: list[Any]
    ids: list[str]
    metadata: Any
    label: str = ""
    files: dict[Path, bytes | None] = field(default_factory=dict)


class NotebookDocument(abc.ABC):
    """A notebook the agent reads and changes."""

    path: Path
    #: Whether edits stay in the agent's working copy, shown to the user as proposals (a
    #: kernel without the bridge: :mod:`.detached`).
    edits_are_proposals = False

    def __init__(self, path: Path, nb: Any, ids: list[str]) -> None:
        self.path = path
        #: Where the notebook was found (a link stays a link): its workspace is around it.
        self.location = path
        self._nb = nb
        self._ids = ids
        self._counter = 0

    # -- reading ------------------------------------------------------------------------------

    @property
    def nb(self) -> Any:
        """The notebook (an nbformat ``NotebookNode`` in v4 shape)."""
        return self._nb

    @property
    def cells(self) -> list[Any]:
        return list(self._nb.cells)

    @property
    def metadata(self) -> Any:
        return self._nb.metadata

    @property
    def version(self) -> tuple[int, int]:
        return int(self._nb.get("nbformat", 4)), int(self._nb.get("nbformat_minor", 0))

    @property
    def writable(self) -> bool:
        return True

    @property
    def has_own_ids(self) -> bool:
        """Whether the format stores cell ids (nbformat 4.5 and later)."""
        return self.version >= (4, 5)

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    def index_of(self, handle: str) -> int:
        """The position of the cell whose id is ``handle`` or starts with it."""
        handle = str(handle).strip()
        if handle in self._ids:
            return self._ids.index(handle)
        matches = [i for i, cid in enumerate(self._ids) if handle and cid.startswith(handle)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise CellNotFound(f"no cell has id {handle!r}; read the notebook to see the cell ids")
        raise CellNotFound(
            f"{len(matches)} cells have ids starting with {handle!r}; give more of it"
        )

    def cell(self, handle: str) -> Any:
        return self._nb.cells[self.index_of(handle)]

    def cell_id(self, index: int) -> str:
        return self._ids[index]

    def short_id(self, index: int) -> str:
        """The id as shown: whole up to 12 characters, else its shortest unique prefix of at
        least 8 (JupyterLab's ids are 36-character UUIDs)."""
        full = self._ids[index]
        if len(full) <= 12:
            return full
        for length in range(8, len(full)):
            prefix = full[:length]
            if sum(1 for cid in self._ids if cid.startswith(prefix)) == 1:
                return prefix
        return full

    # -- changing -----------------------------------------------------------------------------

    def _require_writable(self) -> None:
        if not self.writable:
            major, minor = self.version
            raise NotebookReadOnly(
                f"{self.path.name} is in nbformat {major}.{minor}; the agent reads it but does "
                "not rewrite old formats. Upgrade it first: jupyter nbconvert --to notebook "
                f"--inplace {self.path.name}"
            )

    def _new_id(self) -> str:
        if self.has_own_ids:
            while True:
                candidate = uuid.uuid4().hex[:8]
                if candidate not in self._ids:
                    return candidate
        self._counter = max(self._counter, len(self._ids))
        while True:
            self._counter += 1
            if f"c{self._counter}" not in self._ids:
                return f"c{self._counter}"

    def _make_cell(self, cell_type: str, source: str, cell_id: str) -> Any:
        from .nbjson import new_cell

        if cell_type not in CELL_TYPES:
            raise ValueError(f"cell type must be one of {', '.join(CELL_TYPES)}")
        return new_cell(cell_type, source, cell_id if self.has_own_ids else None)

    async def insert_cell(self, index: int, cell_type: str, source: str) -> str:
        """Insert a new cell at ``index``; returns its id."""
        self._require_writable()
        index = max(0, min(index, len(self._nb.cells)))
        cell_id = self._new_id()
        self._nb.cells.insert(index, self._make_cell(cell_type, source, cell_id))
        self._ids.insert(index, cell_id)
        await self._changed()
        return cell_id

    async def set_source(self, handle: str, source: str, cell_type: str | None = None) -> str:
        """Replace a cell's source (and optionally its type); returns the old source."""
        self._require_writable()
        index = self.index_of(handle)
        cell = self._nb.cells[index]
        old = str(cell.get("source", ""))
        if cell_type and cell_type != cell.get("cell_type"):
            new = self._make_cell(cell_type, source, self._ids[index])
            if "metadata" in cell:
                new["metadata"] = cell["metadata"]
            if "attachments" in cell and cell_type != "code":
                new["attachments"] = cell["attachments"]
            self._nb.cells[index] = new
        else:
            cell["source"] = source
        await self._changed()
        return old

    async def delete_cell(self, handle: str) -> Any:
        self._require_writable()
        index = self.index_of(handle)
        cell = self._nb.cells.pop(index)
        self._ids.pop(index)
        await self._changed()
        return cell

    async def move_cell(self, handle: str, new_index: int) -> int:
        """Move a cell so it ends up at ``new_index``; returns where it was."""
        self._require_writable()
        index = self.index_of(handle)
        cell = self._nb.cells.pop(index)
        cell_id = self._ids.pop(index)
        new_index = max(0, min(new_index, len(self._nb.cells)))
        self._nb.cells.insert(new_index, cell)
        self._ids.insert(new_index, cell_id)
        await self._changed()
        return index

    async def set_metadata(self, key: str, value: Any) -> None:
        """Set a notebook-level metadata key (the agent's session lives under one)."""
        self._require_writable()
        self._nb.metadata[key] = value
        await self._changed()

    async def remove_metadata(self, key: str) -> bool:
        """Remove a notebook-level metadata key; False if it was not there."""
        if key not in self._nb.metadata:
            return False
        self._require_writable()
        del self._nb.metadata[key]
        await self._changed()
        return True

    async def outputs_changed(self, handle: str) -> None:
        """Note that a cell's outputs (or execution count) were changed by a run."""
        self._require_writable()
        await self._changed()

    # -- checkpoints --------------------------------------------------------------------------

    def checkpoint(self, label: str = "") -> Checkpoint:
        return Checkpoint(
            cells=copy.deepcopy(list(self._nb.cells)),
            ids=list(self._ids),
            metadata=copy.deepcopy(self._nb.metadata),
            label=label,
        )

    async def restore(self, checkpoint: Checkpoint) -> None:
        self._require_writable()
        self._nb.cells[:] = copy.deepcopy(checkpoint.cells)
        self._nb.metadata = copy.deepcopy(checkpoint.metadata)
        self._ids[:] = list(checkpoint.ids)
        await self._changed()

    # -- proposals ----------------------------------------------------------------------------

    def pending_changes(self) -> list[dict[str, Any]]:
        """Edits kept in a working copy and not yet in the file, as stored with the session
        so they outlive the process (none where edits go to the notebook itself)."""
        return []

    # -- backends -----------------------------------------------------------------------------

    def changed_elsewhere(self) -> bool:
        """Whether someone else changed the notebook since this document last saw it."""
        return False

    @abc.abstractmethod
    async def _changed(self) -> None:
        """Called after every change."""

    @abc.abstractmethod
    async def save(self) -> bool:
        """Write pending changes; returns whether anything was written."""
