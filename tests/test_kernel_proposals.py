"""A kernel without the bridge keeps its edits as proposals: they outlive a kernel restart,
and an unsaved notebook is said to be one."""

from __future__ import annotations

import json
from pathlib import Path

from kernelhelpers import Kernel
from nbhelpers import call, make_notebook

from jupyter_codexmax.testing import ScriptedModelServer

PROPOSE = [
    {
        "calls": [
            call(
                "edit_notebook",
                {"edits": [{"action": "replace", "cell_id": "calc", "source": "x = 42"}]},
            )
        ]
    },
    {"text": "Proposed x = 42."},
]


def notebook(folder: Path) -> Path:
    return make_notebook(
        folder / "work.ipynb",
        [("intro", "markdown", "# Work"), ("calc", "code", "x = 21"), ("show", "code", "print(x)")],
    )


def test_proposals_outlive_a_kernel_restart(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """Proposed, the kernel restarted (the notebook not saved): the proposal is still
    listed, the model is told it is back and sees it in its working copy."""
    path = notebook(tmp_path)
    env = {"JPY_SESSION_NAME": str(path)}
    scripted_server.load(PROPOSE)
    with Kernel(tmp_path, scripted_server, data_dir=tmp_path / "data", env=env) as kernel:
        kernel.run("%load_ext jupyter_codexmax")
        assert kernel.run("%%agent\nMake x 42").ok
        assert "1. change cell 2 (calc: x = 21)" in kernel.run("%agent proposals").stdout
        kernel.restart()
        scripted_server.load(
            [{"expect": {"contains": "are back in your working copy"}, "text": "Still x = 42."}]
        )
        kernel.run("%load_ext jupyter_codexmax")
        assert "1. change cell 2 (calc: x = 21)" in kernel.run("%agent proposals").stdout
        turn = kernel.run("%%agent\nWhere were we?")
        assert turn.ok, turn.stderr
        assert "proposed changes from before the restart: 1 restored" in turn.stdout
    assert scripted_server.failures == []
    sent = json.dumps(scripted_server.requests_to("responses")[-1].body["input"])
    assert "x = 42" in sent, "the working copy the model is shown holds its proposal"


def test_proposals_the_user_applied_or_changed_are_not_put_back(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = notebook(tmp_path)
    env = {"JPY_SESSION_NAME": str(path)}
    scripted_server.load(
        [
            {
                "calls": [
                    call(
                        "edit_notebook",
                        {
                            "edits": [
                                {"action": "replace", "cell_id": "calc", "source": "x = 42"},
                                {"action": "replace", "cell_id": "show", "source": "print(x * 2)"},
                            ]
                        },
                    )
                ]
            },
            {"text": "Proposed two changes."},
        ]
    )
    with Kernel(tmp_path, scripted_server, data_dir=tmp_path / "data", env=env) as kernel:
        kernel.run("%load_ext jupyter_codexmax")
        assert kernel.run("%%agent\nTwo changes").ok
        # The user takes the first as it is, and writes the second cell their own way.
        nb = json.loads(path.read_text())
        nb["cells"][1]["source"] = "x = 42"
        nb["cells"][2]["source"] = "print('x is', x)"
        path.write_text(json.dumps(nb))
        kernel.restart()
        scripted_server.load(
            [
                {
                    "expect": {"contains": ["are in the saved notebook now", "were dropped"]},
                    "text": "ok",
                }
            ]
        )
        kernel.run("%load_ext jupyter_codexmax")
        assert kernel.run("%agent proposals").stdout.strip() == "no proposed changes"
        turn = kernel.run("%%agent\nAnd now?")
        assert "1 applied by you, 1 dropped (you changed those cells)" in turn.stdout
    assert scripted_server.failures == []


def test_an_unsaved_agent_cell_is_said_to_be_unsaved(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """JupyterLab sends the running cell's id: a cell not in the saved file means the
    notebook on screen was not saved; the user and the model are told."""
    path = notebook(tmp_path)
    before = path.read_bytes()
    scripted_server.load(
        [{"expect": {"contains": "The user's notebook has unsaved changes"}, "text": "Save it."}]
    )
    with Kernel(
        tmp_path, scripted_server, data_dir=tmp_path / "data", env={"JPY_SESSION_NAME": str(path)}
    ) as kernel:
        kernel.run("%load_ext jupyter_codexmax")
        turn = kernel.run("%%agent\nUse my new cell", cell_id="new-cell-not-saved")
        assert turn.ok, turn.stderr
        assert "this cell is not in work.ipynb as saved" in turn.stdout
        # A cell that is in the file: nothing said.
        scripted_server.load([{"text": "fine"}])
        saved = kernel.run("%%agent\nAgain", cell_id="show")
        assert "as saved" not in saved.stdout
    assert scripted_server.failures == []
    assert path.read_bytes() == before


def test_a_new_notebook_at_an_old_path_starts_its_own_session(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """This machine keeps a notebook's session by its path; a notebook deleted and made
    anew at that path (no cell in common) is another notebook, and starts afresh."""
    path = notebook(tmp_path)
    env = {"JPY_SESSION_NAME": str(path)}
    scripted_server.load([{"text": "Noted."}])
    with Kernel(tmp_path, scripted_server, data_dir=tmp_path / "data", env=env) as kernel:
        kernel.run("%load_ext jupyter_codexmax")
        assert kernel.run("%%agent\nRemember PELICAN-42").ok
        path.unlink()
        make_notebook(path, [("fresh", "code", "y = 1")])
        kernel.restart()
        scripted_server.load([{"text": "Hello."}])
        kernel.run("%load_ext jupyter_codexmax")
        turn = kernel.run("%%agent\nHi")
        assert turn.ok, turn.stderr
        assert "continuing session" not in turn.stdout
    assert "PELICAN-42" not in json.dumps(scripted_server.requests_to("responses")[-1].body)
