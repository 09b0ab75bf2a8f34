"""Benchmark: the agent's local overhead per step, on a 200-cell notebook.

Target (issue 3): median at most 5 ms per step for building the request, parsing the
streamed answer, dispatching a no-op tool and updating the agent's state. The network and
the model are taken out: an in-memory httpx transport answers every request at once with a
prerecorded Responses API stream (a function call, then usage), as the scripted server
would. The history holds the 200-cell notebook's view (the agent reads it first) and grows
by a call and its output each step, as in a real session.

    .venv/bin/python benchmarks/bench_step.py     # writes benchmarks/RESULTS-step.md
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import nbformat
from nbformat import v4

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jupyter_codexmax import events as ev  # noqa: E402
from jupyter_codexmax.agent.core import Agent  # noqa: E402
from jupyter_codexmax.config import load_settings  # noqa: E402
from jupyter_codexmax.notebook.file import FileNotebook  # noqa: E402
from jupyter_codexmax.providers import open_provider  # noqa: E402
from jupyter_codexmax.testing import render  # noqa: E402
from jupyter_codexmax.testing.script import load_script  # noqa: E402
from jupyter_codexmax.tools import default_tools  # noqa: E402
from jupyter_codexmax.tools.registry import Tool, ToolContext, ToolRegistry, ToolResult  # noqa: E402
from jupyter_codexmax.workspace import Workspace  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS-step.md"
STEPS = 200
TARGET_MS = 5.0


class Noop(Tool):
    name = "noop"
    description = "Does nothing."
    parameters = {"type": "object", "properties": {}, "additionalProperties": False}  # noqa: RUF012

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        return ToolResult("ok", "ok")


def notebook(path: Path, cells: int) -> None:
    nb = v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    }
    for number in range(cells):
        if number % 4 == 0:
            cell = v4.new_markdown_cell(f"## Section {number // 4}\nNotes about step {number}.")
        else:
            cell = v4.new_code_cell(
                f"x{number} = {number}\ny{number} = x{number} * 2\nprint(x{number}, y{number})"
            )
            cell.execution_count = number
            cell.outputs = [v4.new_output("stream", name="stdout", text=f"{number} {number * 2}\n")]
        nb.cells.append(cell)
    path.write_text(nbformat.writes(nb))


def stream_body(step: dict[str, Any]) -> bytes:
    reply = load_script([step]).steps[0]
    events = render.responses_stream(reply, {"model": "bench"}, "resp_bench", 10_000)  # type: ignore[arg-type]
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


async def measure() -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.ipynb"
        notebook(path, 200)
        os.environ["CODEXMAX_TOKENIZER"] = "estimate"
        os.environ["JUPYTER_DATA_DIR"] = str(Path(tmp) / "data")  # the journal goes there
        settings = load_settings(read_files=False)
        settings.base_url = "http://bench.invalid/v1"
        settings.api_key = "bench-key-000000"
        settings.max_steps = STEPS + 5
        read = stream_body(
            {
                "calls": [{"name": "read_notebook", "arguments": {}}],
                "usage": {"input_tokens": 20_000, "output_tokens": 20},
            }
        )
        noop = stream_body(
            {
                "calls": [{"name": "noop", "arguments": {}}],
                "usage": {"input_tokens": 21_000, "output_tokens": 12},
            }
        )
        done = stream_body({"text": "done", "usage": {"input_tokens": 30_000, "output_tokens": 3}})
        count = 0

        def handler(request: httpx.Request) -> httpx.Response:
            nonlocal count
            count += 1
            body = read if count == 1 else noop if count <= STEPS + 1 else done
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

        doc = FileNotebook.open(path)
        tools = ToolRegistry([*default_tools().tools.values(), Noop()])
        marks: list[float] = []

        def on_event(event: ev.Event) -> None:
            if isinstance(event, ev.StepStarted):
                marks.append(time.perf_counter())

        agent = Agent(
            settings,
            workspace=Workspace(Path(tmp).resolve()),
            notebook=doc,
            provider=open_provider(settings, httpx.MockTransport(handler)),
            tools=tools,
            approval="auto",
            on_event=on_event,
        )
        await agent.run_turn("benchmark")
        marks.append(time.perf_counter())
        await agent.aclose()
    # Step 1 reads the notebook; steps 2..N are the no-op steps measured.
    return [(b - a) * 1000 for a, b in itertools.pairwise(marks[1:])]


def main() -> int:
    times = asyncio.run(measure())
    ordered = sorted(times)
    median = statistics.median(ordered)
    text = (
        "\n".join(
            [
                "# Benchmark: local overhead per agent step (200-cell notebook)",
                "",
                f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by "
                f"`benchmarks/bench_step.py`: {len(times)} steps, each building the request (the "
                "history holds the notebook's 200-cell view and grows every step), parsing a "
                "streamed Responses API answer from an in-memory transport, dispatching a "
                "no-op tool and updating the agent's state.",
                "",
                f"- median: {median:.2f} ms (target: at most {TARGET_MS:g} ms): "
                f"**{'met' if median <= TARGET_MS else 'NOT met'}**",
                f"- p90: {ordered[int(len(ordered) * 0.9)]:.2f} ms; min {ordered[0]:.2f} ms; "
                f"max {ordered[-1]:.2f} ms",
                f"- first measured step: {times[0]:.2f} ms; last: {times[-1]:.2f} ms (the history "
                "grows by two items a step)",
            ]
        )
        + "\n"
    )
    RESULTS.write_text(text)
    print(text)
    return 0 if median <= TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
