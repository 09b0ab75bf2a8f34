"""File tools: list, search and read files inside the workspace."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Any

from ..workspace import SKIPPED_DIRS, PathError, Workspace
from .registry import Tool, ToolContext, ToolError, ToolResult

__all__ = ["ListFiles", "ReadFile", "SearchFiles"]

MAX_LIST = 300
MAX_MATCHES = 200
MAX_READ_LINES = 2_000
MAX_READ_CHARS = 60_000
MAX_SEARCH_FILE = 4 * 1024 * 1024


def _is_binary(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return b"\0" in f.read(8192)
    except OSError:
        return True


def _walk(root: Path, glob: str | None, workspace: Workspace) -> list[Path]:
    """Files under ``root`` (skipping caches, VCS and environment folders), sorted. A
    symlink whose target is outside the workspace is left out, as if it were not there."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            path = Path(folder) / name
            if path.is_symlink() and not workspace.contains(path.resolve()):
                continue
            if glob:
                rel = path.relative_to(root).as_posix()
                if not (fnmatch.fnmatch(rel, glob) or fnmatch.fnmatch(name, glob)):
                    continue
            found.append(path)
    return found


class ListFiles(Tool):
    name = "list_files"
    description = (
        "List files under a folder of the workspace (recursively; caches, .git and "
        "environments skipped). Optional glob filter, e.g. '*.py' or 'data/*.csv'."
    )
    parameters = {
        "type": "object",
        "properties": {"path": {"type": "string"}, "glob": {"type": "string"}},
        "additionalProperties": False,
    }

    def summarize(self, args: dict[str, Any]) -> str:
        return f"list_files {args.get('path', '.')} {args.get('glob', '')}".strip()

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        ws = ctx.workspace
        try:
            root = ws.resolve(args.get("path") or ".", must_exist=True)
        except PathError as exc:
            raise ToolError(str(exc)) from exc
        if root.is_file():
            return ToolResult(f"{ws.relative(root)} ({root.stat().st_size:,} bytes)", "1 file")
        files = _walk(root, args.get("glob"), ws)
        lines = []
        for path in files[:MAX_LIST]:
            try:
                size = path.stat().st_size
            except OSError:
                continue
            lines.append(f"{ws.relative(path)}  {size:,}")
        more = (
            f"\n... {len(files) - MAX_LIST} more; narrow with path or glob"
            if len(files) > MAX_LIST
            else ""
        )
        return ToolResult("\n".join(lines) + more if lines else "(no files)", f"{len(files)} files")


class SearchFiles(Tool):
    name = "search_files"
    description = (
        "Search file contents in the workspace: a plain text (or regex=true) pattern, "
        "case-insensitive unless case_sensitive=true. Notebooks are searched cell by cell. "
        "Returns path:line: text."
    )
    parameters = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string"},
            "path": {"type": "string"},
            "glob": {"type": "string"},
            "regex": {"type": "boolean"},
            "case_sensitive": {"type": "boolean"},
        },
        "required": ["pattern"],
        "additionalProperties": False,
    }

    def summarize(self, args: dict[str, Any]) -> str:
        return f"search_files {args.get('pattern', '')!r}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        ws = ctx.workspace
        flags = 0 if args.get("case_sensitive") else re.IGNORECASE
        pattern = args["pattern"]
        try:
            regex = re.compile(pattern if args.get("regex") else re.escape(pattern), flags)
        except re.error as exc:
            raise ToolError(f"the pattern is not a valid regular expression: {exc}") from exc
        try:
            root = ws.resolve(args.get("path") or ".", must_exist=True)
        except PathError as exc:
            raise ToolError(str(exc)) from exc
        files = [root] if root.is_file() else _walk(root, args.get("glob"), ws)
        matches: list[str] = []
        total = 0
        for path in files:
            try:
                if path.stat().st_size > MAX_SEARCH_FILE or _is_binary(path):
                    continue
            except OSError:
                continue
            for where, text in _searchable(path):
                for number, line in enumerate(text.splitlines(), 1):
                    if regex.search(line):
                        total += 1
                        if len(matches) < MAX_MATCHES:
                            shown = line if len(line) <= 300 else line[:300] + "..."
                            matches.append(f"{ws.relative(path)}{where}:{number}: {shown}")
        if not matches:
            return ToolResult("no matches", "0 matches")
        more = f"\n... {total - MAX_MATCHES} more matches" if total > MAX_MATCHES else ""
        return ToolResult(ctx.redact("\n".join(matches) + more), f"{total} matches")


