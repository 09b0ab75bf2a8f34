"""Files are written as the user's own process may write them, never through a link swapped
in after a path was checked; a notebook that is a link has its workspace where the link is."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from nbhelpers import call, make_notebook

from jupyter_codexmax.safefs import remove_inside, write_inside
from jupyter_codexmax.testing import ScriptedModelServer

BIN = Path(sys.executable).parent
#: Runs a command as root without root's power to ignore file permissions: as a user who
#: owns the files, but may not write one made read-only.
NO_OVERRIDE = [
    "setpriv",
    "--inh-caps=-dac_override,-dac_read_search",
    "--bounding-set=-dac_override,-dac_read_search",
    "--",
]


def as_plain_user() -> bool:
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


def run(
    args: list[str], server: ScriptedModelServer, *, cwd: Path, prefix: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-perm-0123456789"}
    return subprocess.run(
        [*(prefix or []), str(BIN / "jupyter"), "codexmax", "run", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.skipif(not as_plain_user(), reason="needs root and setpriv to drop the override")
def test_a_read_only_notebook_is_not_replaced(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """0444, and a user without root's override: refused before any request, in one line;
    the file is the same file (no rename), with the same bytes."""
    path = make_notebook(tmp_path / "locked.ipynb", [("c1", "code", "x = 1")])
    path.chmod(0o444)
    before = path.read_bytes(), path.stat().st_ino
    scripted_server.load([{"text": "never"}])
    result = run([str(path), "--task", "edit it", "--full-auto"], scripted_server, cwd=tmp_path,
                 prefix=NO_OVERRIDE)  # fmt: skip
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "locked.ipynb: you cannot write it (mode r--r--r--)" in line
    assert "Traceback" not in result.stderr
    assert (path.read_bytes(), path.stat().st_ino) == before
    assert scripted_server.requests == []
    # Reading it is still allowed.
    scripted_server.load([{"text": "Read it."}])
    read = run([str(path), "--task", "look", "--approval", "read-only"], scripted_server,
               cwd=tmp_path, prefix=NO_OVERRIDE)  # fmt: skip
    assert read.returncode == 0, read.stderr


@pytest.mark.skipif(not as_plain_user(), reason="needs root and setpriv to drop the override")
def test_apply_patch_refuses_a_read_only_file_and_changes_nothing(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    (tmp_path / ".git").mkdir()
    locked = tmp_path / "locked.py"
    locked.write_text("a = 1\n")
    locked.chmod(0o444)
    other = tmp_path / "other.py"
    other.write_text("b = 1\n")
    notebook = make_notebook(tmp_path / "nb.ipynb", [("c1", "code", "x = 1")])
    patch = (
        "*** Begin Patch\n*** Update File: other.py\n@@\n-b = 1\n+b = 2\n"
        "*** Update File: locked.py\n@@\n-a = 1\n+a = 2\n*** End Patch"
    )
    scripted_server.load(
        [{"calls": [call("apply_patch", {"patch": patch})]}, {"text": "Could not."}]
    )
    result = run([str(notebook), "--task", "patch", "--full-auto"], scripted_server,
                 cwd=tmp_path, prefix=NO_OVERRIDE)  # fmt: skip
    assert result.returncode == 0, result.stderr
    told = json.dumps(scripted_server.requests[1].body["input"][-1])
    assert "you cannot write it" in told and "nothing was changed" in told
    assert locked.read_text() == "a = 1\n" and other.read_text() == "b = 1\n"


def test_a_folder_swapped_for_a_link_is_never_followed(tmp_path: Path) -> None:
    root = tmp_path / "work"
    (root / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = root / "sub" / "x.txt"
    # Checked while "sub" was a folder; swapped for a link to outside before the write.
    (root / "sub").rmdir()
    (root / "sub").symlink_to(outside)
    with pytest.raises(OSError, match="sub is a link or not a folder"):
        write_inside(root, target, b"data")
    with pytest.raises(OSError, match="sub is a link or not a folder"):
        remove_inside(root, target)
    assert list(outside.iterdir()) == []
    # A link in place of the file itself is replaced, never written through.
    (root / "sub").unlink()
    (root / "sub").mkdir()
    (outside / "victim.txt").write_text("keep")
    (root / "sub" / "x.txt").symlink_to(outside / "victim.txt")
    with pytest.raises(OSError, match="is a link"):
        write_inside(root, target, b"data")
    assert (outside / "victim.txt").read_text() == "keep"


def test_apply_patch_racing_a_swapped_folder_writes_nothing_outside(tmp_path: Path) -> None:
    """A thread swaps a folder of the workspace for a link to outside, over and over, while
    apply_patch adds files into it: each file lands inside, or the patch fails; none is
    ever created outside (before, dozens of 300 were)."""
    import asyncio

    from jupyter_codexmax.config import CodexMax
    from jupyter_codexmax.tools.patch import ApplyPatch
    from jupyter_codexmax.tools.registry import ToolContext, ToolError
    from jupyter_codexmax.workspace import Workspace

    root = tmp_path / "work"
    (root / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    # Another process (no lock shared with this one) swaps the folder for a link to outside
    # and back, as fast as it can.
    swapper = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys\n"
            "root, outside = sys.argv[1], sys.argv[2]\n"
            "sub, away = os.path.join(root, 'sub'), os.path.join(root, 'away')\n"
            "while True:\n"
            "    try:\n"
            "        os.rename(sub, away); os.symlink(outside, sub)\n"
            "        os.unlink(sub); os.rename(away, sub)\n"
            "    except OSError: pass\n",
            str(root),
            str(outside),
        ]
    )
    ctx = ToolContext(
        settings=CodexMax(approval="auto"),
        workspace=Workspace(root.resolve()),
        doc=None,
        runner=None,
        emit=lambda event: None,
        redact=lambda text: text,
        image_ok=False,
        propose_only=False,
        before_file_change=lambda path: None,
        state={},
        cell_timeout=10.0,
    )
    tool = ApplyPatch()
    written = 0
    try:
        for i in range(300):
            patch = f"*** Begin Patch\n*** Add File: sub/f{i}.txt\n+{i}\n*** End Patch"
            try:
                asyncio.run(tool.run(ctx, {"patch": patch}))
                written += 1
            except (ToolError, OSError):
                pass  # refused: the folder was a link when checked, or when written
    finally:
        swapper.kill()
        swapper.wait()
    assert list(outside.iterdir()) == [], "a file was created outside the workspace"
    assert written > 0, "some patches went through while the folder was a folder"


def test_a_notebook_that_is_a_link_has_its_workspace_where_the_link_is(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """A notebook linked from elsewhere does not move the workspace to where it points: the
    files beside its target stay out of reach."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.txt").write_text("private notes\n")
    target = make_notebook(elsewhere / "real.ipynb", [("c1", "code", "x = 1")])
    work = tmp_path / "work"
    work.mkdir()
    (work / "link.ipynb").symlink_to(target)
    scripted_server.load(
        [
            {"calls": [call("read_file", {"path": str(elsewhere / "secret.txt")})]},
            {"text": "Could not read it."},
        ]
    )
    result = run([str(work / "link.ipynb"), "--task", "read", "--approval", "read-only"],
                 scripted_server, cwd=work)  # fmt: skip
    assert result.returncode == 0, result.stderr
    first = json.dumps(scripted_server.requests[0].body)
    assert f"Workspace: {work.resolve()}" in first
    told = json.dumps(scripted_server.requests[1].body["input"][-1])
    assert "outside the workspace" in told and "private notes" not in told
