"""Benchmark: the tokens a notebook and a request's fixed part cost, beside the Codex CLI.

(a) **The notebook view** against the raw .ipynb JSON, over every notebook of
``../shared/corpus`` that reads. The raw JSON is what the Codex CLI sends when it reads a
notebook (``cat``). Target (issue 3): median at most 12 % of the raw JSON's tokens, with
every source line present.

(b) **The fixed part of the first request**: ``jupyter codexmax run work.ipynb --task T``
(the agent; its counterpart in the Codex CLI is ``codex exec T``), ``jupyter codexmax ask
T`` (one question, no tools) and ``codex exec --skip-git-repo-check T`` are run once each
with the same task ``T``, in the same folder (a one-cell notebook), against the scripted
model server, and each one's first request body is taken as the server recorded it. Each
is split by ``results.request_parts`` (the same rule for both: the ``instructions`` field,
or the base prompt sent as the first developer/system message; the tool schemas; the rest
of the input) and the task's own message, the last input item, whose text must be exactly
``T``, is removed. What is left is the fixed part: **instructions**, **tools** and **added
context** (the other input items: Codex's permissions, skills and environment messages;
our workspace line and the notebook view). Each part counts as its JSON text. Target
(issue 3): at most 4,000 tokens. The Codex body is checked to be the real one (its long
base prompt and its ``exec_command`` tool) before it is counted.

Counts use tiktoken's o200k_base (the GPT-5 family's encoding) when ``benchmarks/o200k.py``
can provide it, else the documented estimate (said in the results).

    .venv/bin/python benchmarks/bench_view.py     # writes benchmarks/RESULTS-view.md
    CODEX_BIN=/path/to/codex .venv/bin/python benchmarks/bench_view.py
"""

from __future__ import annotations

import datetime
import statistics
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

from jupyter_codexmax.agent.tokens import TokenCounter, estimate_tokens  # noqa: E402
from jupyter_codexmax.notebook.document import NotebookError  # noqa: E402
from jupyter_codexmax.notebook.file import FileNotebook  # noqa: E402
from jupyter_codexmax.notebook.view import render_cells  # noqa: E402
from jupyter_codexmax.testing import ScriptedModelServer  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
RESULTS = ROOT / "benchmarks" / "RESULTS-view.md"
TASK = "Explain in two sentences what the notebook work.ipynb computes."
PARTS = ("instructions", "tools", "added context")
FIXED_TARGET = 4000

Counter = Callable[[str], int]


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


def corpus(counters: dict[str, Counter]) -> list[dict[str, Any]]:
    """Per notebook: (view, raw JSON) tokens by each counter, and whether every line is in."""
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
    return rows


