"""Benchmark: the tokens sent to the model to review a 50-cell notebook, beside the Codex CLI.

The notebook is generated deterministically (``sales_notebook.py``): a quarterly sales
analysis of 50 cells (markdown, and code with the outputs a run leaves: printed text,
DataFrames as text and HTML, one PNG chart), with one real bug (a growth rate divided by
the wrong quarter). It is the change under review: a git repository whose one commit
holds a README, with ``analysis.ipynb`` new and uncommitted.

- **ours**: ``jupyter codexmax review analysis.ipynb --base HEAD --format json`` (the
  notebook is new since HEAD, so all of it is under review and shown in the first
  message). The scripted model reports the finding and the verdict (two tool calls in one
  reply), then ends with a line of text.
- **the Codex CLI**: ``codex exec review --uncommitted``, its review entry point (the
  review sub-agent and its review prompt). Its first request names no file, so the
  scripted model makes the call a real model makes to see the change, ``exec_command``
  with ``cat analysis.ipynb`` (one command: a real model would likely first run ``git
  status``, so this favours Codex), and Codex sends the file as it sends any command's
  output (cut to its 10,000-token budget, which it estimates at 4 bytes a token); then
  the model answers with Codex's review
  JSON: the same finding and verdict.

Both make two model requests. Every request each side sends over the review is counted
the same way (``results.request_parts``: instructions + tools + input, each as its JSON
text, o200k_base), and so is the notebook's share: the input items that carry the
notebook (ours: the first message presenting it; Codex: the command's output), in every
request they travel in.

    .venv/bin/python benchmarks/bench_review.py     # writes benchmarks/RESULTS-review.md
    CODEX_BIN=/path/to/codex .venv/bin/python benchmarks/bench_review.py
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from o200k import ensure  # noqa: E402
from results import (  # noqa: E402
    CODEX_MODEL,
    Row,
    codex_bin,
    codex_version,
    json_tokens,
    machine,
    report,
    request_parts,
    scripted_env,
)
from sales_notebook import BUG_CELL, BUG_LINE, MARK, notebook  # noqa: E402

from jupyter_codexmax.agent.tokens import TokenCounter, estimate_tokens  # noqa: E402
from jupyter_codexmax.testing import ScriptedModelServer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS-review.md"
NAME = "analysis.ipynb"
FINDING = {
    "title": "Quarter-on-quarter growth divided by the wrong quarter",
    "body": "Growth from Q3 to Q4 is `(q4 - q3) / q3`; dividing by `q4` understates every "
    "increase and overstates every decrease, so the growth table and the summary are wrong.",
    "confidence": 0.9,
}
VERDICT = "The growth rates are computed against the wrong base quarter."

Counter = Callable[[str], int]


def repository(folder: Path) -> Path:
    """A git repository whose uncommitted change is the new notebook; its path."""
    repo = folder / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("# Sales reports\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    date = {"GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
    for args in (["init", "-q"], ["add", "README.md"], ["commit", "-qm", "start"]):
        subprocess.run([*git, *args], cwd=repo, check=True, env={**os.environ, **date})
    (repo / NAME).write_text(json.dumps(notebook(), indent=1) + "\n", encoding="utf-8")
    return repo


def scripts(repo: Path) -> dict[str, dict[str, Any]]:
    """The scripted model's replies for each side: the same finding and verdict."""
    text = (repo / NAME).read_text(encoding="utf-8")
    file_line = next(n for n, line in enumerate(text.splitlines(), 1) if BUG_LINE in line)
    cell = next(c for c in notebook()["cells"] if c["id"] == BUG_CELL)
    line = next(n for n, s in enumerate(cell["source"], 1) if BUG_LINE in s)
    codex_review = {
        "findings": [
            {
                "title": f"[P1] {FINDING['title']}",
                "body": FINDING["body"],
                "confidence_score": FINDING["confidence"],
                "priority": 1,
                "code_location": {
                    "absolute_file_path": str(repo / NAME),
                    "line_range": {"start": file_line, "end": file_line},
                },
            }
        ],
        "overall_correctness": "patch is incorrect",
        "overall_explanation": VERDICT,
        "overall_confidence_score": 0.8,
    }
    finding = {"severity": "high", "cell_id": BUG_CELL, "line": line, **FINDING}
    verdict = {"verdict": "needs_changes", "explanation": VERDICT, "confidence": 0.8}
    return {
        "ours": {
            "steps": [
                {
                    "calls": [
                        {"name": "report_finding", "arguments": finding, "id": "call_1"},
                        {"name": "submit_verdict", "arguments": verdict, "id": "call_2"},
                    ]
                },
                "Review done: one finding; the notebook needs changes.",
            ]
        },
        "codex": {
            "steps": [
                {
                    "calls": [
                        {
                            "name": "exec_command",
                            "arguments": {"cmd": f"cat {NAME}"},
                            "id": "call_1",
                        }
                    ]
                },
                json.dumps(codex_review),
            ]
        },
    }


