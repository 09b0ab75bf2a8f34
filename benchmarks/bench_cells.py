"""Benchmark: how the notebook operations scale with the notebook's size (issue 15).

Target: each operation's time grows about linearly with the cell count: the exponent fitted
over 100 to 5,000 cells (least-squares slope of log(median time) on log(cells)) at most 1.2.

The notebook is generated, the same every run, and plausible: a quarter markdown (headings,
prose, lists), the rest code cells of 2 to 10 lines, about half with outputs (printed
lines, a DataFrame's text and HTML, a few PNG plots and ANSI-coloured errors); about
0.7 KB a cell on disk. Measured at each size:

- ``open``: :meth:`FileNotebook.open` (read, parse, fill, ids);
- ``view``: the view the model sees, ``render_cells(doc, budget=10**9)`` (the whole
  notebook in one page, as ``bench_view.py`` renders it);
- ``edit``: the ``edit_notebook`` tool as the agent calls it (arguments checked against its
  schema, then run on the open :class:`FileNotebook`): one cell in the middle replaced. The
  tool saves before it answers, so this includes a save;
- ``save``: :meth:`FileNotebook.save` after one cell's source changed (serialise, compare,
  check the file on disk, atomic write with fsync);
- ``notebook.get``: through the live bridge in real JupyterLab and Chromium, kernel to
  kernel with the page settled (``lab_bench.py``, as ``bench_live.py`` times it, the code
  run in the kernel from the page rather than as a cell): every size open at once, each
  in its own page with its own kernel, all pages left to finish rendering (no long task
  for 2 s) before the first request; one request at a time.
  Skipped, saying why, when the extension is not built or there is no Chromium.

The sizes are interleaved (a new order each round) and the file operations run in one
process, each several times per size; the medians are fitted. A fit from 100 cells folds
fixed costs (an fsync, a comm message) into the slope, so the slope between the two largest
sizes is given too: that is where a quadratic part would show.

    .venv/bin/python benchmarks/bench_cells.py [--rounds N] [--gets N]  # RESULTS-cells.md
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import itertools
import json
import math
import random
import statistics
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from results import Row, machine, median, report  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS-cells.md"
SIZES = (100, 300, 1_000, 3_000, 5_000)
EXPONENT_MAX = 1.2
#: Seconds after each ``notebook.get`` cell: its timer asks after 1 s, and a 5,000-cell
#: reply takes up to about 1 s more; no two requests overlap.
GET_WAIT = 2.5
#: Milliseconds to wait at most for a page to stop rendering before the first request.
QUIET_MAX = 20_000
TABLE = f"cells: time against the notebook's size ({SIZES[0]:,} to {SIZES[-1]:,} cells)"
OPERATIONS = {
    "open": "open (read and parse the file)",
    "view": "view (render_cells, the whole notebook)",
    "edit": "edit (edit_notebook: one cell replaced, its save included)",
    "save": "save (FileNotebook.save: one cell changed, atomic write)",
    "get": "notebook.get in JupyterLab (kernel to kernel, page settled)",
}

# -- the notebook ----------------------------------------------------------------------------

_CODE = (
    "import pandas as pd",
    "df = pd.read_csv('data/sales_{n}.csv', parse_dates=['date'])",
    "df = df[df['price'] > {n} % 50]",
    "summary = df.groupby('region')['price'].agg(['mean', 'count'])",
    "print(summary.head())",
    "def clean_{n}(frame):\n    return frame.dropna().reset_index(drop=True)",
    "for i, row in enumerate(df.itertuples()):\n    if i > 3:\n        break\n    print(row)",
    "model_{n} = fit(df[['x', 'y']], alpha={n} / 1000)",
    "ax = df.plot(x='date', y='price', figsize=(8, 4))",
    "result = {{'n': {n}, 'score': score(model_{n})}}",
    "# check the totals again after the join",
    "assert len(df) > 0, 'empty frame'",
)
_PROSE = (
    "We load the data and drop the rows without a price.",
    "The totals by region are below; the west looks low.",
    "This step fits the model again with a smaller alpha.",
    "Note: the dates are parsed as UTC, so the first day is short.",
)


def _png(rng: random.Random, width: int = 96, height: int = 64) -> str:
    """A real PNG of noise (about 8 KB of base64, as a small plot would be)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\0" + rng.randbytes(width) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
    return base64.b64encode(png + chunk(b"IEND", b"")).decode()


