"""What a review produces and what it may point at.

A :class:`Scope` holds the inputs of one review (notebooks by cell id, files by line) and
what of them is under review (with ``--base``: the changed cells, the changed lines). Every
finding the model reports is located against it before it is kept: a cell id that does not
exist, a line past the end of its cell or file, a path that is not an input, or code that
did not change since the base is refused back to the model (:class:`~..tools.ToolError`),
so every finding in a report points at real code under review.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..tools.registry import ToolError

if TYPE_CHECKING:
    from ..notebook.document import NotebookDocument
    from ..workspace import Workspace

__all__ = [
    "FAIL_LEVELS",
    "SEVERITIES",
    "FileInput",
    "Finding",
    "NotebookInput",
    "Scope",
    "Verdict",
    "reaches",
]

#: From the most to the least severe.
SEVERITIES = ("critical", "high", "medium", "low", "info")
#: What ``--fail-on`` accepts.
FAIL_LEVELS = SEVERITIES[:-1]
#: Lines of code shown around a finding's line.
CONTEXT_LINES = 2


def reaches(severity: str, level: str) -> bool:
    """Whether ``severity`` is at least as severe as ``level``."""
    return SEVERITIES.index(severity) <= SEVERITIES.index(level)


@dataclass
class Finding:
    """One located finding. ``path`` is relative to the workspace; ``cell_id`` (notebooks)
    is the cell's full id and ``line`` 1-based within the cell; for files ``line`` is the
    file's line. ``excerpt`` is the code around the line (number, text), for renderers;
    ``file_line`` the line within the .ipynb file's JSON where the cell's line is written
    (None where it cannot be computed)."""

    severity: str
    title: str
    body: str
    confidence: float
    path: str
    cell_id: str | None = None
    line: int | None = None
    suggestion: str | None = None
    cell_number: int | None = None
    excerpt: list[tuple[int, str]] = field(default_factory=list)
    file_line: int | None = None

    def where(self) -> str:
        """The location in words: ``a.ipynb cell b2 line 3``, ``src/x.py:12``."""
        if self.cell_id is not None:
            line = f" line {self.line}" if self.line else ""
            return f"{self.path} cell {self.cell_id}{line}"
        return f"{self.path}:{self.line}" if self.line else self.path

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["excerpt"] = [{"line": n, "text": t} for n, t in self.excerpt]
        if self.cell_id is None:
            data.pop("cell_id")
            data.pop("cell_number")
        return data


@dataclass
class Verdict:
    """The review's overall answer."""

    verdict: str  # correct, needs_changes
    explanation: str
    confidence: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class NotebookInput:
    """A notebook under review: its working copy (never written), its bytes as read, and
    the ids of the cells under review (None: all of them)."""

    path: Path
    name: str
    doc: NotebookDocument
    raw: bytes
    reviewed: set[str] | None = None
    #: Cells of the base that are gone (ids), and each changed cell's diff (by id).
    deleted: list[str] = field(default_factory=list)
    diffs: dict[str, str] = field(default_factory=dict)


@dataclass
class FileInput:
    """A file under review: its lines, and the lines under review (None: all)."""

    path: Path
    name: str
    text: str
    reviewed: set[int] | None = None
    diff: str = ""

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


