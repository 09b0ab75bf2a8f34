"""``apply_patch``: add, update, delete and move files with a patch in the Codex format.

::

    *** Begin Patch
    *** Add File: src/new.py
    +print("hello")
    *** Update File: src/old.py
    *** Move to: src/renamed.py
    @@ def main():
    -    print("old")
    +    print("new")
    *** Delete File: src/gone.py
    *** End Patch

The format and the matching follow the Codex CLI's ``apply_patch`` (codex-rs/apply-patch);
docs/agent.md lists where this tool deliberately differs. The patch is parsed here and its
hunks are placed by :mod:`._hunks`. Everything is checked before anything is written, so a
patch applies whole or not at all. Notebooks are not patched as JSON: ``edit_notebook``
changes cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..diffs import unified_diff
from ..events import FileChanged
from ..workspace import PathError, Workspace
from ._hunks import Chunk, update_text
from .registry import Access, Tool, ToolContext, ToolError, ToolResult

__all__ = ["ApplyPatch", "FileChange", "apply_patch_text", "parse_patch"]

BEGIN, END, END_OF_FILE = "*** Begin Patch", "*** End Patch", "*** End of File"
ADD, DELETE, UPDATE, MOVE = "*** Add File:", "*** Delete File:", "*** Update File:", "*** Move to:"


@dataclass
class FileOp:
    kind: str  # add, update, delete
    path: str
    move_to: str | None = None
    content: list[str] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)


@dataclass
class FileChange:
    """One file's change, computed and checked, not yet written."""

    path: Path
    before: bytes | None
    after: bytes | None
    new_path: Path | None = None
    diff: str = ""

    @property
    def action(self) -> Literal["added", "updated", "deleted", "moved"]:
        if self.before is None:
            return "added"
        if self.after is None:
            return "deleted"
        if self.new_path and self.new_path != self.path:
            return "moved"
        return "updated"


def _after(line: str, marker: str) -> str | None:
    """The path after a file marker (``*** Add File: x``), spaces around it ignored."""
    text = line.strip()
    return text[len(marker) :].strip() if text.startswith(marker) else None


def parse_patch(text: str) -> list[FileOp]:
    """The file operations of a patch, or :class:`ToolError` saying what is wrong where."""
    # Lines end at "\n" only (a "\r" before it is dropped): a form feed or U+2028 inside a
    # line is text, as in the Codex parser, not a line break as str.splitlines has it.
    lines = [line.removesuffix("\r") for line in text.strip().split("\n")]
    # Tolerate a patch wrapped in a heredoc (``apply_patch <<'EOF' ... EOF``).
    start = 0
    while start < len(lines) and not lines[start].strip().startswith("***"):
        start += 1
    if start == len(lines) or lines[start].strip() != BEGIN:
        raise ToolError(f"the patch must start with '{BEGIN}'")
    end = next((i for i in range(len(lines) - 1, start, -1) if lines[i].strip() == END), None)
    if end is None:
        raise ToolError(f"the patch must end with '{END}'")
    parser = _Parser(lines, start + 1, end)
    ops = parser.parse()
    if not ops:
        raise ToolError("the patch changes no files")
    return ops


