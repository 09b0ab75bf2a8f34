"""A review as SARIF 2.1.0, as GitHub code scanning takes it.

One rule per severity (``codexmax-review/<severity>``), so code scanning can filter and
gate on them; levels: critical and high are ``error``, medium ``warning``, low and info
``note``. A finding in a notebook is located at the .ipynb file, at the line of the file's
JSON where its cell's line is written (when that can be computed: Jupyter writes one source
line per JSON line), with the cell id in the message and as a logical location
(``<path>#cell=<id>``). Paths are relative to the workspace (``%SRCROOT%``), forward slashes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .._version import __version__
from .engine import ReviewResult
from .findings import SEVERITIES, Finding

__all__ = ["SCHEMA_URI", "to_sarif"]

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
#: GitHub's security-severity scale, for the rules' ordering in code scanning.
_SCORE = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}


def _rule(severity: str) -> dict[str, Any]:
    return {
        "id": f"codexmax-review/{severity}",
        "name": f"Review{severity.capitalize()}",
        "shortDescription": {"text": f"Code review finding, severity {severity}"},
        "defaultConfiguration": {"level": _LEVEL[severity]},
        "properties": {"tags": ["code-review"], "problem.severity": _LEVEL[severity]},
    }


def _message(finding: Finding) -> dict[str, str]:
    where = ""
    if finding.cell_id is not None:
        line = f", line {finding.line} of the cell" if finding.line else ""
        where = f" [cell {finding.cell_id}{line}]"
    text = f"{finding.title}{where}: {finding.body}"
    markdown = f"**{finding.title}**{where}\n\n{finding.body}"
    if finding.suggestion:
        fence = "```"
        while fence in finding.suggestion:
            fence += "`"
        markdown += f"\n\nSuggestion:\n\n{fence}\n{finding.suggestion}\n{fence}"
    return {"text": text, "markdown": markdown}


def _result(finding: Finding, rules: list[str]) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": finding.path, "uriBaseId": "%SRCROOT%"}}
    line = finding.file_line if finding.cell_id is not None else finding.line
    if line:
        physical["region"] = {"startLine": line}
    location: dict[str, Any] = {"physicalLocation": physical}
    if finding.cell_id is not None:
        location["logicalLocations"] = [
            {
                "name": f"cell {finding.cell_id}",
                "fullyQualifiedName": f"{finding.path}#cell={finding.cell_id}",
                "kind": "module",
            }
        ]
    key = "\0".join(
        [finding.path, finding.cell_id or "", str(finding.line or ""), finding.title.lower()]
    )
    result: dict[str, Any] = {
        "ruleId": f"codexmax-review/{finding.severity}",
        "ruleIndex": rules.index(finding.severity),
        "level": _LEVEL[finding.severity],
        "message": _message(finding),
        "locations": [location],
        "partialFingerprints": {
            "codexmaxFinding/v1": hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        },
        "properties": {
            "severity": finding.severity,
            "confidence": finding.confidence,
            **({"cellId": finding.cell_id, "cellLine": finding.line} if finding.cell_id else {}),
            **({"suggestion": finding.suggestion} if finding.suggestion else {}),
        },
    }
    return result


def to_sarif(result: ReviewResult) -> dict[str, Any]:
    rules = list(SEVERITIES)
    verdict = result.verdict
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "jupyter-codexmax",
                "version": __version__,
                "informationUri": "https://github.com/jupyter-codexmax/jupyter-codexmax",
                "rules": [_rule(s) for s in rules],
            }
        },
        "originalUriBaseIds": {
            "%SRCROOT%": {"description": {"text": "The root of the reviewed workspace."}}
        },
        "results": [_result(f, rules) for f in result.findings],
        "invocations": [
            {
                "executionSuccessful": all(u.status == "done" for u in result.units),
                **(
                    {
                        "toolExecutionNotifications": [
                            {"level": "error", "message": {"text": f"{u.name}: {u.error}"}}
                            for u in result.units
                            if u.error
                        ]
                    }
                    if any(u.error for u in result.units)
                    else {}
                ),
            }
        ],
        "properties": {
            "verdict": verdict.verdict if verdict else None,
            "explanation": verdict.explanation if verdict else None,
            "base": result.base,
        },
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}
