"""``search_files``: text or regex search over the workspace's files, notebooks cell by cell.

Patterns run on the `regex` module (Python's own syntax) with a time limit per file
(``CodexMax.search_time_limit``): a pattern that backtracks catastrophically, such as
``(a+)+$``, gives up on that file after the limit instead of holding the run. The search
runs in a thread and releases the interpreter while matching, so a stop or the run's time
limit ends it. Files it does not search are named with the reason: too large, binary, not a
regular file, unreadable, or too slow for the pattern.
"""

from __future__ import annotations

import json
import stat
import threading
import time
from pathlib import Path
from typing import Any

from ..fileio import NotRegularFile, describe_mode, open_regular
from .files import is_binary, resolve_existing, walk
from .registry import Tool, ToolContext, ToolError, ToolResult, in_thread
from .schema import PATH

__all__ = ["SearchFiles"]

MAX_MATCHES = 200
#: Bytes of a file searched; larger ones are skipped (and named).
MAX_SEARCH_FILE = 4 * 1024 * 1024
#: Bytes of a notebook searched (only its cells' sources are: images make notebooks big).
MAX_SEARCH_NOTEBOOK = 64 * 1024 * 1024
#: Skipped files named one by one in the result; the rest are counted.
MAX_SKIPPED_SHOWN = 20


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


class _Search:
    """One search's state: the compiled pattern, what it found and what it skipped."""

    def __init__(self, compiled: Any, time_limit: float, cancelled: threading.Event) -> None:
        self.compiled = compiled
        self.time_limit = time_limit
        self.cancelled = cancelled
        self.matches: list[str] = []
        self.total = 0
        self.skipped: list[str] = []
        self.binary = 0

    def file(self, path: Path, shown: str) -> None:
        limit = MAX_SEARCH_NOTEBOOK if path.suffix == ".ipynb" else MAX_SEARCH_FILE
        try:
            with open_regular(path) as f:
                data = f.read(limit + 1)
        except NotRegularFile as exc:
            self.skipped.append(f"{shown} ({exc.kind})")
            return
        except OSError as exc:
            self.skipped.append(f"{shown} (cannot be read: {exc.strerror or exc})")
            return
        if len(data) > limit:
            size = path.stat().st_size
            self.skipped.append(f"{shown} ({_megabytes(size)}, over the {limit // 2**20} MB limit)")
            return
        if is_binary(data[:8192]):
            self.binary += 1
            return
        text = data.decode("utf-8", errors="replace")
        deadline = time.monotonic() + self.time_limit
        for where, part in _searchable(path, text):
            for number, line in enumerate(part.splitlines(), 1):
                if number % 1_000 == 0 and self.cancelled.is_set():
                    return
                remaining = deadline - time.monotonic()
                try:
                    if remaining <= 0:
                        raise TimeoutError
                    found = self.compiled.search(line, timeout=remaining, concurrent=True)
                except TimeoutError:
                    self.skipped.append(
                        f"{shown} (the pattern took more than {self.time_limit:g} s here; "
                        "matches before that are listed)"
                    )
                    return
                if found:
                    self.total += 1
                    if len(self.matches) < MAX_MATCHES:
                        cut = line if len(line) <= 300 else line[:300] + "..."
                        self.matches.append(f"{shown}{where}:{number}: {cut}")

    def report(self) -> str:
        text = "\n".join(self.matches) if self.matches else "no matches"
        if self.total > MAX_MATCHES:
            text += f"\n... {self.total - MAX_MATCHES} more matches"
        notes = []
        if self.skipped:
            named = ", ".join(self.skipped[:MAX_SKIPPED_SHOWN])
            more = len(self.skipped) - MAX_SKIPPED_SHOWN
            notes.append(f"not searched: {named}" + (f", and {more} more" if more > 0 else ""))
        if self.binary:
            notes.append(f"{self.binary} binary file{'s' if self.binary != 1 else ''} skipped")
        return text + "".join(f"\n({note})" for note in notes)


class SearchFiles(Tool):
    name = "search_files"
    description = (
        "Search file contents in the workspace: a plain text (or regex=true, Python "
        "syntax) pattern, case-insensitive unless case_sensitive=true. Notebooks are "
        "searched cell by cell. Returns path:line: text, and names files not searched."
    )
    parameters = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "minLength": 1, "maxLength": 10_000},
            "path": PATH,
            "glob": {"type": "string", "maxLength": 1000},
            "regex": {"type": "boolean"},
            "case_sensitive": {"type": "boolean"},
        },
        "required": ["pattern"],
        "additionalProperties": False,
    }

    def summarize(self, args: dict[str, Any]) -> str:
        pattern = str(args.get("pattern", ""))
        return f"search_files {pattern if len(pattern) <= 80 else pattern[:80] + '...'!r}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        import regex

        ws = ctx.workspace
        flags = regex.VERSION0 | (0 if args.get("case_sensitive") else regex.IGNORECASE)
        pattern = args["pattern"]
        try:
            compiled = regex.compile(pattern if args.get("regex") else regex.escape(pattern), flags)
        except (regex.error, OverflowError, RecursionError) as exc:
            raise ToolError(f"the pattern is not a valid regular expression: {exc}") from exc
        time_limit = float(ctx.settings.search_time_limit)

        def work(cancelled: threading.Event) -> _Search:
            root = resolve_existing(ws, args.get("path") or ".")
            search = _Search(compiled, time_limit, cancelled)
            files = walk(root, args.get("glob"), ws, cancelled) if root.is_dir() else [root]
            for path in files:
                if cancelled.is_set():
                    break
                shown = ws.relative(path)
                try:
                    mode = path.stat().st_mode
                except OSError as exc:
                    search.skipped.append(f"{shown} (cannot be read: {exc.strerror or exc})")
                    continue
                if not stat.S_ISREG(mode):
                    search.skipped.append(f"{shown} ({describe_mode(mode)})")
                    continue
                search.file(path, shown)
            return search

        search = await in_thread(work)
        summary = f"{search.total} matches"
        if search.skipped:
            summary += f", {len(search.skipped)} files not searched"
        return ToolResult(ctx.redact(search.report()), summary)


def _searchable(path: Path, text: str) -> list[tuple[str, str]]:
    """(location suffix, text) pairs: a notebook's cell sources, or the whole file."""
    if path.suffix == ".ipynb":
        try:
            nb = json.loads(text)
        except (ValueError, RecursionError):
            return [("", text)]
        cells = nb.get("cells") if isinstance(nb, dict) else None
        if isinstance(cells, list):
            out = []
            for number, cell in enumerate(cells, 1):
                if not isinstance(cell, dict):
                    continue
                source = cell.get("source", "")
                source = "".join(map(str, source)) if isinstance(source, list) else str(source)
                cid = cell.get("id") or f"c{number}"
                out.append((f"#{cid}", source))
            return out
    return [("", text)]