class _Parser:
    """Reads the lines between ``*** Begin Patch`` and ``*** End Patch``."""

    def __init__(self, lines: list[str], start: int, end: int) -> None:
        self.lines, self.i, self.end = lines, start, end

    def where(self, i: int | None = None) -> str:
        return f"line {(self.i if i is None else i) + 1} of the patch"

    def parse(self) -> list[FileOp]:
        ops: list[FileOp] = []
        while self.i < self.end:
            line = self.lines[self.i]
            if (path := _after(line, ADD)) is not None:
                ops.append(self.add(self.named(path, "Add File")))
            elif (path := _after(line, DELETE)) is not None:
                ops.append(FileOp("delete", self.named(path, "Delete File")))
                self.i += 1
            elif (path := _after(line, UPDATE)) is not None:
                ops.append(self.update(self.named(path, "Update File")))
            elif not line.strip():
                self.i += 1
            else:
                raise ToolError(
                    f"{self.where()}: expected '*** Add File:', '*** Update File:' or "
                    f"'*** Delete File:', got {line[:60]!r}"
                )
        return ops

    def named(self, path: str, what: str) -> str:
        if not path:
            raise ToolError(f"{self.where()}: '*** {what}:' needs a path")
        return path

    def add(self, path: str) -> FileOp:
        op = FileOp("add", path)
        blank: list[str] = []  # blank lines are kept only if more '+' lines follow
        self.i += 1
        while self.i < self.end:
            line = self.lines[self.i]
            if line.startswith("+"):
                op.content.extend(blank)
                op.content.append(line[1:])
                blank = []
            elif not line.strip():
                blank.append("")
            elif line.lstrip().startswith("***"):
                break
            else:
                raise ToolError(
                    f"Add File {path}: every line must start with '+' ({self.where()} "
                    f"does not: {line[:60]!r})"
                )
            self.i += 1
        return op

    def update(self, path: str) -> FileOp:
        op = FileOp("update", path)
        self.i += 1
        chunk: Chunk | None = None  # the hunk taking lines
        contexts: list[str] | None = None  # '@@' lines read for the next hunk
        opened = self.i
        while self.i < self.end:
            line = self.lines[self.i]
            move = _after(line, MOVE) if not op.chunks and contexts is None else None
            if move is not None and op.move_to is None:  # before the first hunk
                op.move_to = self.named(move, "Move to")
            elif line.startswith("@@"):
                if contexts is None:
                    contexts, opened = [], self.i
                rest = line[2:]
                header = (rest[1:] if rest.startswith(" ") else rest).rstrip()
                if header.strip():
                    contexts.append(header)
                chunk = None
            elif line[:1] not in ("+", "-", " ") and line.strip() == END_OF_FILE:
                if chunk is None:
                    raise self.empty(path, self.i if contexts is None else opened)
                chunk.at_end, chunk = True, None
            elif line[:1] in ("+", "-", " ") or not line.strip():
                if chunk is None and contexts is None:
                    if not line.strip():
                        self.i += 1  # a blank line between hunks
                        continue
                    if line.lstrip().startswith("***"):
                        break  # an indented marker: no hunk is open for a context line
                if chunk is None:
                    chunk = Chunk(contexts or [])
                    op.chunks.append(chunk)
                    contexts = None
                marker, text = (line[0], line[1:]) if line[:1] in ("+", "-", " ") else (" ", "")
                chunk.lines.append((marker, text))
            elif line.lstrip().startswith("***"):
                break
            else:
                raise ToolError(
                    f"Update File {path}: {self.where()} starts with {line[:1]!r}; hunk lines "
                    "start with ' ', '-' or '+'"
                )
            self.i += 1
        if contexts is not None:
            raise self.empty(path, opened)
        for found in op.chunks:
            if not found.core:
                raise ToolError(f"Update File {path}: a hunk has only blank lines; nothing to do")
        if not op.chunks and not op.move_to:
            raise ToolError(f"Update File {path}: no hunks")
        return op

    def empty(self, path: str, at: int) -> ToolError:
        return ToolError(
            f"Update File {path}: the hunk at {self.where(at)} has no lines; give the lines "
            "to change (' ' context, '-' removed, '+' added)"
        )


def _diff(name: str, before: str, after: str) -> str:
    """A unified diff, marking a last line without a newline as ``diff -u`` does."""
    return unified_diff(before, after, fromfile=f"a/{name}", tofile=f"b/{name}", mark_eof=True)


