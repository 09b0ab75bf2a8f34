"""The review's inputs: paths checked and read (nothing is ever written), grouped into
units (one per notebook, one for all plain files), and with ``--base`` narrowed to what
changed. Also what the model is shown first: the code under review, with line numbers."""

from __future__ import annotations

from pathlib import Path

from ..errors import CodexmaxError
from ..workspace import Workspace
from .changes import GitBase, cell_changes, changed_lines
from .findings import FileInput, NotebookInput, Scope

__all__ = ["InputError", "open_scopes", "present"]

#: Characters of code put in the first message (the rest is read with the tools).
PRESENT_BUDGET = 60_000


class InputError(CodexmaxError):
    """A path that cannot be reviewed (exit 2)."""

    exit_code = 2


def _read(path: str) -> tuple[Path, bytes]:
    from ..fileio import NotRegularFile, read_regular

    target = Path(path).expanduser()
    if not target.exists():
        raise InputError(f"{path}: no such file")
    if target.is_dir():
        raise InputError(f"{path}: is a folder; give notebooks or files to review")
    try:
        return target, read_regular(target)
    except NotRegularFile as exc:
        raise InputError(f"{path}: is {exc.kind}, not a notebook or file") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from exc


def _text(path: str, raw: bytes) -> str:
    if b"\0" in raw[:8192]:
        raise InputError(f"{path}: is a binary file, not a notebook or text file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: is not UTF-8 text, not a notebook or text file") from exc


def open_scopes(
    paths: list[str], base_ref: str | None, workspace_root: str = ""
) -> tuple[list[Scope], GitBase | None]:
    """One :class:`Scope` per notebook and one for the files, checked and read, narrowed to
    what changed since ``base_ref``; :class:`InputError` or
    :class:`~.changes.BaseError` for the first path that cannot be used. With a base, units
    where nothing changed are left out."""
    from ..notebook.detached import DetachedNotebook
    from ..notebook.document import NotebookError

    read: list[tuple[str, Path, bytes]] = []
    seen: set[Path] = set()
    for path in paths:
        target, raw = _read(path)
        if target.resolve() not in seen:
            seen.add(target.resolve())
            read.append((path, target, raw))
    base = GitBase.find(base_ref, [t.resolve() for _, t, _ in read]) if base_ref else None
    first = read[0][1].resolve()
    root: str | Path | None = base.root if base else (workspace_root or None)
    workspace = Workspace.for_notebook(first, root)
    scopes: list[Scope] = []
    files = Scope(workspace, base=base_ref)
    for path, target, raw in read:
        resolved = target.resolve()
        if not workspace.contains(resolved):
            raise InputError(f"{path}: not inside the workspace {workspace.root}")
        name = workspace.relative(resolved)
        if target.suffix == ".ipynb":
            try:
                doc = DetachedNotebook.open(target)
            except NotebookError as exc:
                raise InputError(str(exc)) from exc
            notebook = NotebookInput(resolved, name, doc, raw)
            if base is not None and not _narrow_notebook(notebook, base):
                continue
            scopes.append(Scope(workspace, notebooks=[notebook], base=base_ref))
        else:
            item = FileInput(resolved, name, _text(path, raw))
            if base is not None and not _narrow_file(item, base):
                continue
            files.files.append(item)
    if files.files:
        scopes.append(files)
    return scopes, base


def _narrow_notebook(notebook: NotebookInput, base: GitBase) -> bool:
    """Mark the cells changed since the base; False when none did."""
    from ..notebook.file import read_notebook_bytes, session_ids

    doc = notebook.doc
    old = base.old_bytes(notebook.path)
    sources = [str(c.get("source", "")) for c in doc.cells]
    if old is None:
        notebook.reviewed = set(doc.ids)
        return bool(doc.ids)
    try:
        nb, _, version = read_notebook_bytes(notebook.path, old)
    except Exception:  # the base's copy is not a notebook: all of it is new
        notebook.reviewed = set(doc.ids)
        return bool(doc.ids)
    old_ids = session_ids(list(nb.cells), version >= (4, 5))
    old_sources = [str(c.get("source", "")) for c in nb.cells]
    changed, deleted, diffs = cell_changes(old_ids, old_sources, doc.ids, sources)
    notebook.reviewed, notebook.deleted, notebook.diffs = changed, deleted, diffs
    return bool(changed)


