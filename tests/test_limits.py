"""Every limit holds (issue 10), shown on ``jupyter codexmax run`` as cron runs it: the
scripted model server, real kernels, real files (a named pipe, /dev/zero, a full disk).

Each test is one of the issue's probes: what used to hang, crash with a traceback or run
past its limit now ends within the limit, in one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nbhelpers import call, cells_by_id, make_notebook

from jupyter_codexmax.testing import ScriptedModelServer

BIN = Path(sys.executable).parent
READ_ONLY = ["--approval", "read-only"]
PATCH = "*** Begin Patch\n*** Add File: {}\n+hi\n*** End Patch"


def run(
    args: list[str],
    server: ScriptedModelServer,
    *,
    timeout: int = 120,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``jupyter codexmax run ARGS`` against the server; the result and its seconds."""
    full_env = {
        **os.environ,
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": "sk-limits-test-0123456789",
        **(env or {}),
    }
    started = time.monotonic()
    result = subprocess.run(
        [str(BIN / "jupyter"), "codexmax", "run", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result, time.monotonic() - started


def outputs(server: ScriptedModelServer) -> list[str]:
    """The text of each function call output the model was sent, in order (the last
    request holds the whole history)."""
    found = []
    for item in server.requests[-1].body.get("input", []) if server.requests else []:
        if item.get("type") == "function_call_output":
            output = item["output"]
            found.append(output if isinstance(output, str) else json.dumps(output))
    return found


# -- 1. malformed arguments go back to the model ----------------------------------------------


def nested(depth: int) -> Any:
    value: Any = "a"
    for _ in range(depth):
        value = [value]
    return value


def test_malformed_arguments_go_back_to_the_model_and_the_turn_ends_with_its_answer(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    cells = [("a", "code", "x = 1"), ("b", "code", "y = 2"), ("c", "code", "z = 3")]
    path = make_notebook(tmp_path / "nb.ipynb", cells)
    bad: list[Any] = [
        call("read_file", {"path": "x" * 300}),
        call("read_file", {"path": "x/" * 3000}),
        call("run_cells", '{"cell_ids": ["a"], "timeout": NaN}'),
        call("run_cells", '{"cell_ids": ["a"], "timeout": Infinity}'),
        call("run_cells", {"cell_ids": ["a"], "timeout": -1}),
        call("read_file", '{"path": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        call("read_file", {"path": nested(34)}),
        call("x" * 10_000, {}),
        call("read_notebook", {"end": -5}),
        call("read_notebook", {"start": 3, "end": 2}),
        call("edit_notebook", {"edits": []}),
        call("apply_patch", {"patch": PATCH.format("y" * 300)}),
        call("search_files", {"pattern": "(", "regex": True}),
    ]
    scripted_server.load([*({"calls": [c]} for c in bad), "All handled."])
    result, _ = run([str(path), "--task", "probe", "--full-auto"], scripted_server)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stdout
    assert "All handled." in result.stdout
    told = outputs(scripted_server)
    assert len(told) == len(bad)
    assert all(text.startswith("error: ") for text in told), told
    expected = [
        "a name in the path is 300 characters long",
        "'path' has 6,000 characters; at most 4,096",
        "NaN, which JSON does not allow",
        "Infinity, which JSON does not allow",
        "'timeout' must be more than 0, not -1",
        "nest too deeply",
        "nest 35 levels deep; at most 32",
        "(10,000 characters); the tools are",
        "'end' must be at least 1, not -5",
        "end (2) comes before start (3)",
        "'edits' must have at least 1 item, not be empty",
        "a name in the path is 300 characters long",
        "not a valid regular expression",
    ]
    for text, words in zip(told, expected, strict=True):
        assert words in text, (words, text)
    assert all(len(text) < 1_000 for text in told), "no argument is echoed back whole"
    assert cells_by_id(path)["a"]["source"] == "x = 1"


# -- 2. limits are cancellation ---------------------------------------------------------------


@pytest.fixture
def fifo_workspace(tmp_path: Path) -> Path:
    work = tmp_path / "ws"
    work.mkdir()
    (work / ".git").mkdir()
    make_notebook(work / "nb.ipynb", [("a", "code", "x = 1")])
    (work / "notes.txt").write_text("find me\n")
    os.mkfifo(work / "pipe")
    os.mkfifo(work / "pipe.ipynb")
    return work


def test_a_named_pipe_in_the_workspace_is_never_opened(
    fifo_workspace: Path, scripted_server: ScriptedModelServer
) -> None:
    scripted_server.load(
        [
            {"calls": [call("read_file", {"path": "pipe"})]},
            {"calls": [call("read_file", {"path": "pipe.ipynb"})]},
            {"calls": [call("search_files", {"pattern": "find"})]},
            {"calls": [call("list_files", {})]},
            "done",
        ]
    )
    result, seconds = run(
        [
            str(fifo_workspace / "nb.ipynb"),
            "--task",
            "look",
            "--approval",
            "read-only",
            "--timeout",
            "20",
        ],
        scripted_server,
    )
    assert result.returncode == 0, result.stderr
    assert seconds < 15
    read_pipe, read_nb, search, listing = outputs(scripted_server)
    assert "pipe: is a named pipe (FIFO); only regular files are read" in read_pipe
    assert "is a named pipe (FIFO), not a notebook file" in read_nb
    assert "notes.txt:1: find me" in search
    assert "not searched: pipe (a named pipe (FIFO)), pipe.ipynb (a named pipe (FIFO))" in search
    assert "pipe" in listing


def test_a_catastrophic_regex_ends_within_its_limit(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    (tmp_path / "short.txt").write_text("a" * 27 + "!")  # the 28 bytes
    (tmp_path / "long.txt").write_text("x" * 5_000 + "\n")
    scripted_server.load(
        [
            {"calls": [call("search_files", {"pattern": "(a+)+$", "regex": True})]},
            {"calls": [call("search_files", {"pattern": "(x+x+)+y", "regex": True})]},
            "done",
        ]
    )
    result, seconds = run(
        [
            str(path),
            "--task",
            "search",
            "--approval",
            "read-only",
            "--timeout",
            "30",
            "--CodexMax.search_time_limit=1",
        ],
        scripted_server,
    )
    assert result.returncode == 0, result.stderr
    assert seconds < 20
    short, long = outputs(scripted_server)
    assert short.startswith("no matches"), short
    assert "not searched: long.txt (the pattern took more than 1 s here" in long


def test_a_trickling_stream_is_cut_by_the_response_time_limit(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load([{"text": "x" * 60, "chunk": 1, "delay": 1}])
    result, seconds = run(
        [str(path), "--task", "go", "--CodexMax.response_time_limit=3", "--CodexMax.max_retries=0"],
        scripted_server,
    )
    assert result.returncode == 1
    assert seconds < 15
    assert "did not finish within 3 s (CodexMax.response_time_limit)" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_trickling_stream_ends_at_the_runs_time_limit(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load([{"text": "x" * 60, "chunk": 1, "delay": 1}])
    result, seconds = run([str(path), "--task", "go", "--timeout", "3"], scripted_server)
    assert result.returncode == 1
    assert seconds < 15
    assert "stopped at the run's time limit (3 s)" in result.stdout


def test_the_cell_timeout_is_a_cap_the_model_cannot_raise(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(
        tmp_path / "nb.ipynb", [("slow", "code", "import time\ntime.sleep(8)\nprint('woke')")]
    )
    scripted_server.load(
        [{"calls": [call("run_cells", {"cell_ids": ["slow"], "timeout": 60})]}, "it timed out"]
    )
    result, seconds = run(
        [str(path), "--task", "run it", "--full-auto", "--cell-timeout", "3"], scripted_server
    )
    assert seconds < 8 + 6, "the 8 s cell was stopped at 3 s"
    (ran,) = outputs(scripted_server)
    assert "timeout" in ran and "interrupted after 3 s" in ran, ran
    assert "» stdout" not in ran, "the cell did not get to print"
    assert result.returncode == 1  # the cell still fails: incomplete
    assert "still failing: slow" in result.stdout


# -- unreadable notebooks: one line, exit 2 ----------------------------------------------------


def _deep(path: Path, depth: int) -> Path:
    path.write_text(
        '{"nbformat": 4, "nbformat_minor": 5, "metadata": {"x": '
        + "[" * depth
        + "]" * depth
        + '}, "cells": []}'
    )
    return path


@pytest.mark.parametrize("depth", [600, 100_000])
def test_a_deeply_nested_notebook_is_one_line_and_exit_2(
    tmp_path: Path, scripted_server: ScriptedModelServer, depth: int
) -> None:
    good = make_notebook(tmp_path / "good.ipynb", [("a", "code", "x = 1")])
    before = good.read_bytes()
    deep = _deep(tmp_path / "deep.ipynb", depth)
    result, _ = run([str(good), str(deep), "--task", "go", "--full-auto"], scripted_server)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"jupyter-codexmax: error: {deep}: ")
    assert "nest" in line
    assert good.read_bytes() == before
    assert scripted_server.requests == []


def test_dev_zero_and_a_named_pipe_as_the_notebook_are_one_line_and_exit_2(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    zero = tmp_path / "zero.ipynb"
    zero.symlink_to("/dev/zero")
    pipe = tmp_path / "x.ipynb"
    os.mkfifo(pipe)
    for path, kind in ((zero, "a character device"), (pipe, "a named pipe (FIFO)")):
        result, seconds = run([str(path), "--task", "go"], scripted_server, timeout=30)
        assert result.returncode == 2, result.stderr
        assert seconds < 20
        assert result.stderr.splitlines() == [
            f"jupyter-codexmax: error: {path}: is {kind}, not a notebook file"
        ]
    assert scripted_server.requests == []


# -- 4. loops and empty answers ----------------------------------------------------------------


def test_fifty_identical_failing_calls_are_stopped_within_a_dozen(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load(
        [{"calls": [call("read_file", {"path": "missing.txt"})], "repeat": 50}, "done"]
    )
    result, _ = run([str(path), "--task", "read it", "--full-auto"], scripted_server)
    assert result.returncode == 1
    assert len(scripted_server.requests) <= 12
    told = outputs(scripted_server)
    assert "failed the same way 3 times; repeating it will not help" in told[2]
    assert "failed the same way" not in told[1]
    message = "stopped: the model made the same failing read_file call 5 times in a row"
    assert message in result.stdout
    assert [line for line in result.stderr.splitlines() if "error:" in line] == [
        f"[nb.ipynb] error: {message}, though told to change course "
        "(CodexMax.repeated_failure_limit)"
    ]


def test_an_empty_answer_is_asked_again_once_then_reported(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load([{"text": ""}, "Done after all."])
    result, _ = run([str(path), "--task", "go"], scripted_server)
    assert result.returncode == 0, result.stdout
    assert "the model's answer was empty; asking again" in result.stderr
    assert "Done after all." in result.stdout

    scripted_server.load([{"text": ""}, {"reasoning": "hmm"}])
    result, _ = run([str(path), "--task", "go"], scripted_server)
    assert result.returncode == 1
    assert "the model answered with nothing (no text, no tool call) 2 times in a row" in (
        result.stdout
    )


# -- 5. usage errors up front ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--report", "{folder}"], "--report {folder}: is a folder; give a file path"),
        (["--report", "{pipe}"], "--report {pipe}: is a named pipe (FIFO)"),
        (["--timeout", "-5"], "--timeout must be a number of seconds above 0"),
        (["--timeout", "nan"], "--timeout must be a number of seconds above 0"),
        (["--max-steps", "0"], "CodexMax.max_steps in the configuration: must be at least 1"),
        (["--cell-timeout", "-1"], "CodexMax.cell_timeout in the configuration: must be a number"),
        (["--task-file", "{pipe}"], "--task-file {pipe}: is a named pipe (FIFO)"),
    ],
)
def test_usage_mistakes_are_one_line_and_exit_2_before_any_request(
    tmp_path: Path, scripted_server: ScriptedModelServer, flags: list[str], words: str
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    folder = tmp_path / "reports"
    folder.mkdir()
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    scripted_server.load(["done"])
    fill = {"folder": str(folder), "pipe": str(pipe)}
    args = [str(path), "--full-auto", *(f.format(**fill) for f in flags)]
    if "--task-file" not in flags:
        args += ["--task", "go"]
    result, seconds = run(args, scripted_server, timeout=30)
    assert result.returncode == 2, result.stderr
    assert seconds < 20
    (line,) = result.stderr.splitlines()
    assert line.startswith("jupyter-codexmax: error: ") and words.format(**fill) in line, line
    assert scripted_server.requests == []


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 64 KiB tmpfs, mounted for the test and removed after it."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    folder = Path(tempfile.mkdtemp(prefix="codexmax-disk-"))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)
        folder.rmdir()


def test_a_full_disk_is_one_line_and_the_summary_says_what_was_not_saved(
    small_disk: Path, tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(small_disk / "nb.ipynb", [("a", "code", "print(1)")])
    before = path.read_bytes()
    with pytest.raises(OSError, match="No space"):
        (small_disk / "filler").write_bytes(b"x" * 1_000_000)
    edit = {"action": "replace", "cell_id": "a", "source": "print(2)\n" * 3_000}
    scripted_server.load([{"calls": [call("edit_notebook", {"edits": [edit]})]}, "Edited."])
    report = tmp_path / "report.json"
    result, _ = run(
        [str(path), "--task", "edit", "--full-auto", "--report", str(report)], scripted_server
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "internal error" not in result.stdout
    (told,) = outputs(scripted_server)
    assert "§ not saved: the notebook could not be written (No space left on device" in told
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert errors == ["[nb.ipynb] error: the session could not be saved: No space left on device"]
    assert "cells edited: 1 (not saved)" in result.stdout
    assert (
        "error: nb.ipynb was not saved (No space left on device): its changes and its session; "
        "the file is as it was before the run"
    ) in result.stdout
    assert path.read_bytes() == before
    entry = json.loads(report.read_text())["notebooks"][0]
    assert entry["status"] == "failed" and "was not saved" in entry["not_saved"]


# -- 6. a killed run's kernel folder -----------------------------------------------------------


def _kill_processes_mentioning(text: str) -> None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                continue


def test_a_later_run_removes_the_kernel_folder_a_killed_run_left(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {"TMPDIR": str(temp)}
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "import time\ntime.sleep(60)")])
    scripted_server.load([{"calls": [call("run_cells", {"all": True})]}, "done"])
    process = subprocess.Popen(
        [str(BIN / "jupyter"), "codexmax", "run", str(path), "--task", "go", "--full-auto"],
        env={
            **os.environ,
            **env,
            "OPENAI_BASE_URL": scripted_server.base_url,
            "OPENAI_API_KEY": "sk-limits-test-0123456789",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            folders = [p for p in temp.iterdir() if p.name.startswith("cxk-")]
            if folders and (folders[0] / "kernel.json").exists():
                break
            time.sleep(0.05)
        (left,) = folders
        time.sleep(0.5)
        process.kill()
        process.wait(10)
        assert left.exists()
    finally:
        process.kill()
        _kill_processes_mentioning(str(temp))  # the kernel the killed run left
    quick = make_notebook(tmp_path / "quick.ipynb", [("b", "code", "x = 1")])
    scripted_server.load([{"calls": [call("run_cells", {"all": True})]}, "done"])
    result, _ = run([str(quick), "--task", "go", "--full-auto"], scripted_server, env=env)
    assert result.returncode == 0, result.stderr
    assert not left.exists()
    assert [p for p in temp.iterdir() if p.name.startswith("cxk-")] == []
