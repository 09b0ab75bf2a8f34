"""The journal: every session's full transcript, as JSON lines, in the Jupyter data folder.

``<jupyter data dir>/codexmax/sessions/<session id>.jsonl``, one record a line:

- ``{"kind": "start", "session_id", "notebook", "model", ...}``
- ``{"kind": "items", "items": [...]}``: items added to the history, in order;
- ``{"kind": "replace", "items": [...], "reason"}``: the history after a compaction;
- ``{"kind": "turn", "turn": N, "status"}``: a turn ended (and the session was saved);
- ``{"kind": "usage", ...}``.

Each line carries ``"t"``, the time. The journal is for audit and for exact resume on the
same machine: :func:`history_at` replays it up to the last turn that was saved. The
notebook's metadata stays the portable source. Secrets are masked before anything is
written. ``CodexMax.journal = False`` turns it off.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import secrets
from ..providers.base import Item

__all__ = ["Journal", "history_at", "journal_path"]


def journal_folder() -> Path:
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "codexmax" / "sessions"


def journal_path(session_id: str) -> Path:
    return journal_folder() / f"{session_id}.jsonl"


class Journal:
    """Appends a session's records to its file (created on the first write)."""

    def __init__(self, session_id: str, path: Path | None = None) -> None:
        self.path = path or journal_path(session_id)
        self._ready = False

    def write(self, kind: str, **fields: Any) -> None:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._ready = True
        record = {"t": round(time.time(), 3), "kind": kind, **fields}
        line = secrets.redact(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


def _records(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                return  # a line cut by a crash: everything before it stands
            if isinstance(record, dict):
                yield record


def history_at(session_id: str, turns: int, path: Path | None = None) -> list[Item] | None:
    """The exact history after turn ``turns``, replayed from the journal; None when the
    journal is missing or does not reach that turn (then the notebook's record is used)."""
    source = path or journal_path(session_id)
    if not source.is_file():
        return None
    history: list[Item] = []
    at_turn: list[Item] | None = None
    try:
        for record in _records(source):
            kind = record.get("kind")
            if kind == "items":
                history.extend(record.get("items") or [])
            elif kind == "replace":
                history = list(record.get("items") or [])
            elif kind == "turn" and record.get("turn") == turns:
                at_turn = list(history)
    except OSError:
        return None
    return at_turn