def _searchable(path: Path) -> list[tuple[str, str]]:
    """(location suffix, text) pairs: a notebook's cell sources, or the whole file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    if path.suffix == ".ipynb":
        import json

        try:
            nb = json.loads(text)
            cells = nb.get("cells") if isinstance(nb, dict) else None
            if isinstance(cells, list):
                out = []
                for number, cell in enumerate(cells, 1):
                    if not isinstance(cell, dict):
                        continue
                    source = cell.get("source", "")
                    source = "".join(source) if isinstance(source, list) else str(source)
                    cid = cell.get("id") or f"c{number}"
                    out.append((f"#{cid}", source))
                return out
        except ValueError:
            pass
    return [("", text)]


class ReadFile(Tool):
    name = "read_file"
    description = (
        "Read a file in the workspace, with line numbers; start_line/end_line (1-based, "
        "inclusive) for part of it. A notebook (.ipynb) is shown as its cells."
    )
    parameters = {
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "start_line": {"type": "integer"},
            "end_line": {"type": "integer"},
        },
        "required": ["path"],
        "additionalProperties": False,
    }

    def summarize(self, args: dict[str, Any]) -> str:
        extra = ""
        if "start_line" in args or "end_line" in args:
            extra = f" {args.get('start_line', 1)}-{args.get('end_line', 'end')}"
        return f"read_file {args.get('path', '')}{extra}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        ws = ctx.workspace
        try:
            path = ws.resolve(args["path"], must_exist=True)
        except PathError as exc:
            raise ToolError(str(exc)) from exc
        if path.is_dir():
            raise ToolError(f"{args['path']} is a folder; use list_files")
        if path.suffix == ".ipynb":
            return self._notebook(ctx, path)
        if _is_binary(path):
            return ToolResult(
                f"{ws.relative(path)}: binary file, {path.stat().st_size:,} bytes", "binary"
            )
        text = path.read_text(encoding="utf-8", errors="replace")
        lines = text.splitlines()
        start = max(1, int(args.get("start_line") or 1))
        end = min(len(lines), int(args.get("end_line") or len(lines)))
        if start > max(len(lines), 1):
            raise ToolError(f"the file has {len(lines)} lines")
        shown: list[str] = []
        size = 0
        last = start - 1
        for number in range(start, end + 1):
            line = lines[number - 1]
            if len(shown) >= MAX_READ_LINES or size + len(line) > MAX_READ_CHARS:
                break
            shown.append(f"{number}\t{line}")
            size += len(line) + 8
            last = number
        note = ""
        if last < end:
            note = (
                f"\n(lines {start}-{last} of {len(lines)}; read with start_line={last + 1} "
                "for more)"
            )
        elif start > 1 or end < len(lines):
            note = f"\n(lines {start}-{end} of {len(lines)})"
        return ToolResult(ctx.redact("\n".join(shown) + note), f"{last - start + 1} lines")

    def _notebook(self, ctx: ToolContext, path: Path) -> ToolResult:
        from ..notebook.document import NotebookError
        from ..notebook.file import FileNotebook
        from ..notebook.view import notebook_heading, render_cells

        if ctx.doc is not None and ctx.doc.path == path:
            doc: Any = ctx.doc
        else:
            try:
                doc = FileNotebook.open(path)
            except NotebookError as exc:
                raise ToolError(str(exc)) from exc
        view = render_cells(doc, image_ok=ctx.image_ok)
        return ToolResult(
            ctx.redact(notebook_heading(doc) + "\n" + view.text),
            f"{view.total} cells",
            images=view.images,
        )