def _outputs(rng: random.Random, n: int) -> list[dict[str, Any]]:
    kind = rng.random()
    if kind < 0.30:
        lines = [f"{rng.random():.6f} {rng.choice(['ok', 'west', 'east'])}\n" for _ in range(5)]
        return [{"output_type": "stream", "name": "stdout", "text": lines[: rng.randint(1, 5)]}]
    if kind < 0.45:
        table = [f"{i}  region_{i}  {rng.random() * 100:.2f}\n" for i in range(rng.randint(3, 8))]
        data: dict[str, Any] = {"text/plain": ["   region   price\n", *table]}
        if kind < 0.38:
            cells = "".join(f"<tr><td>{line}</td></tr>" for line in table)
            data["text/html"] = [f"<table class='dataframe'>{cells}</table>"]
        return [
            {"output_type": "execute_result", "execution_count": n, "metadata": {}, "data": data}
        ]
    if kind < 0.48:
        data = {"image/png": _png(rng), "text/plain": ["<Figure size 800x400 with 1 Axes>"]}
        return [{"output_type": "display_data", "metadata": {}, "data": data}]
    if kind < 0.50:
        trace = ["\x1b[0;31mValueError\x1b[0m  Traceback (most recent call last)"]
        trace += [f"Cell \x1b[0;32mIn[{n}], line {i}\x1b[0m" for i in range(1, 4)]
        return [
            {"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": trace}
        ]
    return []


def generated(size: int, head: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """A ``size``-cell nbformat 4.5 notebook: the code cells ``head`` (id, source) first."""
    cells: list[dict[str, Any]] = [
        {
            "cell_type": "code",
            "id": cid,
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": source,
        }
        for cid, source in head
    ]
    for n in range(len(cells), size):
        rng = random.Random(n)
        if rng.random() < 0.25:
            text = [f"## Step {n}\n", "\n", *(rng.choice(_PROSE) + "\n" for _ in range(3))]
            text += ["- first item\n", "- second item\n"] if rng.random() < 0.3 else []
            cells.append({"cell_type": "markdown", "id": f"m{n}", "metadata": {}, "source": text})
            continue
        lines = [rng.choice(_CODE).format(n=n) for _ in range(rng.randint(2, 10))]
        outputs = _outputs(rng, n)
        cells.append(
            {
                "cell_type": "code",
                "id": f"c{n}",
                "metadata": {},
                "execution_count": n if outputs else None,
                "outputs": outputs,
                "source": "\n".join(lines).splitlines(keepends=True),
            }
        )
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "cells": cells,
    }


