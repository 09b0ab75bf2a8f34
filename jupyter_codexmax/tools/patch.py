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

Hunks are found by their context and removed lines, not by line numbers: first exactly,
then ignoring trailing whitespace, then ignoring all surrounding whitespace; the text after
``@@`` (if any) names a line to find first; ``*** End of File`` pins a hunk to the end.
Everything is checked before anything is written, so a patch applies whole or not at all.
Notebooks are not patched as JSON: ``edit_notebook`` changes cells.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..events import FileChanged
from ..workspace import PathError, Workspace
from .registry import Access, Tool, ToolContext, ToolError, ToolResult

__all__ = ["ApplyPatch", "FileChange", "apply_patch_text", "parse_patch"]


@dataclass
class Chunk:
    header: str | None
    #: The hunk's lines in order: (" " context, "-" removed, "+" added, text).
    lines: list[tuple[str, str]] = field(default_factory=list)
    at_end: bool = False

    @property
    def old(self) -> list[str]:
        return [text for marker, text in self.lines if marker != "+"]

    @property
    def new(self) -> list[str]:
        return [text for marker, text in self.lines if marker != "-"]


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


def parse_patch(text: str) -> list[FileOp]:
    """The file operations of a patch, or :class:`ToolError` saying what is wrong where."""
    lines = text.strip("\n").splitlines()
    # Tolerate a patch wrapped in a heredoc (``apply_patch <<'EOF' ... EOF``).
    while lines and not lines[0].strip().startswith("*** Begin Patch"):
        if lines[0].strip().startswith("***"):
            break
        lines.pop(0)
    if not lines or lines[0].strip() != "*** Begin Patch":
        raise ToolError("the patch must start with '*** Begin Patch'")
    end = next(
        (i for i in range(len(lines) - 1, 0, -1) if lines[i].strip() == "*** End Patch"), None
    )
    if end is None:
        raise ToolError("the patch must end with '*** End Patch'")
    body = lines[1:end]
    ops: list[FileOp] = []
    i = 0
    while i < len(body):
        line = body[i]
        if line.startswith("*** Add File: "):
            op = FileOp("add", line[len("*** Add File: ") :].strip())
            i += 1
            while i < len(body) and not body[i].startswith("*** "):
                if not body[i].startswith("+"):
                    raise ToolError(
                        f"Add File {op.path}: every line must start with '+' "
                        f"(line {i + 2} of the patch)"
                    )
                op.content.append(body[i][1:])
                i += 1
            ops.append(op)
        elif line.startswith("*** Delete File: "):
            ops.append(FileOp("delete", line[len("*** Delete File: ") :].strip()))
            i += 1
        elif line.startswith("*** Update File: "):
            op = FileOp("update", line[len("*** Update File: ") :].strip())
            i += 1
            if i < len(body) and body[i].startswith("*** Move to: "):
                op.move_to = body[i][len("*** Move to: ") :].strip()
                i += 1
            chunk: Chunk | None = None
            while i < len(body) and not (
                body[i].startswith("*** ") and not body[i].startswith("*** End of File")
            ):
                current = body[i]
                if current.startswith("@@"):
                    chunk = Chunk(current[2:].strip() or None)
                    op.chunks.append(chunk)
                elif current.startswith("*** End of File"):
                    if chunk is None:
                        raise ToolError(f"Update File {op.path}: '*** End of File' before any hunk")
                    chunk.at_end = True
                else:
                    if chunk is None:
                        chunk = Chunk(None)
                        op.chunks.append(chunk)
                    marker, rest = (current[:1], current[1:]) if current else (" ", "")
                    if marker in (" ", "-", "+"):
                        chunk.lines.append((marker, rest))
                    else:
                        raise ToolError(
                            f"Update File {op.path}: line {i + 2} of the patch starts with "
                            f"{marker!r}; hunk lines start with ' ', '-' or '+'"
                        )
                i += 1
            if not op.chunks and not op.move_to:
                raise ToolError(f"Update File {op.path}: no hunks")
            ops.append(op)
        elif not line.strip():
            i += 1
        else:
            raise ToolError(
                f"line {i + 2} of the patch: expected '*** Add File:', "
                f"'*** Update File:' or '*** Delete File:', got {line[:60]!r}"
            )
    if not ops:
        raise ToolError("the patch changes no files")
    return ops


_PUNCTUATION = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u00a0": " ",
        "\u2212": "-",
    }
)


def _find(lines: list[str], wanted: list[str], start: int, at_end: bool) -> int | None:
    """Where ``wanted`` occurs in ``lines`` (from ``start``), matching ever more loosely."""
    if not wanted:
        return len(lines) if at_end else start
    normalizers = (
        lambda s: s,
        str.rstrip,
        str.strip,
        lambda s: s.strip().translate(_PUNCTUATION),
    )
    for normal in normalizers:
        want = [normal(w) for w in wanted]
        last = len(lines) - len(wanted)
        positions = range(last, start - 1, -1) if at_end else range(start, last + 1)
        for i in positions:
            if all(normal(lines[i + j]) == want[j] for j in range(len(want))):
                return i
    return None


