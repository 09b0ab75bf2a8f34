"""A review as text (a terminal), JSON, Markdown (a pull-request comment) or SARIF
(:mod:`.sarif`). Every output passes the one redaction on its way out."""

from __future__ import annotations

import json
import os
from typing import Any

from .engine import ReviewResult
from .findings import Finding

__all__ = ["FORMATS", "render"]

FORMATS = ("text", "json", "markdown", "sarif")

_VERDICT_WORDS = {"correct": "correct", "needs_changes": "needs changes"}


def render(result: ReviewResult, fmt: str) -> str:
    """``result`` in ``fmt``, secrets masked."""
    from .. import secrets

    values = secrets.credential_values(os.environ)
    if fmt == "text":
        return secrets.redact(to_text(result), values)
    if fmt == "markdown":
        return secrets.redact(to_markdown(result), values)
    if fmt == "json":
        data: Any = to_json(result)
    else:
        from .sarif import to_sarif

        data = to_sarif(result)
    return json.dumps(secrets.redact_value(data, values), indent=2, ensure_ascii=False) + "\n"


def to_json(result: ReviewResult) -> dict[str, Any]:
    verdict = result.verdict
    return {
        "findings": [f.to_json() for f in result.findings],
        "verdict": verdict.to_json() if verdict else None,
        "usage": result.usage.to_json(),
        "base": result.base,
        "reviewed": [
            {
                "unit": u.name,
                "status": u.status,
                "error": u.error,
                "steps": u.steps,
                "verdict": u.scope.verdict.to_json() if u.scope.verdict else None,
            }
            for u in result.units
        ],
    }


def _grouped(result: ReviewResult) -> dict[str, dict[str | None, list[Finding]]]:
    """Findings by path, then by cell (None for files), in the order of the cells."""
    groups: dict[str, dict[str | None, list[Finding]]] = {}
    ordered = sorted(result.findings, key=lambda f: (f.path, f.cell_number or 0, f.line or 0))
    for finding in ordered:
        groups.setdefault(finding.path, {}).setdefault(finding.cell_id, []).append(finding)
    return groups


def _verdict_line(result: ReviewResult) -> str:
    verdict = result.verdict
    if verdict is None:
        return "Verdict: none (the review did not finish)"
    sure = f" (confidence {verdict.confidence:.2f})" if verdict.confidence is not None else ""
    word = _VERDICT_WORDS.get(verdict.verdict, verdict.verdict)
    return f"Verdict: {word}{sure}: {verdict.explanation}"


def to_text(result: ReviewResult) -> str:
    from ..text import printable

    out: list[str] = []
    for path, cells in _grouped(result).items():
        out.append(path)
        for cell_id, findings in cells.items():
            indent = "  "
            if cell_id is not None:
                out.append(f"  cell {cell_id} (#{findings[0].cell_number})")
                indent = "    "
            for finding in findings:
                where = f"line {finding.line}" if finding.line else "whole cell"
                out.append(
                    f"{indent}[{finding.severity}] {finding.title} ({where}, confidence "
                    f"{finding.confidence:.2f})"
                )
                for number, text in finding.excerpt:
                    mark = ">" if number == finding.line else " "
                    out.append(f"{indent}  {mark}{number:>4}| {text}")
                for row in finding.body.splitlines():
                    out.append(f"{indent}  {row}")
                if finding.suggestion:
                    out.append(f"{indent}  suggestion:")
                    out.extend(f"{indent}    {row}" for row in finding.suggestion.splitlines())
        out.append("")
    counts = _counts(result)
    out.append(f"{len(result.findings)} finding(s){counts}")
    out.append(_verdict_line(result))
    for unit in result.units:
        if unit.error:
            out.append(f"{unit.name}: {unit.status}: {unit.error}")
    return printable("\n".join(out)) + "\n"


def _counts(result: ReviewResult) -> str:
    from .findings import SEVERITIES

    found = [f.severity for f in result.findings]
    parts = [f"{found.count(s)} {s}" for s in SEVERITIES if s in found]
    return f": {', '.join(parts)}" if parts else ""


def _fence(code: str) -> str:
    ticks = "```"
    while ticks in code:
        ticks += "`"
    return ticks


def to_markdown(result: ReviewResult) -> str:
    verdict = result.verdict
    head = "needs changes" if verdict and verdict.verdict == "needs_changes" else "correct"
    if verdict is None:
        head = "incomplete"
    out = [f"## Code review: {head}", ""]
    if verdict is not None:
        out += [verdict.explanation, ""]
    out.append(f"**{len(result.findings)} finding(s)**{_counts(result)}")
    out.append("")
    for path, cells in _grouped(result).items():
        out.append(f"### `{path}`")
        out.append("")
        for cell_id, findings in cells.items():
            if cell_id is not None:
                out.append(f"#### Cell `{cell_id}` (#{findings[0].cell_number})")
                out.append("")
            for finding in findings:
                where = f"line {finding.line}" if finding.line else "the cell"
                out.append(
                    f"- **[{finding.severity}] {finding.title}** ({where}, confidence "
                    f"{finding.confidence:.2f})"
                )
                out.append("")
                out.extend(f"  {row}" for row in finding.body.splitlines())
                code = "\n".join(text for _, text in finding.excerpt)
                if code:
                    fence = _fence(code)
                    out += ["", f"  {fence}python", *(f"  {r}" for r in code.splitlines())]
                    out.append(f"  {fence}")
                if finding.suggestion:
                    fence = _fence(finding.suggestion)
                    out += ["", "  Suggestion:", "", f"  {fence}python"]
                    out += [f"  {r}" for r in finding.suggestion.splitlines()]
                    out.append(f"  {fence}")
                out.append("")
    for unit in result.units:
        if unit.error:
            out.append(f"> {unit.name}: {unit.status}: {unit.error}")
    return "\n".join(out).rstrip() + "\n"
