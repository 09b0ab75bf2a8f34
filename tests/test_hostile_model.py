"""What a hostile or broken model (or server) sends cannot crash a run or poison what it
writes: lone surrogates, terminal escapes, patches that fail halfway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from nbhelpers import call, make_notebook

from jupyter_codexmax.testing import ScriptedModelServer

BIN = Path(sys.executable).parent


def run(
    notebook: Path, server: ScriptedModelServer, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": "sk-hostile-0123456789",
        **(env or {}),
    }
    return subprocess.run(
        [str(BIN / "jupyter"), "codexmax", "run", str(notebook), "--task", "go", *extra],
        env=environ,
        cwd=notebook.parent,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_lone_surrogates_from_the_model_are_replaced_not_fatal(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """A lone surrogate ("\\ud800") is legal JSON, and no character: in a tool's
    arguments, a plan, the answer and its reasoning it becomes U+FFFD; the edit is written,
    the session saved."""
    notebook = make_notebook(tmp_path / "nb.ipynb", [("c1", "code", "x = 1")])
    bad = "\ud800"
    edit = f"s = '{bad}'"
    scripted_server.load(
        [
            {
                "reasoning": f"thinking {bad}",
                "calls": [
                    call(
                        "edit_notebook",
                        {"edits": [{"action": "replace", "cell_id": "c1", "source": edit}]},
                    ),
                    call("update_plan", {"plan": [{"step": f"step {bad}", "status": "completed"}]}),
                ],
            },
            {"output": [{"text": f"final {bad} answer"}]},
        ]
    )
    result = run(notebook, scripted_server)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    saved = json.loads(notebook.read_text())
    assert "".join(saved["cells"][0]["source"]) == "s = '\ufffd'"
    assert "codexmax" in saved["metadata"], "the session was saved"
    assert "final \ufffd answer" in result.stdout


def test_terminal_escapes_from_the_model_are_shown_not_obeyed(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """Model text reaches the terminal with its control characters as escapes: it cannot
    clear the screen, forge a line, or write the clipboard (OSC 52)."""
    notebook = make_notebook(tmp_path / "nb.ipynb", [("c1", "code", "x = 1")])
    hostile = "done\x1b[2J\r\x1b[Kforged line\x1b]52;c;ZXZpbA==\x07 \x9b31m"
    scripted_server.load(
        [
            {"calls": [call("shell", {"command": "echo hi \x1b[2J"})]},
            {"text": hostile},
        ]
    )
    result = run(notebook, scripted_server, "--full-auto")
    assert result.returncode == 0, result.stderr
    for stream in (result.stdout, result.stderr):
        assert "\x1b" not in stream and "\x9b" not in stream and "\x07" not in stream
        assert "\r" not in stream
    assert "done\\x1b[2J\\x0d\\x1b[Kforged line" in result.stdout


def test_a_move_that_cannot_remove_its_old_file_changes_nothing(tmp_path: Path) -> None:
    """apply_patch is all or nothing: a move whose old file cannot be removed (its folder
    is read-only for the user) leaves no new file behind."""
    import asyncio
    import shutil

    import pytest

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop root's override")
    script = tmp_path / "move.py"
    script.write_text(
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from jupyter_codexmax.config import CodexMax\n"
        "from jupyter_codexmax.tools.patch import ApplyPatch\n"
        "from jupyter_codexmax.tools.registry import ToolContext, ToolError\n"
        "from jupyter_codexmax.workspace import Workspace\n"
        "root = Path(sys.argv[1]).resolve()\n"
        "ctx = ToolContext(settings=CodexMax(approval='auto'), workspace=Workspace(root),\n"
        "    doc=None, runner=None, emit=lambda e: None, redact=lambda t: t)\n"
        "patch = '*** Begin Patch\\n*** Update File: rodir/f.py\\n*** Move to: moved.py\\n"
        "@@\\n-a = 1\\n+a = 2\\n*** End Patch'\n"
        "try:\n"
        "    asyncio.run(ApplyPatch().run(ctx, {'patch': patch}))\n"
        "    print('applied')\n"
        "except ToolError as exc:\n"
        "    print('refused:', exc)\n"
    )
    work = tmp_path / "work"
    (work / "rodir").mkdir(parents=True)
    (work / "rodir" / "f.py").write_text("a = 1\n")
    (work / "rodir").chmod(0o555)
    result = subprocess.run(
        [
            "setpriv",
            "--inh-caps=-dac_override,-dac_read_search",
            "--bounding-set=-dac_override,-dac_read_search",
            "--",
            sys.executable,
            str(script),
            str(work),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    (work / "rodir").chmod(0o755)
    assert "refused:" in result.stdout and "nothing was changed" in result.stdout, result
    assert not (work / "moved.py").exists()
    assert (work / "rodir" / "f.py").read_text() == "a = 1\n"
    del asyncio


def test_a_journal_that_cannot_be_written_is_said_once_and_the_run_goes_on(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    notebook = make_notebook(tmp_path / "nb.ipynb", [("c1", "code", "x = 1")])
    blocked = tmp_path / "data-is-a-file"
    blocked.write_text("not a folder")
    scripted_server.load([{"text": "ok"}])
    result = run(notebook, scripted_server, env={"JUPYTER_DATA_DIR": str(blocked)})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert result.stderr.count("the journal could not be written") == 1
    assert "codexmax" in json.loads(notebook.read_text())["metadata"], "kept with the notebook"


def test_a_notebook_with_a_huge_number_is_one_line(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = tmp_path / "huge.ipynb"
    path.write_text(
        '{"nbformat": 4, "nbformat_minor": 5, "metadata": {"n": ' + "1" * 5000 + '}, "cells": []}'
    )
    result = run(path, scripted_server)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "huge.ipynb: cannot be read" in line and "digits" in line


def test_a_scheduler_stopping_the_run_ends_it_cleanly(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """SIGTERM (timeout(1), a CI job cancelled): one line, exit 143, no process left."""
    import signal
    import time

    notebook = make_notebook(tmp_path / "nb.ipynb", [("c1", "code", "import time; time.sleep(60)")])
    scripted_server.load([{"calls": [call("run_cells", {"all": True})]}, {"text": "never"}])
    environ = {
        **os.environ,
        "OPENAI_BASE_URL": scripted_server.base_url,
        "OPENAI_API_KEY": "sk-x-0123456789",
    }
    proc = subprocess.Popen(
        [str(BIN / "jupyter"), "codexmax", "run", str(notebook), "--task", "go", "--full-auto"],
        env=environ,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(scripted_server.requests) < 1:
        time.sleep(0.1)
    time.sleep(3)  # the cell is running in its kernel
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.rstrip().endswith("jupyter-codexmax: terminated")
    assert "Traceback" not in err
    left = subprocess.run(
        ["pgrep", "-f", str(notebook.parent)], capture_output=True, text=True, check=False
    )
    assert left.stdout.strip() == "", "no kernel left running"


def test_a_module_in_the_working_folder_never_runs_in_the_agent(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """The run restarts itself to leave the key out of its environment: a ``traitlets.py``
    where it runs is not imported in its place (it would hold the key)."""
    marker = tmp_path / "imported"
    (tmp_path / "traitlets.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    (tmp_path / "httpx.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    notebook = make_notebook(tmp_path / "nb.ipynb", [("c1", "code", "x = 1")])
    scripted_server.load([{"text": "ok"}])
    result = run(notebook, scripted_server)
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