def _narrow_file(item: FileInput, base: GitBase) -> bool:
    if base.old_bytes(item.path) is None:
        return bool(item.text)  # new since the base: all of it is under review
    item.diff = base.diff(item.path)
    item.reviewed = changed_lines(item.diff)
    return bool(item.reviewed)


def _numbered(text: str) -> str:
    lines = text.splitlines() or [""]
    width = len(str(len(lines)))
    return "\n".join(f"{n:>{width}}| {line}" for n, line in enumerate(lines, 1))


def present(scope: Scope, commit: str = "", instructions: str = "") -> str:
    """The review's first message: what to review, and the code under review."""
    parts: list[str] = []
    since = f"{scope.base} ({commit[:12]})" if commit else str(scope.base)
    for notebook in scope.notebooks:
        doc = notebook.doc
        if notebook.reviewed is None:
            parts.append(
                f"Review the notebook {notebook.name} ({len(doc.cells)} cells). Every cell "
                "is under review. Its cells follow (ids, then sources with line numbers)."
            )
        elif not doc.cells or len(notebook.reviewed) == len(doc.cells):
            whole = "new since" if not notebook.diffs else "new or changed since"
            parts.append(
                f"Review the notebook {notebook.name} ({len(doc.cells)} cells), all of them "
                f"{whole} {since}: every cell is under review. Its cells follow (ids, then "
                "sources with line numbers)."
            )
        else:
            parts.append(
                f"Review the changes to the notebook {notebook.name} since {since}: "
                f"{len(notebook.reviewed)} of its {len(doc.cells)} cells are new or changed, "
                "shown below; only they are under review. The other cells did not change: "
                "read them (read_notebook) for context only; findings on them are refused."
            )
        if notebook.reviewed is not None and notebook.deleted:
            parts.append(f"Cells deleted since the base: {', '.join(notebook.deleted)}.")
        used = 0
        for index, cid in enumerate(doc.ids):
            if notebook.reviewed is not None and cid not in notebook.reviewed:
                continue
            cell = doc.cells[index]
            source = str(cell.get("source", ""))
            how = ""
            if notebook.reviewed is not None:
                how = ", changed" if cid in notebook.diffs else ", new"
            block = f"§{index + 1} cell {cid} ({cell.get('cell_type', 'code')}{how})\n"
            block += _numbered(source)
            if cid in notebook.diffs:
                block += f"\nChange since the base:\n{notebook.diffs[cid].rstrip()}"
            if used + len(block) > PRESENT_BUDGET:
                parts.append("(more cells under review: read them with read_notebook)")
                break
            used += len(block)
            parts.append(block)
    if scope.files:
        if scope.base is None:
            parts.append(f"Review the files: {', '.join(f.name for f in scope.files)}.")
        else:
            parts.append(
                f"Review the changes to these files since {since}: only the changed lines "
                "are under review (findings on other lines are refused)."
            )
        used = 0
        for item in scope.files:
            block = f"== {item.name} ({len(item.lines)} lines)\n"
            block += item.diff.rstrip() if item.diff else _numbered(item.text)
            if used + len(block) > PRESENT_BUDGET:
                parts.append(f"(more: read {item.name} and the rest with read_file)")
                break
            used += len(block)
            parts.append(block)
    if instructions.strip():
        parts.append(f"The reviewer asks you to focus on: {instructions.strip()}")
    return "\n\n".join(parts)
