"""The run's report beyond one notebook: totals, a Markdown table, and ``--resume``.

The JSON report (``--report``, written by :func:`jupyter_codexmax.cli.run.write_report`)
has one entry per notebook and ``totals``. ``--report-md`` writes the same as a Markdown
table, for a pull request or a dashboard. ``--resume REPORT`` reads an earlier report:
notebooks it lists as ``done`` are skipped (their entries are carried into the new report,
marked ``"resumed": true``), the others run again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..text import plural

__all__ = ["ResumeError", "done_entries", "markdown", "totals"]


class ResumeError(Exception):
    """The report given to ``--resume`` cannot be used (one line, for the user)."""


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


def totals(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts by status, and the sums of steps, cells changed, tokens, cost and time."""
    by_status: dict[str, int] = {}
    for entry in entries:
        status = str(entry.get("status", "failed"))
        by_status[status] = by_status.get(status, 0) + 1
    costs = [e.get("cost_usd") for e in entries]
    known = [c for c in costs if isinstance(c, (int, float))]
    return {
        "notebooks": len(entries),
        "done": by_status.get("done", 0),
        "incomplete": by_status.get("incomplete", 0),
        "failed": by_status.get("failed", 0),
        "resumed": sum(1 for e in entries if e.get("resumed")),
        "steps": sum(int(_number(e.get("steps"))) for e in entries),
        "cells_changed": sum(len(e.get("cells_edited") or []) for e in entries),
        "input_tokens": sum(
            int(_number((e.get("usage") or {}).get("input_tokens"))) for e in entries
        ),
        "output_tokens": sum(
            int(_number((e.get("usage") or {}).get("output_tokens"))) for e in entries
        ),
        "cost_usd": round(sum(known), 6) if known else None,
        "wall_time": round(sum(_number(e.get("wall_time")) for e in entries), 3),
    }


def _cell(value: Any) -> str:
    text = " ".join(str(value).split())
    return text.replace("|", "\\|")


def _cost(value: Any) -> str:
    return f"${value:.4f}" if isinstance(value, (int, float)) else "-"


def _labels(paths: list[str]) -> list[str]:
    """How each notebook is named in the table: its file name, or where two share one,
    its path from the folder that holds them all."""
    import os

    names = [Path(p).name for p in paths]
    if len(set(names)) == len(names):
        return names
    base = os.path.commonpath([str(Path(p).parent) for p in paths])
    return [os.path.relpath(p, base) for p in paths]


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table (one row per notebook, then the totals)."""
    entries = report.get("notebooks", [])
    rows = [
        "| notebook | status | worker | steps | cells changed | tokens in | tokens out "
        "| cost | time |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    labels = _labels([str(e.get("path", "")) for e in entries])
    for e, label in zip(entries, labels, strict=True):
        usage = e.get("usage") or {}
        status = str(e.get("status", ""))
        if e.get("resumed"):
            status += " (earlier run)"
        rows.append(
            "| "
            + " | ".join(
                [
                    _cell(label),
                    _cell(status),
                    _cell(e.get("worker", "")),
                    str(int(_number(e.get("steps")))),
                    str(len(e.get("cells_edited") or [])),
                    f"{int(_number(usage.get('input_tokens'))):,}",
                    f"{int(_number(usage.get('output_tokens'))):,}",
                    _cost(e.get("cost_usd")),
                    f"{_number(e.get('wall_time')):.1f}s",
                ]
            )
            + " |"
        )
    t = report.get("totals") or totals(entries)
    rows.append(
        f"| **{plural(t['notebooks'], 'notebook')}** | {t['done']} done, "
        f"{t['incomplete']} incomplete, {t['failed']} failed |  | {t['steps']} | "
        f"{t['cells_changed']} | {t['input_tokens']:,} | {t['output_tokens']:,} | "
        f"{_cost(t['cost_usd'])} | {t['wall_time']:.1f}s (sum) |"
    )
    failures = [e for e in entries if e.get("status") != "done" and e.get("error")]
    lines = [f"# jupyter-codexmax run ({report.get('started', '')})", "", *rows, ""]
    if failures:
        lines += ["## Not done", ""]
        lines += [f"- `{Path(str(e['path'])).name}`: {_cell(e['error'])}" for e in failures]
        lines.append("")
    return "\n".join(lines)


def done_entries(path: str) -> dict[str, dict[str, Any]]:
    """The ``done`` entries of an earlier report, by the notebook's absolute path."""
    target = Path(path).expanduser()
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ResumeError("does not exist (the first run writes it with --report)") from exc
    except IsADirectoryError as exc:
        raise ResumeError("is a folder, not a report") from exc
    except OSError as exc:
        raise ResumeError(f"cannot be read: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise ResumeError(f"is not a JSON report: {exc}") from exc
    notebooks = data.get("notebooks") if isinstance(data, dict) else None
    if not isinstance(notebooks, list) or not all(isinstance(e, dict) for e in notebooks):
        raise ResumeError('is not a report of jupyter codexmax run (no "notebooks" list)')
    return {
        str(Path(str(e["path"])).resolve()): {**e, "resumed": True}
        for e in notebooks
        if e.get("status") == "done" and isinstance(e.get("path"), str)
    }