class _Files:
    """The workspace's files as the patch has left them so far (nothing written)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.pending: dict[Path, bytes | None] = {}

    def resolve(self, raw: str) -> tuple[Path, str]:
        from ..sandbox import is_protected

        try:
            path = self.workspace.resolve(raw)
        except PathError as exc:
            raise ToolError(str(exc)) from exc
        name = self.workspace.relative(path)
        reason = is_protected(path, self.workspace)
        if reason:
            raise ToolError(f"{name}: {reason}; the patch was not applied")
        return path, name

    def exists(self, path: Path) -> bool:
        return self.pending[path] is not None if path in self.pending else path.exists()

    def read(self, path: Path, name: str) -> bytes:
        if path in self.pending:
            data = self.pending[path]
            if data is None:
                raise ToolError(f"{name}: no such file (an earlier part of the patch removed it)")
            return data
        if path.is_dir():
            raise ToolError(f"{name} is a folder, not a file")
        if not path.is_file():
            raise ToolError(f"{name}: no such file")
        return path.read_bytes()


def apply_patch_text(workspace: Workspace, text: str) -> list[FileChange]:
    """Check a patch against the files and compute every change; writes nothing.

    Operations apply in order, so a later one sees what an earlier one did to a file.
    """
    files = _Files(workspace)
    changes: list[FileChange] = []
    for op in parse_patch(text):
        path, name = files.resolve(op.path)
        if path.suffix == ".ipynb":
            raise ToolError(f"{name}: notebooks are changed with edit_notebook, not patched")
        if op.kind == "add":
            if files.exists(path):
                raise ToolError(f"{name} already exists; use '*** Update File:'")
            content = "".join(line + "\n" for line in op.content)
            change = FileChange(path, None, content.encode(), diff=_diff(name, "", content))
            files.pending[path] = change.after
            changes.append(change)
            continue
        before = files.read(path, name)
        if op.kind == "delete":
            old = before.decode("utf-8", "replace")
            changes.append(FileChange(path, before, None, diff=_diff(name, old, "")))
            files.pending[path] = None
            continue
        try:
            old_text = before.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ToolError(f"{name} is not UTF-8 text; it cannot be patched") from exc
        new_text = update_text(name, old_text, op.chunks) if op.chunks else old_text
        new_path = None
        if op.move_to:
            new_path, new_name = files.resolve(op.move_to)
            if new_path.suffix == ".ipynb":
                raise ToolError(
                    f"{new_name}: a file cannot be moved onto a notebook; "
                    "notebooks are changed with edit_notebook"
                )
            if new_path != path and files.exists(new_path):
                raise ToolError(f"{new_name} already exists")
        after = new_text.encode()
        changes.append(FileChange(path, before, after, new_path, _diff(name, old_text, new_text)))
        if new_path is not None and new_path != path:
            files.pending[path] = None
            files.pending[new_path] = after
        else:
            files.pending[path] = after
    return changes


def write_changes(root: Path, changes: list[FileChange]) -> None:
    """Write computed changes inside ``root`` (never through a link swapped in since the
    paths were checked, never past the user's permissions); if one fails, undo the ones
    already written."""
    from ..safefs import remove_inside, write_inside

    done: list[FileChange] = []
    try:
        for change in changes:
            target = change.new_path or change.path
            if change.after is None:
                remove_inside(root, change.path)
            else:
                write_inside(root, target, change.after)
                if change.new_path and change.new_path != change.path:
                    try:
                        remove_inside(root, change.path)
                    except OSError:
                        # A move half done (the old file cannot go): take the new one back.
                        remove_inside(root, change.new_path, missing_ok=True)
                        raise
            done.append(change)
    except OSError as exc:
        for change in reversed(done):
            if change.new_path and change.new_path != change.path:
                remove_inside(root, change.new_path, missing_ok=True)
            if change.before is None:
                remove_inside(root, change.path, missing_ok=True)
            else:
                write_inside(root, change.path, change.before)
        raise ToolError(
            f"could not write {exc.filename or ''}: {exc.strerror or exc}; nothing was changed"
        ) from exc


class ApplyPatch(Tool):
    name = "apply_patch"
    description = (
        "Add, update, delete or move workspace files (not notebooks). Format:\n"
        "*** Begin Patch\n*** Add File: path\n+line\n*** Update File: path\n"
        "[*** Move to: new/path]\n@@ [a line to find first]\n context\n-old\n+new\n"
        "*** Delete File: path\n*** End Patch\n"
        "Hunks match by context (3 lines around each change), not line numbers. All or "
        "nothing."
    )
    parameters = {
        "type": "object",
        "properties": {"patch": {"type": "string"}},
        "required": ["patch"],
        "additionalProperties": False,
    }
    access: Access = "write"

    def summarize(self, args: dict[str, Any]) -> str:
        try:
            ops = parse_patch(str(args.get("patch", "")))
        except ToolError:
            return "apply_patch"
        return "apply_patch " + ", ".join(f"{o.kind} {o.path}" for o in ops[:4])

    def approval_detail(self, ctx: ToolContext, args: dict[str, Any]) -> str:
        return str(args.get("patch", ""))

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        changes = apply_patch_text(ctx.workspace, args["patch"])
        names = []
        for change in changes:
            name = ctx.workspace.relative(change.path)
            if change.action == "moved" and change.new_path is not None:
                names.append(f"moved {name} to {ctx.workspace.relative(change.new_path)}")
            elif change.action == "updated":
                lines = change.diff.splitlines()
                added = sum(1 for ln in lines if ln.startswith("+") and not ln.startswith("+++"))
                removed = sum(1 for ln in lines if ln.startswith("-") and not ln.startswith("---"))
                names.append(f"updated {name} (+{added} -{removed})")
            else:
                names.append(f"{change.action} {name}")
        if ctx.propose_only:
            diffs = "\n".join(c.diff for c in changes)
            return ToolResult(
                "PROPOSED, not applied (approval level read-only):\n" + diffs,
                "proposed: " + "; ".join(names),
            )
        for change in changes:
            ctx.before_file_change(change.path)
            if change.new_path:
                ctx.before_file_change(change.new_path)
        write_changes(ctx.workspace.root, changes)
        diffs = ctx.state.setdefault("file_diffs", [])
        diffs.extend(c.diff for c in changes if c.diff)
        touched = ctx.state.setdefault("files_touched", set())
        touched.update(ctx.workspace.relative(c.new_path or c.path) for c in changes)
        for change in changes:
            where = ctx.workspace.relative(change.new_path or change.path)
            ctx.emit(FileChanged(where, change.action, change.diff))
        return ToolResult("\n".join(names), "; ".join(names))
