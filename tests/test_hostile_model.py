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