@dataclass
class Scope:
    """The inputs of one review, and what the model reported against them."""

    workspace: Workspace
    notebooks: list[NotebookInput] = field(default_factory=list)
    files: list[FileInput] = field(default_factory=list)
    base: str | None = None
    findings: list[Finding] = field(default_factory=list)
    verdict: Verdict | None = None

    def names(self) -> list[str]:
        return [n.name for n in self.notebooks] + [f.name for f in self.files]

    def _input(self, path: str | None) -> NotebookInput | FileInput:
        if not path:
            if len(self.notebooks) == 1:
                return self.notebooks[0]
            raise ToolError("give the path of the notebook or file the finding is in")
        wanted = path.strip()
        inputs: list[NotebookInput | FileInput] = [*self.notebooks, *self.files]
        for item in inputs:
            if wanted in (item.name, str(item.path)):
                return item
        try:
            resolved = self.workspace.resolve(wanted)
        except Exception:  # outside the workspace, or not a path at all
            resolved = None
        for item in inputs:
            if resolved == item.path:
                return item
        by_name = [i for i in inputs if Path(i.name).name == wanted]
        if len(by_name) == 1:
            return by_name[0]
        raise ToolError(
            f"{path!r} is not among the files under review ({', '.join(self.names())}); "
            "findings can only point at them"
        )

    def locate(self, args: dict[str, Any]) -> Finding:
        """The finding ``args`` describe, located; :class:`ToolError` when its location does
        not exist or is not under review."""
        target = self._input(args.get("path"))
        line = args.get("line")
        common = {
            "severity": args["severity"],
            "title": " ".join(str(args["title"]).split()),
            "body": str(args["body"]).strip(),
            "confidence": float(args["confidence"]),
            "suggestion": args.get("suggestion") or None,
            "path": target.name,
            "line": line,
        }
        if isinstance(target, FileInput):
            if args.get("cell_id"):
                raise ToolError(f"{target.name} is not a notebook: give a line, not a cell_id")
            return self._in_file(target, line, common)
        return self._in_notebook(target, args.get("cell_id"), line, common)

    def _in_file(self, target: FileInput, line: Any, common: dict[str, Any]) -> Finding:
        lines = target.lines
        if line is None:
            raise ToolError(f"give the line in {target.name} the finding is about")
        if line > len(lines):
            raise ToolError(
                f"{target.name} has {len(lines)} lines; there is no line {line}: read the file "
                "and give a line that exists"
            )
        if target.reviewed is not None and line not in target.reviewed:
            raise ToolError(
                f"line {line} of {target.name} did not change since {self.base}; only the "
                "changed lines are under review"
            )
        return Finding(**common, excerpt=_excerpt(lines, line))

    def _in_notebook(
        self, target: NotebookInput, cell_id: Any, line: Any, common: dict[str, Any]
    ) -> Finding:
        from ..notebook.document import CellNotFound

        if not cell_id:
            raise ToolError(f"{target.name} is a notebook: give the cell_id of the finding")
        doc = target.doc
        try:
            index = doc.index_of(str(cell_id))
        except CellNotFound as exc:
            raise ToolError(f"{exc} (in {target.name}); the finding was not recorded") from exc
        full = doc.cell_id(index)
        if target.reviewed is not None and full not in target.reviewed:
            raise ToolError(
                f"cell {doc.short_id(index)} did not change since {self.base}; only the "
                f"changed cells are under review ({', '.join(sorted(target.reviewed)) or 'none'})"
            )
        lines = str(doc.cells[index].get("source", "")).splitlines()
        if line is not None and line > len(lines):
            raise ToolError(
                f"cell {doc.short_id(index)} has {len(lines)} line(s); there is no line {line}"
            )
        excerpt = _excerpt(lines, line) if line else [(n, t) for n, t in enumerate(lines, 1)][:5]
        return Finding(
            **common,
            cell_id=full,
            cell_number=index + 1,
            excerpt=excerpt,
            file_line=ipynb_line(target.raw, full, line or 1, lines[(line or 1) - 1 : line or 1]),
        )

    def add(self, finding: Finding) -> int:
        """Keep ``finding`` (its number); the same finding twice is refused."""
        for number, old in enumerate(self.findings, 1):
            same = (old.path, old.cell_id, old.line, old.title.lower())
            if same == (finding.path, finding.cell_id, finding.line, finding.title.lower()):
                raise ToolError(f"this is finding {number} again; it is recorded already")
        self.findings.append(finding)
        return len(self.findings)


def _excerpt(lines: list[str], line: int) -> list[tuple[int, str]]:
    first = max(1, line - CONTEXT_LINES)
    last = min(len(lines), line + CONTEXT_LINES)
    return [(n, lines[n - 1]) for n in range(first, last + 1)]


def ipynb_line(raw: bytes, cell_id: str, line: int, expected: list[str]) -> int | None:
    """The 1-based line of the .ipynb file where line ``line`` of cell ``cell_id`` is
    written, when the file keeps one source line per JSON line (as Jupyter writes it) and
    that line holds the expected text; None otherwise."""
    import json

    text = raw.decode("utf-8", "replace").splitlines()
    marker = f'"id": {json.dumps(cell_id)}'
    starts = [n for n, row in enumerate(text) if row.strip().rstrip(",") == marker]
    if len(starts) != 1:
        return None
    for n in range(starts[0], len(text)):
        row = text[n].strip()
        if row.startswith('"source": ['):
            target = n + line
            if target >= len(text) or not expected:
                return None
            piece = text[target].strip().rstrip(",")
            try:
                value = json.loads(piece)
            except ValueError:
                return None
            return (
                target + 1 if isinstance(value, str) and value.rstrip("\n") == expected[0] else None
            )
        if row.startswith('"source": "'):
            return n + 1 if line == 1 else None
        if n > starts[0] and row.startswith('"cell_type":'):
            return None  # the next cell
    return None
