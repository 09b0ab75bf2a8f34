"""Big inputs (issue 10): read_file reads only what it returns, search says what it skipped
and why, views of huge notebooks keep their budget, and a killed run's kernel folder is
removed by a later run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from nbhelpers import make_notebook

from jupyter_codexmax.config import load_settings
from jupyter_codexmax.notebook.file import FileNotebook
from jupyter_codexmax.notebook.view import merge_streams
from jupyter_codexmax.runners.headless import OWNER_FILE, remove_stale_folders
from jupyter_codexmax.tools import default_tools
from jupyter_codexmax.tools.registry import ToolContext, ToolResult
from jupyter_codexmax.workspace import Workspace

pytestmark = pytest.mark.anyio
REGISTRY = default_tools()


def context(root: Path, doc: Any = None) -> ToolContext:
    return ToolContext(
        settings=load_settings(read_files=False),
        workspace=Workspace(root.resolve()),
        doc=doc,
        runner=None,
        emit=lambda event: None,
        redact=lambda s: s,
        state={},
    )


async def call(ctx: ToolContext, name: str, **args: Any) -> ToolResult:
    tool, checked = REGISTRY.prepare(name, json.dumps(args))
    return await tool.run(ctx, checked)


def bytes_read() -> int:
    """Bytes this process has read through read(2) so far (Linux's /proc/self/io)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar")


async def test_read_file_reads_only_the_lines_it_returns(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    with big.open("wb") as f:
        line = b"%08d the quick brown fox jumps over the lazy dog, again and again\n"
        block = b"".join(line % n for n in range(100_000))
        for _ in range(15):  # 15 x 7.3 MB: about 110 MB
            f.write(block)
    ctx = context(tmp_path)
    tracemalloc.start()
    before = bytes_read()
    try:
        result = await call(ctx, "read_file", path="big.txt", end_line=5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    read = bytes_read() - before
    assert result.output.splitlines()[0].startswith("1\t00000000 the quick")
    assert result.output.splitlines()[4].startswith("5\t00000004")
    assert result.output.endswith(f"(lines 1-5 of a {big.stat().st_size:,}-byte file)")
    assert read < 1_000_000, f"read {read:,} bytes for 5 lines"
    assert peak < 5_000_000, f"peak {peak:,} bytes"
    # Further on, still without reading the whole file (only up to the lines shown).
    before = bytes_read()
    middle = await call(ctx, "read_file", path="big.txt", start_line=200_000, end_line=200_002)
    assert middle.output.startswith("200000\t00099999")
    assert bytes_read() - before < 20_000_000


async def test_one_enormous_line_is_cut_and_the_next_read_goes_on(tmp_path: Path) -> None:
    (tmp_path / "min.js").write_text("x" * 3_000_000 + "\nsecond line\n")
    ctx = context(tmp_path)
    first = await call(ctx, "read_file", path="min.js")
    assert "1\t" + "x" * 100 in first.output
    assert "[... line cut: 2,996,000 more characters]" in first.output
    assert "2\tsecond line" in first.output
    assert len(first.output) < 10_000


async def test_search_names_what_it_skipped_and_why(tmp_path: Path) -> None:
    (tmp_path / "small.txt").write_text("needle here\n")
    (tmp_path / "huge.log").write_text(("filler\n" * 700_000) + "needle\n")  # 4.9 MB
    (tmp_path / "blob.bin").write_bytes(b"\0needle\0" * 10)
    os.mkfifo(tmp_path / "pipe")
    nb = make_notebook(tmp_path / "big.ipynb", [("a", "code", "needle = 1")])
    data = json.loads(nb.read_text())
    data["cells"][0]["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": "y" * 5_000_000}
    ]  # over the 4 MB that used to skip notebooks without a word
    nb.write_text(json.dumps(data))
    ctx = context(tmp_path)
    result = await call(ctx, "search_files", pattern="needle")
    lines = result.output.splitlines()
    assert "small.txt:1: needle here" in lines
    assert "big.ipynb#a:1: needle = 1" in lines
    assert "(not searched: huge.log (4.7 MB, over the 4 MB limit), pipe (a named pipe (FIFO)))" in (
        lines
    )
    assert "(1 binary file skipped)" in lines
    assert result.summary == "2 matches, 2 files not searched"


def huge_notebook(path: Path) -> Path:
    cells: list[dict[str, Any]] = []
    for n in range(5_000):
        cells.append(
            {
                "cell_type": "code",
                "id": f"c{n}",
                "metadata": {},
                "execution_count": n,
                "source": f"x{n} = {n}\nprint(x{n})",
                "outputs": [{"output_type": "stream", "name": "stdout", "text": f"{n}\n"}],
            }
        )
    cells[0]["source"] = "big = '''" + "z" * 1_000_000 + "'''"
    noisy: list[dict[str, Any]] = []
    for n in range(20_000):
        noisy.append({"output_type": "stream", "name": "stdout", "text": f"tick {n}\n"})
        if n % 2 == 0:
            noisy.append(
                {"output_type": "display_data", "metadata": {}, "data": {"text/plain": f"d{n}"}}
            )
    cells[1]["outputs"] = noisy
    data = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "cells": cells,
    }
    path.write_text(json.dumps(data))
    return path


async def test_views_of_a_huge_notebook_keep_their_budget(tmp_path: Path) -> None:
    doc = FileNotebook.open(huge_notebook(tmp_path / "huge.ipynb"))
    ctx = context(tmp_path, doc)
    limit = ctx.settings.tool_output_limit
    started = time.monotonic()
    first = await call(ctx, "read_notebook")
    second = await call(ctx, "read_notebook", start=2)
    later = await call(ctx, "read_notebook", start=2_500)
    whole = await call(ctx, "read_file", path="huge.ipynb")
    assert time.monotonic() - started < 5
    for view in (first, second, later, whole):
        assert len(view.output) <= limit, len(view.output)
    assert "§1 code c0" in first.output and "characters cut ...]" in first.output
    assert "read_notebook start=2 for more" in first.output
    assert re.search(r"\n\[\.\.\. 19,9\d\d outputs not shown \.\.\.\]\n", second.output)
    assert "§2500 code c2499" in later.output and "read_notebook start=" in later.output


def test_stream_outputs_are_merged_in_linear_time() -> None:
    piece = {"output_type": "stream", "name": "stdout", "text": "x" * 50}
    outputs = [dict(piece) for _ in range(200_000)]
    started = time.monotonic()
    (merged,) = merge_streams(outputs)
    assert time.monotonic() - started < 2
    assert len(merged["text"]) == 10_000_000
    mixed = merge_streams(
        [
            {"output_type": "stream", "name": "stdout", "text": "a"},
            {"output_type": "stream", "name": "stdout", "text": "b"},
            {"output_type": "stream", "name": "stderr", "text": "c"},
            {"output_type": "display_data", "data": {}},
            {"output_type": "stream", "name": "stderr", "text": "d"},
            {"output_type": "stream", "name": "stderr", "text": "e"},
        ]
    )
    assert [o.get("text") for o in mixed] == ["ab", "c", None, "de"]


def test_kernel_folders_of_ended_runs_are_removed(tmp_path: Path) -> None:
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = tmp_path / "cxk-dead"
    dead.mkdir()
    (dead / OWNER_FILE).write_text(f"{ended.stdout.strip()} 1")
    (dead / "k-1").write_text("")
    mine = tmp_path / "cxk-mine"
    mine.mkdir()
    own = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()[19]
    (mine / OWNER_FILE).write_text(f"{os.getpid()} {own}")
    unmarked = tmp_path / "cxk-unmarked"
    unmarked.mkdir()
    other = tmp_path / "not-ours"
    other.mkdir()
    assert remove_stale_folders(str(tmp_path)) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cxk-mine", "cxk-unmarked", "not-ours"]