def review(codex: str, tiktoken_file: str) -> dict[str, list[dict[str, Any]]]:
    """Each side's review of the notebook: the request bodies it sent, in order."""
    jupyter = str(Path(sys.executable).parent / "jupyter")
    commands = {"ours": [jupyter, "codexmax", "review", NAME, "--base", "HEAD", "--format", "json"]}
    if codex:
        commands["codex"] = [codex, "exec", "review", "--uncommitted"]
    sent: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        repo = repository(Path(tmp))
        for side, command in commands.items():
            with ScriptedModelServer(scripts(repo)[side]) as server:
                env = scripted_env(server.base_url, Path(tmp) / side, tiktoken_file=tiktoken_file)
                done = subprocess.run(
                    command, cwd=repo, env=env, capture_output=True, text=True, check=False
                )
                expect = "needs_changes" if side == "ours" else str(FINDING["title"])
                if done.returncode != 0 or expect not in done.stdout or server.failures:
                    raise SystemExit(
                        f"{' '.join(command[:3])} failed ({done.returncode}):\n"
                        f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}\n{server.failures}"
                    )
                sent[side] = [r.body for r in server.requests if r.endpoint == "responses"]
    return sent


def tokens(bodies: list[dict[str, Any]], count: Counter) -> dict[str, int]:
    """All the requests' tokens, and the share of the input items carrying the notebook."""
    total = notebook_share = 0
    for body in bodies:
        parts = request_parts(body)
        total += sum(json_tokens(value, count) for value in parts.values())
        carrying = [i for i in parts["input"] if MARK in json.dumps(i, ensure_ascii=False)]
        notebook_share += json_tokens(carrying, count)
    if not notebook_share:
        raise SystemExit("no request carried the notebook")
    return {"requests": len(bodies), "total": total, "notebook": notebook_share}


def main() -> int:
    tiktoken_file = ensure()
    real = TokenCounter(tiktoken_file=str(tiktoken_file)) if tiktoken_file else None
    name, count = (
        ("o200k_base", real.count) if real and real.exact else ("estimate", estimate_tokens)
    )
    codex = codex_bin()
    version = codex_version(codex)
    sent = review(codex, str(tiktoken_file or ""))
    measured = {side: tokens(bodies, count) for side, bodies in sent.items()}
    raw = json.dumps(notebook(), indent=1) + "\n"
    when = datetime.datetime.now(datetime.timezone.utc)
    lines = [
        "# Benchmark: tokens sent to the model to review a 50-cell notebook",
        "",
        f"Run {when:%Y-%m-%d %H:%M} UTC on {machine()} by `benchmarks/bench_review.py`, "
        f"against the scripted model server; {name} tokens. The notebook: 50 cells (20 "
        f"markdown, 30 code with outputs, one PNG chart), {len(raw):,} bytes, "
        f"{count(raw):,} tokens as raw JSON. Peer: "
        + (f"the Codex CLI ({version}, model `{CODEX_MODEL}`)." if codex else "none given."),
        "",
        "| | requests | tokens sent (all requests) | of which the notebook |",
        "| --- | ---: | ---: | ---: |",
    ]
    labels = {
        "ours": "`jupyter codexmax review --base HEAD`",
        "codex": "`codex exec review --uncommitted`",
    }
    for side, m in measured.items():
        lines.append(f"| {labels[side]} | {m['requests']} | {m['total']:,} | {m['notebook']:,} |")
    lines += [
        "",
        "Each side's scripted model gives the same finding and verdict. Ours is shown the "
        "cells' sources with line numbers in its first message (outputs only through "
        f"`read_notebook`, not called here); Codex's model first reads the file with `cat "
        f"{NAME}`, whose output Codex cuts to its 10,000-token budget (estimated at 4 bytes "
        "a token: the PNG's base64 is cut in the middle, not dropped). Each request counts as "
        "instructions + tools + input, each as its JSON text.",
    ]
    if "codex" in measured:
        ratio = measured["ours"]["total"] / measured["codex"]["total"]
        lines.append(f"Ratio ours / Codex CLI: {ratio:.2f}.")
    text = "\n".join(lines) + "\n"
    RESULTS.write_text(text)
    print(text)
    peer = measured.get("codex")
    table = f"review: tokens sent to review a 50-cell notebook ({name})"
    note = (
        f"Codex CLI {version}: `codex exec review --uncommitted`, its model reading the file "
        "with `cat` (outputs and the PNG's base64 included, cut at Codex's output budget); "
        "ours is shown the cells' sources, outputs only if its model reads them "
        "(`read_notebook`, not called here)"
    )
    report(
        [
            Row(
                table,
                "all requests",
                "tokens",
                measured["ours"]["total"],
                {"codex": peer["total"] if peer else None},
                note=note,
            ),
            Row(
                table,
                "of which the notebook",
                "tokens",
                measured["ours"]["notebook"],
                {"codex": peer["notebook"] if peer else None},
            ),
        ],
        details=RESULTS.name,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
