"""File tools: list and read files inside the workspace (search is in :mod:`.search`).

Blocking file work runs in a thread (:func:`.registry.in_thread`), so a stop or the run's
time limit is not held up by it. Only regular files are opened: a named pipe, a device or
a socket in the workspace is named for what it is and never read (:mod:`..fileio`).
``read_file`` reads only what it returns, line by line: five lines of a 100 MB file cost
five lines.
"""

from __future__ import annotations

import fnmatch
import io
import os
import threading
from pathlib import Path
from typing import Any

from ..fileio import NotRegularFile, open_regular
from ..workspace import SKIPPED_DIRS, PathError, Workspace
from .registry import Tool, ToolContext, ToolError, ToolResult, in_thread
from .schema import PATH

__all__ = ["ListFiles", "ReadFile", "is_binary", "walk"]

MAX_LIST = 300
MAX_READ_LINES = 2_000
MAX_READ_CHARS = 60_000
#: Characters of one line shown; the rest of a longer line is counted, not kept.
MAX_LINE_CHARS = 4_000
#: Files up to this size have their lines counted, for the note saying how many there are.
COUNT_LINES_UP_TO = 1024 * 1024
#: Characters of the tool output limit kept for the note after a page (where to go on).
NOTE_ROOM = 300
#: The largest line number a read can start at (beyond any real file's line count).
MAX_LINE_NUMBER = 10**12


def is_binary(head: bytes) -> bool:
    """Whether a file whose first bytes are ``head`` is binary (holds a NUL byte)."""
    return b"\0" in head


