"""Placing the hunks of an ``*** Update File:`` in a file's text, as the Codex CLI does.

A hunk is found by its context and removed lines, not by line numbers, matching ever more
loosely: exactly, then ignoring trailing whitespace, then ignoring surrounding whitespace,
then also treating typographic dashes, quotes and spaces as their ASCII forms (the table of
codex-rs/apply-patch/src/seek_sequence.rs). The ``@@`` lines of a hunk are found first, in
turn; the hunk's lines are then looked for after the last of them. ``*** End of File`` pins
a hunk to the end of the file. Blank lines at the end of a hunk (a blank line before
``*** End Patch``) are matched if the file has them and ignored if it does not. A hunk of
only added lines goes at the end of the file, or right after its ``@@`` line if it has one.

Every line keeps its own line ending (``\\n``, ``\\r\\n`` or a lone ``\\r``); new lines take
the file's first ``\\n`` or ``\\r\\n`` ending. A file without a final newline stays so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .registry import ToolError

__all__ = ["Chunk", "update_text"]

_BREAK = re.compile(r"(\r\n|\r|\n)")
_LINE_NUMBERS = re.compile(r"-\d+(,\d+)? \+\d+(,\d+)? @@")

#: Codex's seek_sequence normalisation: Unicode punctuation to its ASCII look-alike.
_PUNCTUATION = str.maketrans(
    {
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
        **dict.fromkeys("\u2018\u2019\u201a\u201b", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f", '"'),
        **dict.fromkeys(
            "\u00a0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000",
            " ",
        ),
    }
)

_NORMALIZERS: tuple[Callable[[str], str], ...] = (
    lambda s: s,
    str.rstrip,
    str.strip,
    lambda s: s.strip().translate(_PUNCTUATION),
)


@dataclass
class Chunk:
    """One hunk: the ``@@`` lines to find first, then its lines in order."""

    contexts: list[str] = field(default_factory=list)
    #: (marker, text): " " context, "-" removed, "+" added; a blank patch line is (" ", "").
    lines: list[tuple[str, str]] = field(default_factory=list)
    at_end: bool = False

    @property
    def core(self) -> list[tuple[str, str]]:
        """The lines without trailing blank context or removed lines."""
        lines = list(self.lines)
        while lines and lines[-1][0] != "+" and not lines[-1][1].strip():
            lines.pop()
        return lines


def _old(lines: list[tuple[str, str]]) -> list[str]:
    return [text for marker, text in lines if marker != "+"]


def _seek(lines: list[str], wanted: list[str], start: int, at_end: bool) -> int | None:
    """Where ``wanted`` occurs in ``lines`` at or after ``start``, or at the very end."""
    last = len(lines) - len(wanted)
    if not wanted or last < start:
        return None
    positions = range(last, last + 1) if at_end else range(start, last + 1)
    for normal in _NORMALIZERS:
        want = [normal(w) for w in wanted]
        have = [normal(line) for line in lines]
        for i in positions:
            if have[i : i + len(want)] == want:
                return i
    return None


def _split(text: str) -> list[tuple[str, str]]:
    """(text, ending) for each line; the last line's ending is "" without a final newline."""
    parts = _BREAK.split(text)
    lines = list(zip(parts[0::2], parts[1::2], strict=False))
    if parts[-1]:
        lines.append((parts[-1], ""))
    return lines


def _place(
    name: str, texts: list[str], chunk: Chunk, cursor: int
) -> tuple[int, int, list[tuple[str, str]], int]:
    """(start, how many file lines it replaces, the patch lines used, where the next hunk
    is looked for) for one hunk."""
    header = None
    for context in chunk.contexts:
        found = _seek(texts, [context], cursor, False)
        if found is None:
            hint = _earlier(texts, [context], cursor, header is not None)
            if _LINE_NUMBERS.match(context.strip()):
                hint += "; '@@' takes a line of the file to find, not line numbers"
            raise ToolError(f"{name}: the line after '@@' ({context!r}) is not in the file{hint}")
        header, cursor = found, found + 1
    core = chunk.core
    if not _old(core):  # only added lines
        # As Codex, it does not move the search on (unless it follows an '@@' line).
        if header is not None and not chunk.at_end:
            return cursor, 0, core, cursor
        end = len(texts) - 1 if texts and texts[-1] == "" else len(texts)
        return end, 0, core, cursor
    # As Codex: the whole hunk, then without its trailing blank lines; then (an addition
    # here) starting at the '@@' line itself, for a hunk whose first line is that line.
    tries = [(chunk.lines, cursor), (core, cursor)]
    if header is not None:
        tries += [(chunk.lines, header), (core, header)]
    for lines, start in tries:
        old = _old(lines)
        found = _seek(texts, old, start, chunk.at_end)
        if found is not None:
            return found, len(old), lines, found + len(old)
    old = _old(core)
    if chunk.at_end and _seek(texts, old, cursor, False) is not None:
        problem = "are in the file but not at its end ('*** End of File')"
    else:
        problem = "are not in the file" + _earlier(texts, old, cursor, header is not None)
    shown = "\n".join(_old(chunk.lines)[:8])
    raise ToolError(
        f"{name}: these lines {problem} (read it again and copy them exactly):\n{shown}"
    )


def _earlier(texts: list[str], wanted: list[str], cursor: int, after_at_at: bool) -> str:
    """Why lines that are in the file were not found: they come too early."""
    if cursor == 0 or _seek(texts, wanted, 0, False) is None:
        return ""
    if after_at_at:
        return " after the '@@' line before them"
    return " after the previous hunk (hunks must follow the file's order)"


def update_text(name: str, text: str, chunks: list[Chunk]) -> str:
    """``text`` with the hunks applied, or :class:`ToolError` naming the hunk that fails."""
    lines = _split(text)
    texts = [line for line, _ in lines]
    final_newline = not lines or lines[-1][1] != ""
    endings = [ending for _, ending in lines]
    ending = next((e for e in endings if "\n" in e), next((e for e in endings if e), "\n"))

    places: list[tuple[int, int, list[tuple[str, str]], int]] = []
    cursor = 0
    for number, chunk in enumerate(chunks, 1):
        start, length, used, cursor = _place(f"{name}, hunk {number}", texts, chunk, cursor)
        places.append((start, length, used, number))
    places.sort(key=lambda place: place[0])  # stable: hunks at one place keep their order

    result: list[tuple[str, str | None]] = []
    position = 0
    for start, length, used, number in places:
        if start < position:
            raise ToolError(f"{name}, hunk {number}: it overlaps an earlier hunk")
        result.extend(lines[position:start])
        # Context lines keep the file's own text and ending: a loose match (other
        # indentation, trailing space) must not rewrite lines the patch did not change.
        old = iter(lines[start : start + length])
        for marker, line in used:
            if marker == "+":
                result.append((line, None))
            else:
                kept = next(old)
                if marker == " ":
                    result.append(kept)
        position = start + length
    result.extend(lines[position:])

    out = [(line, end or ending) for line, end in result]
    if out and not final_newline:
        out[-1] = (out[-1][0], "")
    return "".join(line + end for line, end in out)
