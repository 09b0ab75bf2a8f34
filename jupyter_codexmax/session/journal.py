"""The journal: every session's full transcript, as JSON lines, in the Jupyter data folder.

``<jupyter data dir>/codexmax/sessions/<session id>.jsonl``, one record a line:

- ``{"kind": "start", "session_id", "notebook", "model", ...}``
- ``{"kind": "items", "items": [...]}``: items added to the history, in order;
- ``{"kind": "replace", "items": [...], "reason"}``: the history after a compaction;
- ``{"kind": "turn", "turn": N, "status", "record"}``: a turn ended and the session was
  saved; ``record`` is the saved record's digest, so a resume replays only the history of
  the very record it resumes (a copied notebook has the same session id, not the same
  history).

Each line carries ``"t"``, the time. The journal is for audit and for exact resume on the
same machine: :func:`history_at` replays it up to the last turn that was saved. The
notebook's metadata stays the portable source. Beside the journals, ``notebooks/`` keeps
each notebook's latest record on this machine (:func:`remember_notebook`), for sessions
whose notebook was not written: a kernel's, a read-only run's. Secrets are masked before
anything is written. ``CodexMax.journal = False`` turns both off.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import secrets
from ..providers.base import Item

__all__ = [
    "MACHINE",
    "Journal",
    "history_at",
    "journal_path",
    "kept_here",
    "recall_notebook",
    "remember_notebook",
]

#: Where a record kept by :func:`remember_notebook` is said to be.
MACHINE = "this machine's journal"


def journal_folder() -> Path:
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "codexmax" / "sessions"


def journal_path(session_id: str) -> Path:
    return journal_folder() / f"{session_id}.jsonl"


def _index_path(notebook: Path) -> Path:
    import hashlib

    key = hashlib.sha256(str(notebook.resolve()).encode("utf-8")).hexdigest()[:24]
    return journal_folder().parent / "notebooks" / f"{key}.json"


#: Cell ids kept with a notebook's record, to know the notebook again.
KEPT_CELL_IDS = 200


def remember_notebook(notebook: Path, record: dict[str, Any], cells: Sequence[str] = ()) -> None:
    """Keep ``notebook``'s latest record on this machine: where its session is when the
    notebook was not written (a kernel never writes it; a read-only run neither; an old
    nbformat is never rewritten), for the next ``%%agent`` or run to continue. ``cells``:
    the notebook's cell ids, by which :func:`recall_notebook` knows it is the same one."""
    from ..safefs import atomic_write

    path = _index_path(notebook)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "notebook": str(notebook.resolve()),
        "cells": list(cells)[:KEPT_CELL_IDS],
        "record": record,
    }
    atomic_write(path, json.dumps(data, ensure_ascii=False).encode("utf-8"))


def recall_notebook(notebook: Path, cells: Sequence[str] | None = None) -> dict[str, Any] | None:
    """The record :func:`remember_notebook` kept for ``notebook``, if any. ``cells``: the
    notebook's cell ids now: a notebook that shares none with the one the record was kept
    for is another notebook at the same path (deleted and made anew), whose session is its
    own."""
    try:
        data = json.loads(_index_path(notebook).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("notebook") != str(notebook.resolve()):
        return None
    kept = data.get("cells")
    if cells is not None and isinstance(kept, list) and kept and not set(kept) & set(cells):
        return None
    record = data.get("record")
    return record if isinstance(record, dict) else None


def kept_here(notebook: Path, cells: Sequence[str] | None = None) -> list[tuple[str, Any]]:
    """The record this machine keeps for ``notebook``, as an extra source for
    :func:`..store.latest_record` (an empty list when there is none)."""
    record = recall_notebook(notebook, cells)
    return [(MACHINE, record)] if record is not None else []


class Journal:
    """Appends a session's records to its file (created on the first write)."""

    def __init__(
        self, session_id: str, path: Path | None = None, *, secret_values: list[str] | None = None
    ) -> None:
        self.path = path or journal_path(session_id)
        self._ready = False
        #: Values to mask besides the registered secrets (the environment's credentials).
        self.secret_values = list(secret_values or [])
        #: Why the journal stopped being written (None while it is written).
        self.failed: str | None = None

    def write(self, kind: str, **fields: Any) -> None:
        """Append one record. A journal that cannot be written (a full disk, a read-only
        data folder) stops writing and says why in :attr:`failed`: the session goes on."""
        if self.failed is not None:
            return
        try:
            self._write(kind, fields)
        except OSError as exc:
            self.failed = f"{self.path}: {exc.strerror or exc}"

    def _write(self, kind: str, fields: dict[str, Any]) -> None:
        start = ""
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._ready = True
            start = "\n" if _ends_mid_line(self.path) else ""  # a process killed mid-write
        record = secrets.redact_value(
            {"t": round(time.time(), 3), "kind": kind, **fields}, self.secret_values
        )
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(start)
            f.write(line + "\n")
            f.flush()
            if kind != "items":  # the turn's end and full histories are what resume relies on
                os.fsync(f.fileno())


def _ends_mid_line(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except OSError:
        return False


_KIND = re.compile(rb'"kind":"(\w+)"')


def _kind(line: bytes) -> bytes | None:
    """A record's kind, read from the start of its line without parsing it (every record is
    written ``{"t":...,"kind":"...",...}``)."""
    match = _KIND.search(line, 0, 64)
    return match.group(1) if match else None


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def history_at(
    session_id: str, turns: int, digest: str | None = None, path: Path | None = None
) -> list[Item] | None:
    """The exact history after turn ``turns`` (whose saved record had ``digest``), replayed
    from the journal; None when the journal is missing, holds no such turn (another copy of
    the notebook went on from the same session), or is damaged between the last full history
    it wrote and that turn (then the notebook's record is used).

    Only the lines from the last ``replace`` before the turn's end are parsed, so a long
    session resumes as fast as a short one."""
    source = path or journal_path(session_id)
    try:
        lines = source.read_bytes().split(b"\n")
    except OSError:
        return None
    end = None
    for index in range(len(lines) - 1, -1, -1):
        if _kind(lines[index]) == b"turn":
            record = _parse(lines[index])
            if (
                record is not None
                and record.get("turn") == turns
                and (digest is None or record.get("record") == digest)
            ):
                end = index
                break
    if end is None:
        return None
    start = 0
    for index in range(end - 1, -1, -1):
        if _kind(lines[index]) == b"replace":
            start = index
            break
    history: list[Item] | None = []
    for line in lines[start:end]:
        if not line.strip():
            continue
        kind = _kind(line)
        if kind not in (b"items", b"replace"):
            continue
        record = _parse(line)
        if record is None:  # a line cut by a crash: unknown until the next full history
            history = None
        elif kind == b"replace":
            history = list(record.get("items") or [])
        elif history is not None:
            history.extend(record.get("items") or [])
    return history
