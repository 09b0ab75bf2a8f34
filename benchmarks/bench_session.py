"""Benchmark: long sessions (issue 4).

Targets:

- the session's metadata size against session length: flat at the cap (64 KiB) however long
  the session;
- local compaction work, the model excluded: at most 100 ms;
- resume, from the notebook's metadata to the first request sent: at most 200 ms (the model
  and the kernel start excluded);
- the peak memory of a 2,000,000-token session (reported).

The model is taken out with an in-memory httpx transport that answers at once, as the scripted
server would (its answers are rendered by the same code); the time spent inside the transport
is subtracted where the model is to be excluded. The peak memory is of a real
``jupyter codexmax run`` process against the scripted server, beside a one-step run.

    .venv/bin/python benchmarks/bench_session.py     # writes benchmarks/RESULTS-session.md
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nbformat
from nbformat import v4

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import o200k  # noqa: E402
from results import Row, report  # noqa: E402

from jupyter_codexmax.agent.core import Agent  # noqa: E402
from jupyter_codexmax.config import CodexMax, load_settings  # noqa: E402
from jupyter_codexmax.notebook.file import FileNotebook  # noqa: E402
from jupyter_codexmax.providers import open_provider  # noqa: E402
from jupyter_codexmax.providers.items import function_call_output, user_message  # noqa: E402
from jupyter_codexmax.session.store import read_record  # noqa: E402
from jupyter_codexmax.testing import ScriptedModelServer, render  # noqa: E402
from jupyter_codexmax.testing.script import Compaction, load_script  # noqa: E402
from jupyter_codexmax.workspace import Workspace  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS-session.md"
CHECKPOINTS = (1, 3, 10, 30, 100, 300, 1000, 2000)
COMPACTION_TARGET_MS = 100.0
RESUME_TARGET_MS = 200.0
COUNT_MS: list[float] = []
WORDS = [
    "the",
    "quarterly",
    "revenue",
    "by",
    "region",
    "looks",
    "off",
    "because",
    "the",
    "join",
    "drops",
    "late",
    "orders",
]


def prose(words: int, seed: int) -> str:
    return " ".join(WORDS[(seed + n) % len(WORDS)] for n in range(words))


def make_notebook(path: Path, cells: int = 30) -> None:
    nb = v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    }
    for number in range(cells):
        cell = v4.new_code_cell(f"x{number} = {number}\nprint(x{number} * 2)")
        cell.outputs = [v4.new_output("stream", name="stdout", text=f"{number * 2}\n")]
        cell.execution_count = number + 1
        nb.cells.append(cell)
    path.write_text(nbformat.writes(nb))


class Model:
    """An in-memory stand-in for the model endpoints: each request is answered at once by
    ``answer(body)`` (a scripted step), rendered as the scripted server renders it. Counts
    the time spent answering, to take it out of measurements."""

    def __init__(self, answer: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.answer = answer
        self.seconds = 0.0
        self.requests = 0
        self.first_request_at: float | None = None
        self._ids = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        arrived = time.perf_counter()
        if self.first_request_at is None:
            self.first_request_at = arrived
        self.requests += 1
        self._ids += 1
        body = json.loads(request.content)
        size = len(request.content)
        path = request.url.path
        if path.endswith("/responses/compact"):
            data = render.compact_object(Compaction(), body, f"resp_{self._ids}", size)
            response = httpx.Response(200, json=data)
        else:
            reply = load_script([self.answer(body)]).steps[0]
            if path.endswith("/chat/completions"):
                payloads = render.chat_stream(reply, body, f"chatcmpl-{self._ids}", size)  # type: ignore[arg-type]
                text = "".join(
                    p + "\n\n" if p.startswith(":") else f"data: {p}\n\n" for p in payloads
                )
            else:
                events = render.responses_stream(reply, body, f"resp_{self._ids}", size)  # type: ignore[arg-type]
                text = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
            response = httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=text.encode()
            )
        self.seconds += time.perf_counter() - arrived
        return response


def settings_for(tmp: Path, *, provider: str = "responses", journal: bool = True) -> CodexMax:
    os.environ["JUPYTER_DATA_DIR"] = str(tmp / "data")
    settings = load_settings(read_files=False)
    settings.base_url = "http://bench.invalid/v1"
    settings.api_key = "bench-key-000000"
    settings.provider = provider
    settings.journal = journal
    return settings


def agent_for(settings: CodexMax, path: Path, model: Model, **kwargs: Any) -> Agent:
    return Agent(
        settings,
        workspace=Workspace(path.parent.resolve()),
        notebook=FileNotebook.open(path),
        provider=open_provider(settings, httpx.MockTransport(model)),
        approval="auto",
        **kwargs,
    )


# -- metadata size against session length -------------------------------------------------------


async def session_sizes(tmp: Path) -> tuple[list[tuple[int, int, int, int]], Path]:
    """(turns, record bytes, compactions, context tokens) at each checkpoint."""
    path = tmp / "long.ipynb"
    make_notebook(path)
    settings = settings_for(tmp)
    settings.max_steps = 10
    turn = 0

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        last = body["input"][-1]
        if last.get("type") == "function_call_output":
            return {"text": prose(120, turn)}
        return {"calls": [{"name": "read_notebook", "arguments": {"cell_ids": ["c0001"]}}]}

    model = Model(answer)
    agent = agent_for(settings, path, model)
    sizes = []
    try:
        for turn in range(1, CHECKPOINTS[-1] + 1):
            await agent.run_turn(f"Turn {turn}: " + prose(100, turn))
            if turn in CHECKPOINTS:
                record = read_record(FileNotebook.open(path).metadata)
                assert record is not None
                sizes.append((turn, record.size(), record.compactions, record.context_tokens))
    finally:
        await agent.aclose()
    return sizes, path


# -- resume -------------------------------------------------------------------------------------


async def resume_once(tmp: Path, path: Path, journal: bool) -> float:
    """Milliseconds from nothing (the notebook on disk) to the first request sent."""
    settings = settings_for(tmp, journal=journal)
    model = Model(lambda body: {"text": "ok"})
    started = time.perf_counter()
    doc = FileNotebook.open(path)
    record = read_record(doc.metadata, str(path))
    agent = Agent(
        settings,
        workspace=Workspace(path.parent.resolve()),
        notebook=doc,
        provider=open_provider(settings, httpx.MockTransport(model)),
        approval="auto",
        resume=record,
        save_session=_no_save,
    )
    try:
        await agent.run_turn("Carry on.")
    finally:
        await agent.aclose()
    assert model.first_request_at is not None
    return (model.first_request_at - started) * 1000


async def _no_save(record: dict[str, Any]) -> None:
    """The measured resumes do not write the notebook back (each starts from the same one)."""


# -- local compaction ---------------------------------------------------------------------------


def heavy_history(tokens: int) -> list[dict[str, Any]]:
    """A tool-heavy history of about ``tokens`` tokens (as the 4-bytes estimate counts)."""
    history: list[dict[str, Any]] = [user_message("Profile the pipeline and fix what is slow.")]
    size = 0
    number = 0
    while size // 4 < tokens:
        number += 1
        lines = [f"{n:4d}\tdef step_{n}(frame): return frame.{prose(6, n)}" for n in range(120)]
        added = [
            {
                "type": "function_call",
                "call_id": f"call_{number}",
                "name": "read_file",
                "arguments": json.dumps({"path": f"src/module_{number}.py"}),
            },
            function_call_output(f"call_{number}", "\n".join(lines)),
        ]
        if number % 10 == 0:
            added.append(user_message(f"Note {number}: " + prose(60, number)))
        history.extend(added)
        size += sum(len(json.dumps(i)) for i in added)
    return history


async def compaction_once(tmp: Path, mode: str, tiktoken_file: str) -> tuple[float, int, int]:
    """(milliseconds of our own work, tokens before, tokens after) for one local compaction
    of a history at the threshold of a 272k window."""
    settings = settings_for(tmp, provider="chat", journal=False)
    settings.tokenizer = mode
    settings.tiktoken_file = tiktoken_file
    path = tmp / "compact.ipynb"
    if not path.exists():
        make_notebook(path)
    model = Model(lambda body: {"text": "SUMMARY: " + prose(400, 1)})
    agent = agent_for(settings, path, model, save_session=_no_save)
    agent.counter.count("warm up")  # the encoding's one-time load is not compaction work
    history = heavy_history(235_000)
    agent.history = [*agent._head(), *history]
    agent.meter.forget()
    # The agent counts each item once, when it joins the history (part of every step's
    # cost, measured by bench_step.py); compaction reuses those counts.
    counted = time.perf_counter()
    before = agent.context_tokens()
    COUNT_MS.append((time.perf_counter() - counted) * 1000)
    started = time.perf_counter()
    try:
        await agent.compact()
        took = time.perf_counter() - started - model.seconds
    finally:
        await agent.aclose()
    return took * 1000, before, agent.context_tokens()


# -- peak memory --------------------------------------------------------------------------------


def peak_memory(tmp: Path, steps: int) -> dict[str, Any]:
    """A real ``jupyter codexmax run`` of ``steps`` reads of a 200 KB file, against the
    scripted server: its report (steps, usage, compactions, peak memory)."""
    folder = tmp / f"memory{steps}"
    folder.mkdir()
    (folder / "big.txt").write_text(
        "".join(f"{n:05d} the quick brown fox jumps over the lazy dog\n" for n in range(4_000))
    )
    path = folder / "nb.ipynb"
    make_notebook(path, 3)
    script = {
        "steps": [
            {"calls": [{"name": "read_file", "arguments": {"path": "big.txt"}}], "repeat": steps},
            {"text": "done"},
        ]
    }
    report = folder / "report.json"
    with ScriptedModelServer(script) as server:
        env = {
            **os.environ,
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "bench-key-000000",
            "JUPYTER_DATA_DIR": str(folder / "data"),
            "CODEXMAX_TOKENIZER": "estimate",
        }
        subprocess.run(
            [str(Path(sys.executable).parent / "jupyter-codexmax"), "run", str(path), "--task",
             "Read big.txt again and again.", "--full-auto", f"--max-steps={steps + 5}",
             "--report", str(report), "--quiet"],
            env=env, capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip
    data = json.loads(report.read_text())
    entry = data["notebooks"][0]
    return {
        "steps": entry["steps"],
        "tokens": entry["usage"]["input_tokens"] + entry["usage"]["output_tokens"],
        "compactions": entry["session"]["compactions"],
        "peak_mb": data["peak_memory_mb"],
        "seconds": entry["wall_time"],
    }


# -- the report ---------------------------------------------------------------------------------


async def measure(tmp: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    print("session sizes ...", file=sys.stderr)
    results["sizes"], long_path = await session_sizes(tmp)
    print("resume ...", file=sys.stderr)
    for journal in (True, False):
        times = [await resume_once(tmp, long_path, journal) for _ in range(15)]
        results[f"resume_{'journal' if journal else 'record'}"] = times
    print("compaction ...", file=sys.stderr)
    tiktoken_file = o200k.ensure()
    modes = [("estimate", "")] + ([("auto", str(tiktoken_file))] if tiktoken_file else [])
    for mode, file in modes:
        COUNT_MS.clear()
        runs = [await compaction_once(tmp, mode, file) for _ in range(7)]
        results[f"compaction_{mode}"] = runs
        results[f"count_ms_{mode}"] = list(COUNT_MS)
    print("peak memory ...", file=sys.stderr)
    results["memory_short"] = peak_memory(tmp, 1)
    results["memory_long"] = peak_memory(tmp, 320)
    return results


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        results = asyncio.run(measure(Path(tmp)))
    sizes = results["sizes"]
    cap = CodexMax().session_cap
    flat = [size for turns, size, _, _ in sizes if turns >= 100]
    sizes_ok = all(size <= cap for _, size, _, _ in sizes) and max(flat) - min(flat) <= cap * 0.1
    resume_j = statistics.median(results["resume_journal"])
    resume_r = statistics.median(results["resume_record"])
    resume_ok = max(resume_j, resume_r) <= RESUME_TARGET_MS
    compaction_lines = []
    compaction_ok = True
    for key, label in (("compaction_auto", "tiktoken o200k_base (the default)"),
                       ("compaction_estimate", "the 4-bytes estimate")):  # fmt: skip
        if key not in results:
            compaction_lines.append(f"- {label}: not measured (o200k_base not available)")
            continue
        runs = results[key]
        median = statistics.median(r[0] for r in runs)
        compaction_ok &= median <= COMPACTION_TARGET_MS
        compaction_lines.append(
            f"- {label}: median **{median:.1f} ms** (min {min(r[0] for r in runs):.1f}, max "
            f"{max(r[0] for r in runs):.1f}); {runs[0][1]:,} -> {runs[0][2]:,} tokens"
        )
    count_ms = results.get("count_ms_auto")
    if count_ms:
        compaction_lines.append(
            f"- for scale: counting that whole history from nothing with o200k_base takes "
            f"{statistics.median(count_ms):.0f} ms; the agent never does it at once, it counts "
            "each item when it is added"
        )
    short, long = results["memory_short"], results["memory_long"]
    verdict = {True: "met", False: "NOT met"}
    lines = [
        "# Benchmark: long sessions",
        "",
        f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by "
        "`benchmarks/bench_session.py` (see its docstring for the method).",
        "",
        f"## Metadata size against session length: **{verdict[sizes_ok]}**",
        "",
        f"Turns of a real agent (a tool call and a 120-word answer each; a 100-word user "
        f"message), the record read back from the notebook after each checkpoint. Cap: "
        f"{cap:,} bytes.",
        "",
        "| turns | record bytes | compactions | context tokens |",
        "| ---: | ---: | ---: | ---: |",
        *[f"| {t:,} | {s:,} | {c} | {k:,} |" for t, s, c, k in sizes],
        "",
        f"## Resume to the first request: **{verdict[resume_ok]}** (target {RESUME_TARGET_MS:g} "
        "ms)",
        "",
        f"From the notebook on disk after {CHECKPOINTS[-1]:,} turns (opening it, reading and "
        "validating the record, rebuilding the history with a fresh view of the notebook) to "
        "the first request arriving at the transport; 15 runs each.",
        "",
        f"- exact resume from the journal ({CHECKPOINTS[-1]:,} turns of it): median "
        f"**{resume_j:.1f} ms** (max {max(results['resume_journal']):.1f})",
        f"- rebuilt from the record (journal off): median **{resume_r:.1f} ms** "
        f"(max {max(results['resume_record']):.1f})",
        "",
        f"## Local compaction work: **{verdict[compaction_ok]}** (target "
        f"{COMPACTION_TARGET_MS:g} ms)",
        "",
        "A tool-heavy history at the threshold of a 272k window, compacted locally (Chat "
        "Completions provider: no compact endpoint), the model's time taken out; 7 runs each: "
        "fitting the summary request, building and serializing it, parsing the answer, the "
        "retained messages, the guard's count of the new history, the ledger, the session "
        "record.",
        "",
        *compaction_lines,
        "",
        "## Peak memory of a 2,000,000-token session",
        "",
        f"`jupyter codexmax run` against the scripted server: {long['steps']} steps, "
        f"{long['tokens']:,} tokens of reported usage, {long['compactions']} compactions, "
        f"{long['seconds']:.1f} s: peak **{long['peak_mb']} MiB**; a one-step run in the same "
        f"conditions: {short['peak_mb']} MiB (ratio {long['peak_mb'] / short['peak_mb']:.2f}).",
        "",
    ]
    text = "\n".join(lines)
    RESULTS.write_text(text)
    print(text)
    report_rows(results, cap, sizes_ok, resume_ok)
    return 0 if sizes_ok and resume_ok and compaction_ok else 1


def report_rows(results: dict[str, Any], cap: int, sizes_ok: bool, resume_ok: bool) -> None:
    """The summary rows for ``./dev bench`` (no peer keeps a session in a notebook)."""
    table = "compaction: the stored session's size against session length"
    sizes = results["sizes"]
    rows = [
        Row(table, f"record after {turns:,} turn{'s' * (turns != 1)}", "bytes", size)
        for turns, size, _, _ in sizes
    ]
    rows.append(
        Row(table, "the largest record (signed, as stored)", "bytes",
            max(size for _, size, _, _ in sizes),
            target=f"≤ the {cap:,}-byte cap, flat from 100 turns on (issue 4)", met=sizes_ok)
    )  # fmt: skip
    for key, label in (("compaction_auto", "o200k_base counting"),
                       ("compaction_estimate", "estimated counting")):  # fmt: skip
        runs = results.get(key)
        ms = statistics.median(r[0] for r in runs) if runs else None
        rows.append(
            Row("compaction: local work at a 272k window", f"median, {label}", "ms", ms,
                target=f"≤ {COMPACTION_TARGET_MS:g} ms (issue 4)",
                met=None if ms is None else ms <= COMPACTION_TARGET_MS)
        )  # fmt: skip
    for key, label in (("resume_journal", "from the journal"),
                       ("resume_record", "rebuilt from the record")):  # fmt: skip
        ms = statistics.median(results[key])
        rows.append(
            Row("compaction: resume from the notebook to the first request", f"median, {label}",
                "ms", ms, target=f"≤ {RESUME_TARGET_MS:g} ms (issue 4)",
                met=ms <= RESUME_TARGET_MS)
        )  # fmt: skip
    short, long = results["memory_short"], results["memory_long"]
    table = "compaction: peak memory of a 2,000,000-token `run`"
    rows += [
        Row(table, f"{long['steps']} steps, {long['compactions']} compactions, "
            f"{long['tokens']:,} tokens of reported usage, summed over its requests", "MiB",
            long["peak_mb"], target="reported (issue 4)"),
        Row(table, "a one-step run, for scale", "MiB", short["peak_mb"]),
    ]  # fmt: skip
    report(rows, details=RESULTS.name)


if __name__ == "__main__":
    raise SystemExit(main())