def _update(path: str, text: str, op: FileOp) -> str:
    crlf = "\r\n" in text
    trailing = text.endswith(("\n", "\r\n"))
    lines = text.replace("\r\n", "\n").split("\n")
    if trailing:
        lines.pop()
    cursor = 0
    for number, chunk in enumerate(op.chunks, 1):
        where = f"{path}, hunk {number}"
        if chunk.header:
            found = _find(lines, [chunk.header], cursor, False)
            if found is None:
                raise ToolError(
                    f"{where}: the line after '@@' ({chunk.header!r}) is not in the file"
                )
            # The hunk follows the named line, or starts with it.
            starts_with_it = bool(chunk.old) and chunk.old[0].strip() == chunk.header.strip()
            cursor = found if starts_with_it else found + 1
        index = _find(lines, chunk.old, cursor, chunk.at_end)
        if index is None:
            expected = "\n".join(chunk.old[:8])
            raise ToolError(
                f"{where}: these lines are not in the file (read it again and "
                f"copy them exactly):\n{expected}"
            )
        # Context lines keep the file's own text: a loose match (other indentation,
        # trailing space) must not rewrite lines the patch did not mean to change.
        replacement: list[str] = []
        position = index
        for marker, line in chunk.lines:
            if marker == " ":
                replacement.append(lines[position])
                position += 1
            elif marker == "-":
                position += 1
            else:
                replacement.append(line)
        lines[index : index + len(chunk.old)] = replacement
        cursor = index + len(replacement)
    result = "\n".join(lines) + ("\n" if trailing or not lines else "")
    return result.replace("\n", "\r\n") if crlf else result


def _diff(name: str, before: str, after: str) -> str:
    """A unified diff, marking a last line without a newline as ``diff -u`` does."""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{name}",
        tofile=f"b/{name}",
        n=2,
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def apply_patch_text(workspace: Workspace, text: str) -> list[FileChange]:
    """Check a patch against the files and compute every change; writes nothing."""
    changes: list[FileChange] = []
    for op in parse_patch(text):
        try:
            path = workspace.resolve(op.path)
        except PathError as exc:
            raise ToolError(str(exc)) from exc
        name = workspace.relative(path)
        if path.suffix == ".ipynb":
            raise ToolError(f"{name}: notebooks are changed with edit_notebook, not patched")
        if op.kind == "add":
            if path.exists():
                raise ToolError(f"{name} already exists; use '*** Update File:'")
            content = "\n".join(op.content) + "\n"
            changes.append(FileChange(path, None, content.encode(), diff=_diff(name, "", content)))
            continue
        if not path.is_file():
            raise ToolError(f"{name}: no such file")
        before = path.read_bytes()
        if op.kind == "delete":
            changes.append(
                FileChange(
                    path, before, None, diff=_diff(name, before.decode("utf-8", "replace"), "")
                )
            )
            continue
        try:
            old_text = before.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ToolError(f"{name} is not UTF-8 text; it cannot be patched") from exc
        new_text = _update(name, old_text, op) if op.chunks else old_text
        new_path = None
        if op.move_to:
            try:
                new_path = workspace.resolve(op.move_to)
            except PathError as exc:
                raise ToolError(str(exc)) from exc
            if new_path.exists() and new_path != path:
                raise ToolError(f"{workspace.relative(new_path)} already exists")
            if new_path.suffix == ".ipynb":
                raise ToolError(
                    f"{workspace.relative(new_path)}: a file cannot be moved onto a notebook; "
                    "notebooks are changed with edit_notebook"
                )
        changes.append(
            FileChange(path, before, new_text.encode(), new_path, _diff(name, old_text, new_text))
        )
    return changes


def write_changes(changes: list[FileChange]) -> None:
    """Write computed changes; if one fails, undo the ones already written."""
    from ..notebook.file import atomic_write

    done: list[FileChange] = []
    try:
        for change in changes:
            target = change.new_path or change.path
            if change.after is None:
                change.path.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(target, change.after)
                if change.new_path and change.new_path != change.path:
                    change.path.unlink()
            done.append(change)
    except OSError as exc:
        for change in reversed(done):
            if change.new_path and change.new_path != change.path:
                change.new_path.unlink(missing_ok=True)
            if change.before is None:
                change.path.unlink(missing_ok=True)
            else:
                atomic_write(change.path, change.before)
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
        write_changes(changes)
        diffs = ctx.state.setdefault("file_diffs", [])
        diffs.extend(c.diff for c in changes if c.diff)
        touched = ctx.state.setdefault("files_touched", set())
        touched.update(ctx.workspace.relative(c.new_path or c.path) for c in changes)
        for change in changes:
            where = ctx.workspace.relative(change.new_path or change.path)
            ctx.emit(FileChanged(where, change.action, change.diff))
        return ToolResult("\n".join(names), "; ".join(names))
