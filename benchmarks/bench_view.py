"""Benchmark: how many tokens the notebook view costs, against the raw .ipynb JSON.

Target (issue 3): median at most 12 % of the raw JSON's tokens over ../shared/corpus, with
every source line present. Counts use tiktoken's o200k_base (the GPT-5 family's encoding)
when ``benchmarks/o200k.py`` can provide it, else the documented estimate; both are
reported when both are available. Also measured: the fixed part of every request
(instructions and tool schemas; target at most 4,000 tokens).

    .venv/bin/python benchmarks/bench_view.py     # writes benchmarks/RESULTS-view.md
"""

from __future__ import annotations

import datetime
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from o200k import ensure  # noqa: E402

from jupyter_codexmax.agent.instructions import build_instructions  # noqa: E402
from jupyter_codexmax.agent.tokens import TokenCounter, estimate_tokens  # noqa: E402
from jupyter_codexmax.notebook.document import NotebookError  # noqa: E402
from jupyter_codexmax.notebook.file import FileNotebook  # noqa: E402
from jupyter_codexmax.notebook.view import render_cells  # noqa: E402
from jupyter_codexmax.tools import default_tools  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
RESULTS = ROOT / "benchmarks" / "RESULTS-view.md"


def sources_present(doc: FileNotebook, text: str) -> bool:
    lines = text.splitlines()
    present = set(lines)
    for cell in doc.cells:
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if any(
            line.rstrip("\n") not in present
            for line in source.rstrip("\n").splitlines()
            if line.strip()
        ):
            return False
    return True


def main() -> int:
    tiktoken_file = ensure()
    real = TokenCounter(tiktoken_file=str(tiktoken_file)) if tiktoken_file else None
    counters: dict[str, Callable[[str], int]] = {"estimate": estimate_tokens}
    if real is not None and real.exact:
        counters = {"o200k_base": real.count, "estimate": estimate_tokens}
    rows: list[dict[str, Any]] = []
    for path in sorted(CORPUS.rglob("*.ipynb")):
        try:
            doc = FileNotebook.open(path)
        except NotebookError:
            continue
        view = render_cells(doc, budget=10**9).text
        raw = path.read_text(encoding="utf-8")
        entry: dict[str, Any] = {
            "file": str(path.relative_to(CORPUS)),
            "complete": sources_present(doc, view),
        }
        for name, count in counters.items():
            entry[name] = (count(view), count(raw))
        rows.append(entry)
    first = next(iter(counters))
    lines = [
        "# Benchmark: the notebook view's tokens against the raw .ipynb JSON",
        "",
        f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by "
        "`benchmarks/bench_view.py` over every notebook of `../shared/corpus` that reads "
        f"({len(rows)} files). Tokens: {', '.join(counters)}"
        + (
            " (o200k_base from js-tiktoken's ranks, checked against tiktoken's official hash)"
            if "o200k_base" in counters
            else ""
        )
        + ".",
        "",
    ]
    for name in counters:
        ratios = [r[name][0] / r[name][1] for r in rows]
        lines.append(
            f"- **{name}**: median {statistics.median(ratios):.1%}, mean "
            f"{statistics.mean(ratios):.1%}, max {max(ratios):.1%} (target: median "
            "at most 12 %)"
        )
    complete = sum(r["complete"] for r in rows)
    lines.append(f"- every source line present: {complete}/{len(rows)} notebooks")
    fixed = json.dumps(
        {
            "instructions": build_instructions("ask"),
            "tools": [
                {"name": s.name, "description": s.description, "parameters": s.parameters}
                for s in default_tools().specs()
            ],
        }
    )
    sizes = ", ".join(f"{count(fixed):,} ({name})" for name, count in counters.items())
    lines.append(
        f"- fixed part of every request (instructions and tool schemas): {sizes} "
        "tokens (target: at most 4,000)"
    )
    lines += [
        "",
        f"| notebook | view | raw JSON | ratio ({first}) | every source line |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        view, raw = r[first]
        lines.append(
            f"| {r['file']} | {view:,} | {raw:,} | {view / raw:.1%} | "
            f"{'yes' if r['complete'] else 'NO'} |"
        )
    text = "\n".join(lines) + "\n"
    RESULTS.write_text(text)
    print(text)
    median = statistics.median(r[first][0] / r[first][1] for r in rows)
    return 0 if median <= 0.12 and complete == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