def write(path: Path, size: int, head: Sequence[tuple[str, str]] = ()) -> int:
    """Write the notebook as Jupyter does; its size in bytes."""
    data = json.dumps(generated(size, head), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text(data, encoding="utf-8")
    return len(data.encode())


# -- the file side ---------------------------------------------------------------------------


async def file_operations(folder: Path, rounds: int) -> dict[str, dict[int, list[float]]]:
    """Milliseconds per operation and size; sizes in a new order each round."""
    from jupyter_codexmax.config import load_settings
    from jupyter_codexmax.notebook.file import FileNotebook
    from jupyter_codexmax.notebook.view import render_cells
    from jupyter_codexmax.tools import default_tools
    from jupyter_codexmax.tools.registry import ToolContext
    from jupyter_codexmax.workspace import Workspace

    tools = default_tools()
    settings = load_settings(read_files=False)
    paths = {size: folder / f"n{size}.ipynb" for size in SIZES}
    docs = {size: FileNotebook.open(path) for size, path in paths.items()}
    contexts = {
        size: ToolContext(
            settings=settings,
            workspace=Workspace(folder),
            doc=doc,
            runner=None,
            emit=lambda event: None,
            redact=lambda text: text,
            state={},
        )
        for size, doc in docs.items()
    }
    times: dict[str, dict[int, list[float]]] = {op: {s: [] for s in SIZES} for op in OPERATIONS}

    @contextlib.contextmanager
    def timed(op: str, size: int) -> Iterator[None]:
        started = time.perf_counter()
        yield
        times[op][size].append((time.perf_counter() - started) * 1000)

    for number in range(rounds):
        for size in random.Random(number).sample(SIZES, len(SIZES)):
            doc, writes = docs[size], docs[size].writes
            middle = doc.ids[len(doc.ids) // 2]
            with timed("open", size):
                FileNotebook.open(paths[size])
            with timed("view", size):
                render_cells(doc, budget=10**9)
            with timed("edit", size):
                replace = {"action": "replace", "cell_id": middle, "source": f"x = {number}"}
                tool, args = tools.prepare("edit_notebook", json.dumps({"edits": [replace]}))
                await tool.run(contexts[size], args)
            await doc.set_source(middle, f"y = {number}")
            with timed("save", size):
                await doc.save()
            if doc.writes != writes + 2:
                raise RuntimeError(
                    f"{size} cells: the edit and the save wrote {doc.writes - writes}"
                )
    return times


# -- the live side ---------------------------------------------------------------------------


def live_gets(folder: Path, rounds: int) -> tuple[dict[int, list[float]] | str, str]:
    """``notebook.get`` milliseconds per size (or why it could not be measured), and which
    pages were still busy when the requests began."""
    from lab_bench import (
        FIRE_SETTLED,
        LOAD,
        REPORT_GETS,
        execute,
        gets_of,
        lab_and_browser,
        open_bridged,
        wait_quiet,
        why_not,
    )

    reason = why_not()
    if reason:
        return reason, ""
    with lab_and_browser() as (lab, _server, browser):
        books = {}
        for size in SIZES:
            write(lab.root / f"n{size}.ipynb", size, [("load", LOAD)])
            books[size] = open_bridged(browser, lab, f"n{size}.ipynb")
        busy = [f"{size:,}" for size, nb in books.items() if not wait_quiet(nb, most=QUIET_MAX)]
        for number in range(rounds):
            for size in random.Random(number).sample(SIZES, len(SIZES)):
                execute(books[size], FIRE_SETTLED)
                time.sleep(GET_WAIT)  # the request goes out, and its reply comes back
        found = {size: gets_of(execute(nb, REPORT_GETS))["settled"] for size, nb in books.items()}
    for size, got in found.items():
        if got["cells"] != [size]:
            raise RuntimeError(f"notebook.get of {size} cells answered {got['cells']} cells")
    remark = (
        f"The pages of {', '.join(busy)} cells still ran long tasks after "
        f"{QUIET_MAX / 1000:.0f} s (what JupyterLab does there was not looked into): their "
        "requests were answered by a busy page."
        if busy
        else "Every page was quiet (no long task for 2 s) before the first request."
    )
    return {size: got["times"] for size, got in found.items()}, remark


# -- results ---------------------------------------------------------------------------------


def exponent(medians: dict[int, float], sizes: tuple[int, ...] = SIZES) -> float:
    """The least-squares slope of log(time) on log(cells) over ``sizes``."""
    fit = statistics.linear_regression(
        [math.log(s) for s in sizes], [math.log(medians[s]) for s in sizes]
    )
    return float(fit.slope)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="file operations per size")
    parser.add_argument("--gets", type=int, default=6, help="notebook.get per size")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cmx-cells-") as tmp:
        folder = Path(tmp)
        sizes_kb = {size: write(folder / f"n{size}.ipynb", size) / 1024 for size in SIZES}
        times: dict[str, dict[int, list[float]] | str] = dict(
            asyncio.run(file_operations(folder, options.rounds))
        )
    times["get"], remark = live_gets(folder, options.gets)
    measured = {op: t for op, t in times.items() if not isinstance(t, str)}
    medians = {op: {s: median(v) for s, v in t.items()} for op, t in measured.items()}
    slopes = {op: exponent(m) for op, m in medians.items()}
    tails = {op: exponent(m, SIZES[-2:]) for op, m in medians.items()}
    missing = {op: t for op, t in times.items() if isinstance(t, str)}

    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark: the notebook operations against the notebook's size",
        "",
        f"Run {when} by `benchmarks/bench_cells.py` on {machine()}: a generated notebook "
        f"(a quarter markdown, code cells with outputs, a few plots and errors) at "
        f"{', '.join(f'{s:,}' for s in SIZES)} cells, the sizes interleaved; "
        f"{options.rounds} samples per size of each file operation, {options.gets} of "
        "`notebook.get` (JupyterLab with the extension, Debian's Chromium, headless). "
        "How each is measured: the docstring of `bench_cells.py`.",
        "",
        "Median milliseconds:",
        "",
        "| cells | file KB | " + " | ".join(f"`{op}`" for op in measured) + " |",
        "| ---: | ---: |" + " ---: |" * len(measured),
    ]
    for size in SIZES:
        cells = " | ".join(f"{medians[op][size]:.1f}" for op in measured)
        lines.append(f"| {size:,} | {sizes_kb[size]:,.0f} | {cells} |")
    lines += [
        f"| **exponent**, {SIZES[0]:,} to {SIZES[-1]:,} | | "
        + " | ".join(f"**{slopes[op]:.2f}**" for op in measured)
        + " |",
        f"| slope {SIZES[-2]:,} to {SIZES[-1]:,} | | "
        + " | ".join(f"{tails[op]:.2f}" for op in measured)
        + " |",
        "",
        f"Target (issue 15): exponent ≈ 1, at most {EXPONENT_MAX}: "
        + ", ".join(
            f"`{op}` {'met' if slopes[op] <= EXPONENT_MAX else '**not met**'}" for op in measured
        )
        + ".",
    ]
    lines += [f"\n`{op}` not measured: {reason}." for op, reason in missing.items()]
    lines += [f"\n`get`: {remark}"] if remark else []
    RESULTS.write_text("\n".join(lines) + "\n")
    print(RESULTS.read_text())
    report(rows(medians, slopes, missing), details=RESULTS.name)
    return 0