def walk(
    root: Path, glob: str | None, workspace: Workspace, cancelled: threading.Event | None = None
) -> list[Path]:
    """Files under ``root`` (skipping caches, VCS and environment folders), sorted. A
    symlink whose target is outside the workspace is left out, as if it were not there."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        if cancelled is not None and cancelled.is_set():
            break
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


def resolve_existing(ws: Workspace, raw: str) -> Path:
    try:
        return ws.resolve(raw, must_exist=True)
    except PathError as exc:
        raise ToolError(str(exc)) from exc


class ListFiles(Tool):
    name = "list_files"
    description = (
        "List files under a folder of the workspace (recursively; caches, .git and "
        "environments skipped). Optional glob filter, e.g. '*.py' or 'data/*.csv'."
    )
    parameters = {
        "type": "object",
        "properties": {"path": PATH, "glob": {"type": "string", "maxLength": 1000}},
        "additionalProperties": False,
    }

    def summarize(self, args: dict[str, Any]) -> str:
        return f"list_files {args.get('path', '.')} {args.get('glob', '')}".strip()

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        ws = ctx.workspace

        def work(cancelled: threading.Event) -> ToolResult:
            root = resolve_existing(ws, args.get("path") or ".")
            if not root.is_dir():
                size = root.stat().st_size
                return ToolResult(f"{ws.relative(root)} ({size:,} bytes)", "1 file")
            files = walk(root, args.get("glob"), ws, cancelled)
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
            text = "\n".join(lines) + more if lines else "(no files)"
            return ToolResult(text, f"{len(files)} files")

        return await in_thread(work)


class ReadFile(Tool):
    name = "read_file"
    description = (
        "Read a file in the workspace, with line numbers; start_line/end_line (1-based, "
        "inclusive) for part of it. A notebook (.ipynb) is shown as its cells."
    )
    parameters = {
        "type": "object",
        "properties": {
            "path": PATH,
            "start_line": {"type": "integer", "minimum": 1, "maximum": MAX_LINE_NUMBER},
            "end_line": {"type": "integer", "minimum": 1, "maximum": MAX_LINE_NUMBER},
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
        start = int(args.get("start_line") or 1)
        end = args.get("end_line")
        if end is not None and end < start:
            raise ToolError(f"end_line ({end}) comes before start_line ({start})")
        path = resolve_existing(ws, args["path"])
        if path.is_dir():
            raise ToolError(f"{args['path']} is a folder; use list_files")
        if path.suffix == ".ipynb":
            if ctx.doc is not None and ctx.doc.path == path:
                return self._view(ctx, ctx.doc)
            return self._view(ctx, await in_thread(lambda _: _open_notebook(path)))
        name = ws.relative(path)

        limit = min(MAX_READ_CHARS, ctx.settings.tool_output_limit - NOTE_ROOM)

        def work(cancelled: threading.Event) -> ToolResult:
            try:
                return read_lines(path, name, (start, end), cancelled, limit)
            except NotRegularFile as exc:
                raise ToolError(f"{name}: is {exc.kind}; only regular files are read") from exc

        result = await in_thread(work)
        result.output = ctx.redact(result.output)
        return result

    def _view(self, ctx: ToolContext, doc: Any) -> ToolResult:
        from ..notebook.view import notebook_heading, render_cells

        view = render_cells(doc, image_ok=ctx.image_ok, budget=page_budget(ctx))
        return ToolResult(
            ctx.redact(notebook_heading(doc) + "\n" + view.text),
            f"{view.total} cells",
            images=view.images,
        )


def page_budget(ctx: ToolContext) -> int:
    """Characters of a page of a notebook's view: a page fits the tool output limit, so
    the model gets whole cells and the note saying where the next page starts."""
    return max(500, min(48_000, ctx.settings.tool_output_limit - NOTE_ROOM))


def _open_notebook(path: Path) -> Any:
    from ..notebook.document import NotebookError
    from ..notebook.file import FileNotebook

    try:
        return FileNotebook.open(path)
    except NotebookError as exc:
        raise ToolError(str(exc)) from exc


def _lines(text: io.TextIOWrapper) -> Any:
    """``(line, extra)`` for each line of ``text``: the line without its end, at most
    :data:`MAX_LINE_CHARS` characters of it, and how many more it had (read, not kept)."""
    while True:
        line = text.readline(MAX_LINE_CHARS)
        if not line:
            return
        extra = 0
        if not line.endswith("\n"):
            while True:
                rest = text.readline(65_536)
                if not rest:
                    break
                if rest.endswith("\n"):
                    extra += len(rest) - 1
                    break
                extra += len(rest)
        yield line.rstrip("\n"), extra


def read_lines(
    path: Path,
    name: str,
    lines_wanted: tuple[int, int | None],
    cancelled: threading.Event,
    max_chars: int = MAX_READ_CHARS,
) -> ToolResult:
    """Lines ``start``..``end`` of a text file with their numbers, read up to the last one
    shown (and one more line, to know whether the file goes on)."""
    start, end = lines_wanted
    with open_regular(path) as raw:
        size = os.fstat(raw.fileno()).st_size
        head = raw.read(8192)
        if is_binary(head):
            return ToolResult(f"{name}: binary file, {size:,} bytes", "binary")
        raw.seek(0)
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline=None)
        shown: list[str] = []
        used = 0
        number = 0
        last = start - 1
        full = False
        lines = _lines(text)
        for line, extra in lines:
            number += 1
            if number < start:
                if number % 10_000 == 0 and cancelled.is_set():
                    break
                continue
            if end is not None and number > end:
                break
            if len(shown) >= MAX_READ_LINES or (shown and used + len(line) > max_chars):
                full = True
                break
            cut = f" [... line cut: {extra:,} more characters]" if extra else ""
            shown.append(f"{number}\t{line}{cut}")
            used += len(line) + len(cut) + 8
            last = number
        else:
            # The whole file was read: the count of its lines is known.
            return _result(shown, (start, last), name, size, number, full=False)
        # Stopped at a line not shown: the file goes on. A small one is counted to its end
        # (cheap, and the model learns its length); a large one is not read further.
        total = number + sum(1 for _ in lines) if size <= COUNT_LINES_UP_TO else None
        return _result(shown, (start, last), name, size, total, full=full)


def _result(
    shown: list[str], span: tuple[int, int], name: str, size: int, total: int | None, *, full: bool
) -> ToolResult:
    """The lines shown, and a note: which lines of how many, and where to go on (when the
    read stopped at its limits rather than at the line asked for)."""
    start, last = span
    if total is not None and start > max(total, 1):
        raise ToolError(f"{name} has {total} lines; start_line {start} is past its end")
    if total == 0:
        return ToolResult(f"{name}: the file is empty", "0 lines")
    of = f"of a {size:,}-byte file" if total is None else f"of {total}"
    if full:
        note = f"\n(lines {start}-{last} {of}; read with start_line={last + 1} for more)"
    elif start > 1 or total is None or last < total:
        note = f"\n(lines {start}-{last} {of})"
    else:
        note = ""
    return ToolResult("\n".join(shown) + note, f"{last - start + 1} lines")
