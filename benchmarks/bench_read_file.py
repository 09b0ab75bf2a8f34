"""Benchmark: ``read_file`` of 5 lines from a 100 MB file, before and after issue 10.

Target (issue 10): under 50 MB of peak memory and under 0.1 s. Before, the tool read the
whole file and split it into lines (579 MB peak in the issue's probe). Each measurement
runs in a fresh process that imports the tool from the code being measured (this checkout,
or the baseline commit exported with ``git archive``), so the peak is the call's own: the
growth of the process's peak resident memory (``VmHWM``) over the call, and the time of the
call alone. Before and after are interleaved.

    .venv/bin/python benchmarks/bench_read_file.py [--baseline REF] [--rounds N]
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from results import Row, report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS-read_file.md"
SIZE = 100 * 1024 * 1024
TARGET_MB = 50.0
TARGET_S = 0.1

PROBE = r"""
import asyncio, json, sys, time, tracemalloc
from pathlib import Path

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

from jupyter_codexmax.config import load_settings
from jupyter_codexmax.tools import default_tools
from jupyter_codexmax.tools.registry import ToolContext
from jupyter_codexmax.workspace import Workspace

root = Path(sys.argv[1])
ctx = ToolContext(settings=load_settings(read_files=False), workspace=Workspace(root),
                  doc=None, runner=None, emit=lambda e: None, redact=lambda s: s, state={})
tools = default_tools()

async def main():
    tool, args = tools.prepare("read_file", json.dumps({"path": "big.txt", "end_line": 5}))
    before = hwm()
    started = time.perf_counter()
    result = await tool.run(ctx, args)
    seconds = time.perf_counter() - started
    grown = hwm() - before
    assert result.output.startswith("1\t"), result.output[:200]
    tracemalloc.start()
    await tool.run(ctx, args)
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    print(json.dumps({"seconds": seconds, "peak_mb": grown, "traced_mb": traced}))

asyncio.run(main())
"""


def export(ref: str, into: Path) -> Path:
    data = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "jupyter_codexmax"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def measure(code: Path, folder: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(code), "CODEXMAX_TOKENIZER": "estimate"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(folder)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="4c3b36f", help="the commit before issue 10")
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ws"
        folder.mkdir()
        line = b"%09d a line of a large log file, about sixty bytes long....\n"
        block = b"".join(line % n for n in range(100_000))
        with (folder / "big.txt").open("wb") as f:
            while f.tell() < SIZE:
                f.write(block)
        size = (folder / "big.txt").stat().st_size
        codes = {"before": export(options.baseline, Path(tmp) / "before"), "after": ROOT}
        for _ in range(options.rounds):
            for label, code in codes.items():
                runs[label].append(measure(code, folder))
                print(label, runs[label][-1], flush=True)
    rows = []
    summary = {}
    for label in ("before", "after"):
        seconds = statistics.median(r["seconds"] for r in runs[label])
        peak = statistics.median(r["peak_mb"] for r in runs[label])
        traced = statistics.median(r["traced_mb"] for r in runs[label])
        summary[label] = (seconds, max(peak, traced))
        rows.append(f"| {label} | {seconds * 1000:.1f} ms | {peak:.1f} MB | {traced:.2f} MB |")
    seconds, peak = summary["after"]
    met = seconds < TARGET_S and peak < TARGET_MB
    text = "\n".join(
        [
            "# Benchmark: read_file of 5 lines from a 100 MB file",
            "",
            f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by "
            f"`benchmarks/bench_read_file.py`: `read_file` with `end_line: 5` on a "
            f"{size / 2**20:.0f} MiB text file (60-byte lines), each call in a fresh process "
            f"importing the code measured; before is commit `{options.baseline}`. Medians of "
            f"{options.rounds} interleaved runs; peak is the growth of the process's peak "
            "resident memory (VmHWM) over the call, and the peak of Python's allocations "
            "during a second, identical call (tracemalloc).",
            "",
            "| code | time | peak resident growth | peak allocations |",
            "| --- | ---: | ---: | ---: |",
            *rows,
            "",
            f"- target: under {TARGET_S * 1000:.0f} ms and under {TARGET_MB:.0f} MB: "
            f"**{'met' if met else 'NOT met'}**",
            "- after, the file is read line by line up to the last line shown (and one more, "
            "to know that it goes on); before, it was read whole and split into lines.",
        ]
    )
    RESULTS.write_text(text + "\n")
    print(text)
    before_s, before_mb = summary["before"]
    report(
        [
            Row("read_file: 5 lines of a 100 MB file", "time", "ms", seconds * 1000,
                target=f"< {TARGET_S * 1000:.0f} ms (issue 10)", met=seconds < TARGET_S,
                note=f"before issue 10 (`{options.baseline}`), same run: {before_s * 1000:.0f} ms"),
            Row("read_file: 5 lines of a 100 MB file", "peak memory", "MB", peak,
                target=f"< {TARGET_MB:.0f} MB (issue 10)", met=peak < TARGET_MB,
                note=f"before issue 10, same run: {before_mb:.0f} MB"),
        ],
        details=RESULTS.name,
    )  # fmt: skip
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
