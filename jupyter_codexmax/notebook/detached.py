"""The notebook as a kernel without a bridge sees it: a working copy that is never written.

A kernel cannot tell whether a frontend (JupyterLab, VS Code, nbclient) holds its notebook,
so without the bridge it never writes the notebook's file. The agent reads the file as last
saved, edits this in-memory working copy (its later reads and runs see its own edits), and
the edits are shown to the user as *proposals* to apply. :meth:`DetachedNotebook.proposals`
lists them against the file as it was read.

Without a file (no notebook could be found) the working copy starts empty.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .document import NotebookDocument

__all__ = ["DetachedNotebook", "Proposal", "Reapplied"]


def source_digest(source: str) -> str:
    """A short digest of a cell's source: a stored proposal's check that the cell it
    changes is still as it was."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


@dataclass
class Reapplied:
    """What became of stored proposals, put back into a new working copy: restored, found
    already applied in the file (the user took them), or dropped (the user changed the
    cell since), by cell id."""

    restored: list[str]
    applied: list[str]
    dropped: list[str]


@dataclass(frozen=True)
class Proposal:
    """One change the agent made to its working copy, for the user to apply."""

    cell_id: str
    action: str  # insert, replace, delete
    cell_type: str
    source: str
    old_source: str
    position: int  # 1-based position in the working copy (for delete: in the file)
    after: str | None = None  # for an insert: the id of the cell it follows (None: the top)

    @property
    def diff(self) -> str:
        from ..diffs import unified_diff

        return unified_diff(
            self.old_source,
            self.source,
            fromfile=f"cell {self.cell_id} (saved)",
            tofile=f"cell {self.cell_id} (proposed)",
        )


class DetachedNotebook(NotebookDocument):
    """A working copy of a notebook file; :meth:`save` never writes anything."""

    edits_are_proposals = True

    def __init__(
        self,
        path: Path,
        nb: Any,
        ids: list[str],
        *,
        version: tuple[int, int] = (4, 5),
        digest: str = "",
        exists: bool = True,
    ) -> None:
        super().__init__(path, nb, ids)
        self._version = version
        self._digest = digest
        self.exists = exists
        self._baseline = copy.deepcopy(list(nb.cells))
        self._baseline_ids = list(ids)

    @classmethod
    def open(cls, path: str | Path) -> DetachedNotebook:
        """The notebook at ``path`` as saved (:class:`NotebookError` when unreadable)."""
        from .file import FileNotebook

        doc = FileNotebook.open(path)
        digest = hashlib.sha256(doc.path.read_bytes()).hexdigest()
        copy = cls(doc.path, doc.nb, doc.ids, version=doc.version, digest=digest)
        copy.location = doc.location
        return copy

    @classmethod
    def empty(cls, path: Path) -> DetachedNotebook:
        """A working copy with no file behind it."""
        from .nbjson import new_notebook

        return cls(path, new_notebook(), [], exists=False)

    @property
    def version(self) -> tuple[int, int]:
        return self._version

    @property
    def writable(self) -> bool:
        return self._version[0] == 4

    def changed_on_disk(self) -> bool:
        """Whether the file was saved (by its owner) since it was read here."""
        if not self.exists:
            return False
        try:
            data = self.path.read_bytes()
        except OSError:
            return True
        return hashlib.sha256(data).hexdigest() != self._digest

    def changed_elsewhere(self) -> bool:
        # Undo restores the working copy only; the file is never written, so a newer file
        # is no conflict.
        return False

    async def _changed(self) -> None:
        return None

    async def save(self) -> bool:
        return False

    # -- proposals ----------------------------------------------------------------------------

    def pending_changes(self) -> list[dict[str, Any]]:
        return [
            {
                "cell_id": p.cell_id,
                "action": p.action,
                "cell_type": p.cell_type,
                "source": p.source,
                "old_digest": source_digest(p.old_source),
                "after": p.after,
            }
            for p in self.proposals()
        ]

    def reapply(self, changes: list[dict[str, Any]]) -> Reapplied:
        """Put stored proposals (:meth:`pending_changes` of an earlier working copy) into
        this one, where the file still holds what they change."""
        from .nbjson import new_cell

        result = Reapplied([], [], [])
        cells, ids = self._nb.cells, self._ids
        for change in changes:
            cid, action = str(change.get("cell_id", "")), change.get("action")
            source, kind = str(change.get("source", "")), str(change.get("cell_type", "code"))
            here = ids.index(cid) if cid in ids else None
            current = str(cells[here].get("source", "")) if here is not None else None
            if action == "insert":
                if here is not None:
                    (result.applied if current == source else result.dropped).append(cid)
                    continue
                after = change.get("after")
                at = 0 if after is None else ids.index(after) + 1 if after in ids else len(ids)
                cells.insert(at, new_cell(kind, source, cid if self.has_own_ids else None))
                ids.insert(at, cid)
            elif here is None:
                # Replaced or deleted: the cell is gone from the file.
                (result.applied if action == "delete" else result.dropped).append(cid)
                continue
            elif action == "replace" and current == source and cells[here].get("cell_type") == kind:
                result.applied.append(cid)
                continue
            elif source_digest(current or "") != change.get("old_digest"):
                result.dropped.append(cid)
                continue
            elif action == "delete":
                cells.pop(here)
                ids.pop(here)
            else:
                cell = cells[here]
                if cell.get("cell_type") != kind:
                    cells[here] = new_cell(kind, source, cid if self.has_own_ids else None)
                else:
                    cell["source"] = source
            result.restored.append(cid)
        return result

    def proposals(self) -> list[Proposal]:
        """The working copy's differences from the file as it was read: inserted, replaced
        (source or type) and deleted cells, in notebook order."""
        before = {cid: cell for cid, cell in zip(self._baseline_ids, self._baseline, strict=True)}
        found: list[Proposal] = []
        previous: str | None = None
        for position, (cid, cell) in enumerate(zip(self._ids, self._nb.cells, strict=True), 1):
            source = str(cell.get("source", ""))
            kind = str(cell.get("cell_type", "code"))
            old = before.get(cid)
            if old is None:
                found.append(Proposal(cid, "insert", kind, source, "", position, previous))
            elif str(old.get("source", "")) != source or old.get("cell_type") != kind:
                found.append(
                    Proposal(cid, "replace", kind, source, str(old.get("source", "")), position)
                )
            previous = cid
        kept = set(self._ids)
        for position, (cid, cell) in enumerate(
            zip(self._baseline_ids, self._baseline, strict=True), 1
        ):
            if cid not in kept:
                found.append(
                    Proposal(
                        cid,
                        "delete",
                        str(cell.get("cell_type", "code")),
                        "",
                        str(cell.get("source", "")),
                        position,
                    )
                )
        return found