def rows(
    medians: dict[str, dict[int, float]], slopes: dict[str, float], missing: dict[str, str]
) -> list[Row]:
    """Per operation, its median at the largest size and its exponent (no peer has them:
    neither Jupyter AI nor the Codex CLI edits a notebook cell by cell)."""
    found: list[Row] = []
    for op, label in OPERATIONS.items():
        note = f"not measured: {missing[op]}" if op in missing else ""
        found.append(
            Row(
                TABLE,
                f"{label}: median at {SIZES[-1]:,} cells",
                "ms",
                medians[op][SIZES[-1]] if op in medians else None,
                note=note,
            )
        )
        slope = slopes.get(op)
        found.append(
            Row(
                TABLE,
                f"{label}: fitted exponent",
                "exponent",
                slope,
                target=f"exponent ≈ 1 (issue 15): at most {EXPONENT_MAX}",
                met=None if slope is None else slope <= EXPONENT_MAX,
                note=note,
            )
        )
        if op in medians:
            found.append(Row(TABLE, f"{label}: steepest slope between two sizes", "exponent",
                             steepest(medians[op])))  # fmt: skip
    found[-1].note = (
        "notebook.get here: notebooks with outputs and plots (about 0.7 KB a cell), all "
        "five sizes open at once in their own pages (busy pages answer late); the browser "
        "table's 1,000-cell notebook.get is of short cells without outputs, one page"
    )
    return found


def steepest(medians: dict[int, float]) -> float:
    """The largest slope of log(time) on log(cells) between two neighbouring sizes."""
    sizes = sorted(medians)
    return max(
        math.log(medians[b] / medians[a]) / math.log(b / a)
        for a, b in itertools.pairwise(sizes)
        if medians[a] > 0 and medians[b] > 0
    )


if __name__ == "__main__":
    sys.exit(main())
