"""Unified diffs of text for people and the model: cells, files, proposals."""

from __future__ import annotations

import difflib

__all__ = ["unified_diff"]


def unified_diff(
    old: str, new: str, *, fromfile: str, tofile: str, context: int = 2, mark_eof: bool = False
) -> str:
    """A unified diff of ``old`` to ``new`` in which every line ends with a newline, so a
    last line without one never runs into the next (``x = 1+x = 2``). ``mark_eof``: say so
    as ``diff -u`` does (``\\ No newline at end of file``), for files, where it matters."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=fromfile,
        tofile=tofile,
        n=context,
    )
    marker = "\n\\ No newline at end of file\n" if mark_eof else "\n"
    return "".join(line if line.endswith("\n") else line + marker for line in lines)