def first_requests(codex: str, tiktoken_file: str) -> dict[str, dict[str, Any]]:
    """Each command's first request body, as the scripted server recorded it."""
    import nbformat

    jupyter = str(Path(sys.executable).parent / "jupyter")
    commands = {
        "run": [jupyter, "codexmax", "run", "work.ipynb", "--task", TASK, "--quiet"],
        "ask": [jupyter, "codexmax", "ask", TASK],
    }
    if codex:
        commands["codex"] = commands["codex default"] = [
            codex,
            "exec",
            "--skip-git-repo-check",
            TASK,
        ]
    bodies: dict[str, dict[str, Any]] = {}
    script = {"steps": ["Done."], "after_last": "repeat"}
    with ScriptedModelServer(script) as server, tempfile.TemporaryDirectory() as tmp:
        env = scripted_env(server.base_url, Path(tmp), tiktoken_file=tiktoken_file)
        # Codex's own default model (no model in its config.toml)
        default = scripted_env(server.base_url, Path(tmp) / "default", codex_model="")
        work = Path(tmp) / "work"
        work.mkdir()
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell("total = sum(range(10))", id="a1")]
        nbformat.write(notebook, work / "work.ipynb")
        for name, command in commands.items():
            seen = len(server.requests)
            done = subprocess.run(
                command,
                cwd=work,
                env=default if name == "codex default" else env,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0 or len(server.requests) == seen:
                raise SystemExit(f"{' '.join(command[:3])} failed:\n{done.stdout}\n{done.stderr}")
            bodies[name] = server.requests[seen].body
    return bodies


def _text(item: dict[str, Any]) -> str:
    return "".join(c.get("text", "") for c in item.get("content") or [])


def fixed_parts(body: dict[str, Any], count: Counter) -> dict[str, int]:
    """The first request's tokens that do not depend on the task, by part."""
    parts = request_parts(body)
    *context, task = parts["input"]
    if task.get("role") != "user" or _text(task) != TASK:
        raise SystemExit(f"the first request's last input item is not the task: {task!r:.300}")
    return {
        "instructions": json_tokens(parts["instructions"], count),
        "tools": json_tokens(parts["tools"], count),
        "added context": json_tokens(context, count),
    }


def check_codex(body: dict[str, Any]) -> list[str]:
    """The Codex CLI's tool names, once its body is known to be the real one."""
    parts = request_parts(body)
    names = [t.get("name") or t.get("type", "") for t in parts["tools"]]
    if len("".join(parts["instructions"])) < 5000 or "exec_command" not in names:
        raise SystemExit(f"the Codex CLI's first request is not what it should be: {body!r:.500}")
    return names


def main() -> int:
    tiktoken_file = ensure()
    real = TokenCounter(tiktoken_file=str(tiktoken_file)) if tiktoken_file else None
    counters: dict[str, Counter] = {"estimate": estimate_tokens}
    if real is not None and real.exact:
        counters = {"o200k_base": real.count, "estimate": estimate_tokens}
    first = next(iter(counters))
    count = counters[first]
    codex = codex_bin()
    version = codex_version(codex)
    rows = corpus(counters)
    bodies = first_requests(codex, str(tiktoken_file or ""))
    fixed = {name: fixed_parts(body, count) for name, body in bodies.items()}
    codex_tools = check_codex(bodies["codex"]) if codex else []
    columns = {"run": "`jupyter codexmax run`", "ask": "`jupyter codexmax ask`"}
    if codex:
        default_model = bodies["codex default"].get("model", "?")
        columns["codex"] = f"`codex exec` ({CODEX_MODEL})"
        columns["codex default"] = f"`codex exec` ({default_model}, its default)"

    when = datetime.datetime.now(datetime.timezone.utc)
    lines = [
        "# Benchmark: the notebook view's tokens, and the fixed part of the first request",
        "",
        f"Run {when:%Y-%m-%d %H:%M} UTC on {machine()} by `benchmarks/bench_view.py`. "
        f"Tokens: {', '.join(counters)}"
        + (
            " (o200k_base from js-tiktoken's ranks, checked against tiktoken's official hash)"
            if "o200k_base" in counters
            else ""
        )
        + ". Peer: "
        + (f"the Codex CLI ({version}, model `{CODEX_MODEL}`)." if codex else "none given."),
        "",
        f"## The notebook view against the raw .ipynb JSON ({len(rows)} notebooks)",
        "",
        "The raw JSON is what the Codex CLI sends when it reads a notebook with `cat`.",
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
    views = [r[first][0] for r in rows]
    raws = [r[first][1] for r in rows]
    ratio = statistics.median(v / r for v, r in zip(views, raws, strict=True))
    lines += [
        f"- every source line present: {complete}/{len(rows)} notebooks",
        f"- {first}: median per notebook {statistics.median(views):,.0f} (view) against "
        f"{statistics.median(raws):,.0f} (raw JSON); total {sum(views):,} against "
        f"{sum(raws):,}",
        "",
        "## The fixed part of the first request",
        "",
        f"The same task, `{TASK}`, in a folder holding a one-cell `work.ipynb`; the first "
        "request each client sends to the scripted server, less the task's own message "
        f"({first} tokens of each part's JSON text).",
        "",
        "| part | " + " | ".join(columns.values()) + " |",
        "| --- |" + " ---: |" * len(columns),
    ]
    for part in (*PARTS, "total"):
        cells = [
            f"{fixed[n][part] if part in fixed[n] else sum(fixed[n].values()):,}" for n in columns
        ]
        lines.append(f"| {part} | {' | '.join(cells)} |")
    ours_fixed = sum(fixed["run"].values())
    lines += [
        "",
        f"Target: the agent's fixed part at most {FIXED_TARGET:,} tokens: "
        f"**{'met' if ours_fixed <= FIXED_TARGET else 'NOT met'}** ({ours_fixed:,}).",
    ]
    if codex:
        lines.append(
            f"Codex CLI tools in its first request ({CODEX_MODEL}): {', '.join(codex_tools)}. "
            f"Its default model, {default_model}, is offered one JavaScript `exec` tool "
            '("code mode") that calls the others, sent as an input item.'
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

    peer = fixed.get("codex")
    view_met = ratio <= 0.12 and complete == len(rows)
    table = f"view: a notebook as the model reads it ({first} tokens)"
    request = f"view: fixed part of the first request ({first} tokens)"
    codex_total = sum(peer.values()) if peer else None
    report(
        [
            Row(
                table,
                "median per notebook",
                "tokens",
                statistics.median(views),
                {"codex": statistics.median(raws)},
                note=f"Codex CLI: the raw .ipynb JSON (what `cat` gives), {len(rows)} notebooks",
            ),
            Row(
                table,
                f"total over {len(rows)} notebooks",
                "tokens",
                sum(views),
                {"codex": sum(raws)},
            ),
            Row(
                table,
                "median ratio to the raw JSON",
                "%",
                100 * ratio,
                {"codex": 100.0},
                target="≤ 12 % (issue 3)",
                met=view_met,
            ),
            Row(
                request,
                "total (`run` / `codex exec`)",
                "tokens",
                ours_fixed,
                {"codex": codex_total},
                target=f"≤ {FIXED_TARGET:,} tokens (issue 3)",
                met=ours_fixed <= FIXED_TARGET,
                note=f"first request less the task; Codex CLI {version}, model {CODEX_MODEL}: "
                "the newest model in its catalogue offered plain function tools, as ours is "
                "(it does not know gpt-5.1-codex-max); its default model's request is larger, "
                "in the row below",
            ),
            *(
                Row(
                    request,
                    part,
                    "tokens",
                    fixed["run"][part],
                    {"codex": peer[part] if peer else None},
                )
                for part in PARTS
            ),
            Row(
                request,
                "total, Codex on its default model",
                "tokens",
                ours_fixed,
                {"codex": sum(fixed["codex default"].values()) if peer else None},
                note="Codex CLI's default model: " + columns.get("codex default", "not run"),
            ),
            Row(
                request,
                "total, `ask` (a question, no tools: no peer counterpart)",
                "tokens",
                sum(fixed["ask"].values()),
            ),
        ],
        details=RESULTS.name,
    )
    return 0 if view_met and ours_fixed <= FIXED_TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
