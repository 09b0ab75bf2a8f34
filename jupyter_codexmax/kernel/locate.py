"""Which notebook is this kernel running? Asked once per ``%%agent``, answered in order:

1. ``--notebook PATH`` (relative to the kernel's working folder);
2. ``__session__`` in the user's namespace or the ``JPY_SESSION_NAME`` environment variable,
   which Jupyter Server sets for kernels it starts (JupyterLab, Notebook 7): a path that may
   be absolute, or relative to the server's root (tried against the kernel's folder);
3. for kernels started by nbclient or papermill (which set neither): the only notebook in the
   kernel's working folder that holds the cell being run.

None when nothing matches: the agent then works without a notebook file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..workspace import absolute

__all__ = ["locate_notebook"]

#: Notebooks in the working folder scanned at most (a folder of thousands is not scanned).
MAX_SCANNED = 200


def locate_notebook(
    shell: Any, explicit: str | None = None, cell_source: str | None = None
) -> tuple[Path | None, str]:
    """(path, how it was found) or (None, why not)."""
    cwd = Path.cwd()
    if explicit:
        path = absolute(cwd / Path(explicit).expanduser())
        return path, "--notebook"
    names = []
    user_ns = getattr(shell, "user_ns", {}) or {}
    if isinstance(user_ns.get("__session__"), str):
        names.append(user_ns["__session__"])
    if os.environ.get("JPY_SESSION_NAME"):
        names.append(os.environ["JPY_SESSION_NAME"])
    for name in names:
        if not name.endswith(".ipynb"):
            continue
        candidate = Path(name).expanduser()
        for path in (candidate, cwd / candidate, cwd / candidate.name):
            if path.is_file():
                return absolute(path), "the Jupyter session"
    if cell_source:
        found = _holding(cwd, cell_source)
        if len(found) == 1:
            return found[0], "the only notebook here that holds this cell"
        if len(found) > 1:
            names_found = ", ".join(p.name for p in found[:4])
            return None, f"several notebooks here hold this cell ({names_found}); use --notebook"
    return None, "no notebook found (use --notebook PATH)"


def _holding(folder: Path, source: str) -> list[Path]:
    import json

    want = source.strip()
    found: list[Path] = []
    try:
        candidates = sorted(folder.glob("*.ipynb"))[:MAX_SCANNED]
    except OSError:
        return []
    for path in candidates:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        cells = data.get("cells") if isinstance(data, dict) else None
        for cell in cells or []:
            text = cell.get("source", "") if isinstance(cell, dict) else ""
            if isinstance(text, list):
                text = "".join(text)
            if isinstance(text, str) and text.strip() == want:
                found.append(absolute(path))
                break
    return found
