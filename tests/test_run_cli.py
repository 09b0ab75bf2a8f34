"""``jupyter codexmax run`` as cron or CI runs it: real processes, kernels and files."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from nbhelpers import call, cells_by_id, make_notebook, without_session

from jupyter_codexmax.testing import ScriptedModelServer

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(
    args: list[str],
    server: ScriptedModelServer,
    *,
    key: str | None = "sk-run-test-0123456789",
    cwd: Path | None = None,
    timeout: int = 180,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAI_BASE_URL": server.base_url}
    if key is not None:
        env["OPENAI_API_KEY"] = key
    return subprocess.run(
        [str(BIN / "jupyter"), "codexmax", "run", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_demo_runs_end_to_end(tmp_path: Path, scripted_server: ScriptedModelServer) -> None:
    """The README's first command: the broken sales notebook, fixed through the tools with a
    real kernel; the report says what changed."""
    work = tmp_path / "sales"
    shutil.copytree(ROOT / "examples" / "sales", work)
    scripted_server.load(str(ROOT / "examples" / "scripts" / "fix_sales.json"))
    report = tmp_path / "report.json"
    result = run(
        [
            str(work / "clean_sales.ipynb"),
            "--task",
            "Fix the failing cells",
            "--full-auto",
            "--report",
            str(report),
        ],
        scripted_server,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert scripted_server.failures == []
    assert "clean_sales.ipynb: done" in result.stdout
    assert "cell clean error ValueError" in result.stderr
    cells = cells_by_id(work / "clean_sales.ipynb")
    assert "str.replace" in cells["clean"]["source"]
    assert 'groupby("region")' in cells["revenue"]["source"]
    report_text = cells["report"]["outputs"][0]["data"]["text/plain"]
    assert "North" in report_text and "South" in report_text
    data = json.loads(report.read_text())
    entry = data["notebooks"][0]
    assert (data["exit_status"], entry["status"], entry["steps"]) == (0, "done", 8)
    assert entry["cells_edited"] == ["clean", "revenue"]
    assert {c["cell_id"]: c["status"] for c in entry["cells_run"]} == {
        "load": "ok",
        "clean": "ok",
        "revenue": "ok",
        "report": "ok",
    }
    assert '+df["price"] = df["price"].str.replace' in entry["diff"]
    assert entry["usage"]["input_tokens"] > 0 and entry["wall_time"] > 0
    assert "sk-run-test" not in report.read_text()


def _content(node: Any) -> Any:
    """A notebook's content: multiline strings stored as lists of lines are joined (Jupyter's
    writer joins them; the content is the same)."""
    if isinstance(node, dict):
        return {k: _content(v) for k, v in node.items()}
    if isinstance(node, list):
        if node and all(isinstance(v, str) for v in node):
            return "".join(node)
        return [_content(v) for v in node]
    return node


def corpus_rows(shared: Path) -> list[dict[str, str]]:
    with (shared / "corpus" / "MANIFEST.tsv").open() as f:
        return list(csv.DictReader(f, delimiter="\t"))


def corpus_notebooks(shared: Path) -> list[Path]:
    rows = corpus_rows(shared)
    return [shared / "corpus" / r["file"] for r in rows if r["read_as_v4"].startswith("ok")]


def test_a_text_only_run_leaves_every_corpus_notebook_unchanged(
    tmp_path: Path, shared: Path, scripted_server: ScriptedModelServer
) -> None:
    """Unchanged but for the agent's own key, and the required keys a notebook lacked
    (filled with empty values; the run says which, and then the notebook validates)."""
    import nbformat

    copies = []
    for number, source in enumerate(corpus_notebooks(shared)):
        target = tmp_path / f"{number:02d}-{source.name}"
        shutil.copyfile(source, target)
        copies.append((source, target))
    scripted_server.load({"steps": [{"text": "Nothing to change here."}], "after_last": "repeat"})
    report = tmp_path / "report.json"
    result = run(
        [str(t) for _, t in copies]
        + ["--task", "Describe this notebook", "--jobs", "4", "--report", str(report)],
        scripted_server,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(copies) >= 40
    from jupyter_codexmax.notebook.file import FileNotebook

    filled = {
        Path(e["path"]).name: e["filled"]
        for e in json.loads(report.read_text())["notebooks"]
        if e["filled"]
    }
    assert len(filled) == 5, filled
    for source, target in copies:
        before = _content(json.loads(source.read_text()))
        after = json.loads(target.read_text())
        session = after.get("metadata", {}).pop("codexmax", None)
        original = FileNotebook.open(source)
        if target.name in filled:
            assert filled[target.name] == original.filled
            assert f"written with missing required keys filled: {original.filled}" in result.stdout
            if "heading" not in json.dumps(after):  # missing keys were all that was wrong
                nbformat.validate(nbformat.from_dict(after))
        else:
            assert _content(after) == before, f"{source.name}: only the agent's own key may change"
        if not original.writable:
            assert session is None, "old formats are never written"
            assert target.read_bytes() == source.read_bytes()
        else:
            assert session is not None and session["turns"] == 1, source.name
            if original.current_bytes() == source.read_bytes():
                assert without_session(target) == source.read_bytes(), f"{source.name}: bytes"
    assert len(scripted_server.requests_to("responses")) == len(copies)


def test_an_unreadable_corpus_notebook_is_refused_in_one_line(
    tmp_path: Path, shared: Path, scripted_server: ScriptedModelServer
) -> None:
    rows = [r for r in corpus_rows(shared) if not r["read_as_v4"].startswith("ok")]
    assert len(rows) == 3
    for row in rows:
        target = tmp_path / Path(row["file"]).name
        shutil.copyfile(shared / "corpus" / row["file"], target)
        before = target.read_bytes()
        result = run([str(target), "--task", "Describe this notebook"], scripted_server)
        assert result.returncode == 2
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"jupyter-codexmax: error: {target}: cannot be read"), line
        assert target.read_bytes() == before
    assert scripted_server.requests == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "invalid JSON at line 1 column 2"),
        ('{"cells": []}', "it has no nbformat version"),
        (
            '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": "nope"}',
            "'cells' is text, not a list",
        ),
    ],
)
def test_an_unreadable_notebook_stops_the_run_and_nothing_changes(
    content: str, reason: str, tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    bad = tmp_path / "bad.ipynb"
    bad.write_text(content)
    good = make_notebook(tmp_path / "good.ipynb", [("a", "code", "x = 1")])
    good_bytes = good.read_bytes()
    scripted_server.load({"steps": ["fine"], "after_last": "repeat"})
    result = run([str(good), str(bad), "--task", "anything"], scripted_server)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and reason in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert bad.read_text() == content and good.read_bytes() == good_bytes
    assert scripted_server.requests == []


def _two_notebook_script() -> dict[str, Any]:
    def conversation(name: str, fix: str) -> dict[str, Any]:
        return {
            "match": name,
            "steps": [
                {"calls": [call("run_cells", {"all": True})]},
                {
                    "calls": [
                        call(
                            "edit_notebook",
                            {"edits": [{"action": "replace", "cell_id": "b", "source": fix}]},
                        )
                    ]
                },
                {"calls": [call("run_cells", {"cell_ids": ["b"]})]},
                {"text": f"fixed {name}"},
            ],
        }

    return {
        "conversations": [
            conversation("one.ipynb", "print(x * 2)"),
            conversation("two.ipynb", "print(x * 3)"),
        ]
    }


def _make_pair(folder: Path) -> list[Path]:
    folder.mkdir()
    return [
        make_notebook(
            folder / f"{name}.ipynb", [("a", "code", f"x = {value}"), ("b", "code", "print(y)")]
        )
        for name, value in (("one", 2), ("two", 3))
    ]


def _comparable(path: Path) -> list[Any]:
    return [
        (c["source"], [o.get("text") or o.get("ename") for o in c.get("outputs", [])])
        for c in cells_by_id(path).values()
    ]


def test_jobs_2_gives_the_same_results_as_one_at_a_time(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    results = {}
    for jobs in (1, 2):
        paths = _make_pair(tmp_path / f"jobs{jobs}")
        scripted_server.load(_two_notebook_script())
        report = tmp_path / f"report{jobs}.json"
        result = run(
            [
                *map(str, paths),
                "--task",
                "fix",
                "--full-auto",
                "--jobs",
                str(jobs),
                "--report",
                str(report),
            ],
            scripted_server,
        )
        assert result.returncode == 0, result.stderr
        assert scripted_server.failures == []
        statuses = [
            (Path(n["path"]).name, n["status"], n["steps"], n["cells_edited"])
            for n in json.loads(report.read_text())["notebooks"]
        ]
        results[jobs] = ([_comparable(p) for p in paths], statuses)
    assert results[1] == results[2]
    outputs = results[1][0]
    assert outputs[0][1] == ("print(x * 2)", ["4\n"]) and outputs[1][1] == ("print(x * 3)", ["9\n"])


def test_an_error_left_in_a_cell_exits_1(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "broken.ipynb", [("a", "code", "1 / 0")])
    scripted_server.load(
        [{"calls": [call("run_cells", {"all": True})]}, {"text": "I could not fix it."}]
    )
    report = tmp_path / "r.json"
    result = run(
        [str(path), "--task", "fix", "--full-auto", "--report", str(report)], scripted_server
    )
    assert result.returncode == 1
    entry = json.loads(report.read_text())["notebooks"][0]
    assert entry["status"] == "incomplete"
    assert entry["cells_run"] == [{"cell_id": "a", "status": "error"}]
    assert "still failing: a" in result.stdout


def test_headless_ask_refuses_and_tells_the_model(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load(
        [
            {"calls": [call("run_cells", {"all": True})]},
            {"expect": {"contains": "--approval auto"}, "text": "I was not allowed to run it."},
        ]
    )
    result = run([str(path), "--task", "run it"], scripted_server)
    assert scripted_server.failures == []
    assert result.returncode == 0
    assert "not allowed" in result.stderr


def test_model_errors_fail_the_notebook(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    original = path.read_bytes()
    scripted_server.load(
        [
            {
                "fault": "http",
                "status": 429,
                "code": "insufficient_quota",
                "type": "insufficient_quota",
                "message": "You exceeded your quota.",
            }
        ]
    )
    result = run([str(path), "--task", "anything"], scripted_server)
    assert result.returncode == 1
    assert "quota" in result.stdout and "failed" in result.stdout
    assert without_session(path) == original


def test_the_step_limit(tmp_path: Path, scripted_server: ScriptedModelServer) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load(
        {"steps": [{"calls": [call("read_notebook", {})]}], "after_last": "repeat"}
    )
    result = run([str(path), "--task", "loop", "--max-steps", "3"], scripted_server)
    assert result.returncode == 1
    assert "stopped after 3 requests" in result.stdout
    assert len(scripted_server.requests) == 3


@pytest.mark.parametrize(
    ("args", "key", "needle"),
    [
        (["--task", "x"], "k-1234567", "give one or more notebooks"),
        (["nb.ipynb"], "k-1234567", "no task"),
        (["nb.ipynb", "--task", "x", "--jobs", "0"], "k-1234567", "--jobs"),
        (["nb.ipynb", "--task", "x", "--approval", "sometimes"], "k-1234567", "CodexMax.approval"),
        (["nb.ipynb", "--task", "x", "--task-file", "t.md"], "k-1234567", "not both"),
    ],
)
def test_usage_mistakes_exit_2(
    args: list[str], key: str, needle: str, tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    result = run(args, scripted_server, key=key, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert scripted_server.requests == []


def test_missing_key_exits_2(tmp_path: Path, scripted_server: ScriptedModelServer) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    env_server_url = "https://api.openai.com/v1"
    result = subprocess.run(
        [
            str(BIN / "jupyter-codexmax"),
            "run",
            str(path),
            "--task",
            "x",
            "--base-url",
            env_server_url,
        ],
        env={k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "OPENAI_API_KEY" in result.stderr


def test_the_time_limit_stops_a_notebook(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    import time

    path = make_notebook(tmp_path / "slow.ipynb", [("a", "code", "import time\ntime.sleep(120)")])
    scripted_server.load([{"calls": [call("run_cells", {"all": True})]}, {"text": "never"}])
    started = time.monotonic()
    # 10 s: enough for the (sandboxed) kernel to start and begin the cell on a loaded machine
    result = run([str(path), "--task", "run it", "--full-auto", "--timeout", "10"], scripted_server)
    assert result.returncode == 1
    assert "time limit (10 s)" in result.stdout
    assert time.monotonic() - started < 60
    outputs = cells_by_id(path)["a"]["outputs"]
    assert outputs and outputs[-1]["ename"] == "KeyboardInterrupt", "interrupted, then saved"


def test_the_live_log_on_a_terminal_and_off_it() -> None:
    import io

    from jupyter_codexmax import events as ev
    from jupyter_codexmax.cli.progress import Progress

    script = [
        ev.TurnStarted(1, "fix it"),
        ev.StepStarted(1, 1),
        ev.ToolCallStarted("c1", "run_cells", {}, "run_cells a b"),
        ev.CellRan("a", "error", 0.4, 1, "", "ValueError: bad"),
        ev.ToolCallFinished("c1", "run_cells", False, "a error", 0.5),
        ev.UsageUpdated(1000, 0, 50, 10, 1000, 50, 1050, 272_000),
        ev.TurnFinished(1, "done", "ok", 1),
    ]
    for tty in (True, False):
        stream = io.StringIO()
        progress = Progress(stream, tty=tty)
        handle = progress.handler("nb.ipynb")
        for event in script:
            handle(event)
        progress.close()
        text = stream.getvalue()
        assert "[nb.ipynb] task: fix it" in text
        assert "[nb.ipynb]    cell a error ValueError: bad (0.4s)" in text
        assert "!! run_cells a b -> a error (0.5s)" in text
        assert "[nb.ipynb] done after 1 step (" in text
        assert ("\x1b[K" in text) is tty, "the status line is drawn only on a terminal"
        if tty:
            assert "nb.ipynb: run_cells a b (step 1" in text
