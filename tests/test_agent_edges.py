"""Edges of the agent: stops at awkward moments, undo against later changes, kernels that
are missing or ignore interrupts, secrets in events, workspace mistakes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from nbhelpers import Session, make_notebook

from jupyter_codexmax import events as ev
from jupyter_codexmax.agent.approvals import FutureApprover
from jupyter_codexmax.config import CodexMax
from jupyter_codexmax.errors import CodexmaxError
from jupyter_codexmax.testing import ScriptedModelServer

pytestmark = pytest.mark.anyio
BIN = Path(sys.executable).parent


def call(name: str, arguments: Any, call_id: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "arguments": arguments}
    if call_id:
        entry["id"] = call_id
    return entry


def kernels_of(pid: int) -> list[int]:
    """ipykernel processes started by ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        state = stat.rsplit(")", 1)[1].split()[0]
        if parent == pid and b"ipykernel" in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


async def test_a_stop_while_the_kernel_starts_leaves_no_kernel(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load([{"calls": [call("run_cells", {"all": True})]}, {"text": "done"}])
    session = Session(scripted_settings, path)
    started = asyncio.Event()

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.ToolCallStarted):
            started.set()

    session.agent._on_event = on_event
    try:
        turn = asyncio.create_task(session.agent.run_turn("run"))
        await asyncio.wait_for(started.wait(), 30)
        await asyncio.sleep(0.05)  # the kernel is starting, not ready
        session.agent.stop()
        result = await turn
        assert result.status == "stopped"
    finally:
        await session.close()
    for _ in range(100):
        if not kernels_of(os.getpid()):
            break
        await asyncio.sleep(0.05)
    assert kernels_of(os.getpid()) == []
    assert not session.runner.started


async def test_a_cell_that_ignores_interrupts_does_not_block_the_next_run(
    tmp_path: Path,
    scripted_settings: CodexMax,
    scripted_server: ScriptedModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jupyter_codexmax.runners import headless

    monkeypatch.setattr(headless, "INTERRUPT_GRACE", 1.0)
    path = make_notebook(
        tmp_path / "nb.ipynb",
        [
            (
                "stubborn",
                "code",
                "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)",
            ),
            ("quick", "code", "print('ok')"),
        ],
    )
    scripted_server.load(
        [
            {"calls": [call("run_cells", {"cell_ids": ["stubborn"]})]},
            {"calls": [call("run_cells", {"cell_ids": ["quick"]}, "q")]},
            {"text": "done"},
        ]
    )
    session = Session(scripted_settings, path)
    try:
        turn = asyncio.create_task(session.agent.run_turn("run"))
        for _ in range(600):
            if session.runner.started and session.doc.nb.cells[0].get("execution_count"):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        session.agent.stop()
        assert (await turn).status == "stopped"
        started = time.monotonic()
        second = await session.agent.run_turn("now the quick one")
        assert second.status == "done"
        assert "§2 quick [1] ok" in str(session.outputs()["q"])
        assert time.monotonic() - started < 20, "not stuck behind the stubborn cell"
    finally:
        await session.close()


async def test_stopping_while_waiting_for_approval_takes_the_prompt_down(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load([{"calls": [call("shell", {"command": "echo hi"})]}])
    session = Session(scripted_settings, path, approval="ask", approver=FutureApprover())
    try:
        turn = asyncio.create_task(session.agent.run_turn("go"))
        for _ in range(200):
            if session.of(ev.ApprovalRequested):
                break
            await asyncio.sleep(0.02)
        session.agent.stop()
        result = await turn
    finally:
        await session.close()
    (requested,) = session.of(ev.ApprovalRequested)
    (resolved,) = session.of(ev.ApprovalResolved)
    assert resolved.request_id == requested.request_id
    assert resolved.reason == "the turn was stopped"
    assert result.status == "stopped" and result.steps == 1


async def test_undo_refuses_to_overwrite_later_changes(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    (tmp_path / "helper.py").write_text("v = 1\n")
    patch = "*** Begin Patch\n*** Update File: helper.py\n@@\n-v = 1\n+v = 2\n*** End Patch"
    scripted_server.load(
        [
            {
                "calls": [
                    call("apply_patch", {"patch": patch}),
                    call(
                        "edit_notebook",
                        {"edits": [{"action": "replace", "cell_id": "a", "source": "x = 2"}]},
                    ),
                ]
            },
            {"text": "done"},
        ]
    )
    session = Session(scripted_settings, path)
    try:
        await session.agent.run_turn("change")
        (tmp_path / "helper.py").write_text("v = 3  # the user's own edit\n")
        notebook_after = path.read_bytes()
        with pytest.raises(CodexmaxError, match=r"cannot undo: helper.py changed"):
            await session.agent.undo()
        assert (tmp_path / "helper.py").read_text() == "v = 3  # the user's own edit\n"
        assert path.read_bytes() == notebook_after, "nothing was undone"
        # Put it back as the turn left it: now undo works (the record was kept).
        (tmp_path / "helper.py").write_text("v = 2\n")
        await session.agent.undo()
        assert (tmp_path / "helper.py").read_text() == "v = 1\n"
    finally:
        await session.close()


async def test_undo_refuses_when_the_notebook_changed_on_disk(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load(
        [
            {
                "calls": [
                    call(
                        "edit_notebook",
                        {"edits": [{"action": "replace", "cell_id": "a", "source": "x = 2"}]},
                    )
                ]
            },
            {"text": "done"},
        ]
    )
    session = Session(scripted_settings, path)
    try:
        await session.agent.run_turn("change")
        other = make_notebook(tmp_path / "other.ipynb", [("z", "code", "someone else")])
        path.write_bytes(other.read_bytes())
        with pytest.raises(CodexmaxError, match=r"cannot undo: nb.ipynb changed"):
            await session.agent.undo()
        assert path.read_bytes() == other.read_bytes()
        assert session.doc.cells[0]["source"] == "x = 2", "memory not touched either"
    finally:
        await session.close()


async def test_a_notebook_in_another_language_is_not_run_in_python(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "r.ipynb", [("a", "code", "print(1 + 1)")])
    import json

    data = json.loads(path.read_text())
    data["metadata"]["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    path.write_text(json.dumps(data, indent=1))
    scripted_server.load(
        [{"calls": [call("run_cells", {"all": True}, "r")]}, {"text": "cannot run it"}]
    )
    session = Session(scripted_settings, path)
    try:
        await session.agent.run_turn("run")
    finally:
        await session.close()
    out = str(session.outputs()["r"])
    assert "'ir' (r) is not installed" in out and "cannot be run" in out
    assert session.runner.starts == 0
    assert "outputs" not in path.read_text() or '"outputs": []' in path.read_text()


async def test_a_missing_python_kernelspec_runs_in_python3_and_says_so(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "p.ipynb", [("a", "code", "print(40 + 2)")])
    import json

    data = json.loads(path.read_text())
    data["metadata"]["kernelspec"] = {
        "name": "conda-env-old-py",
        "display_name": "old",
        "language": "python",
    }
    path.write_text(json.dumps(data, indent=1))
    scripted_server.load([{"calls": [call("run_cells", {"all": True}, "r")]}, {"text": "ran"}])
    session = Session(scripted_settings, path)
    try:
        await session.agent.run_turn("run")
    finally:
        await session.close()
    out = str(session.outputs()["r"])
    assert "note: the notebook's kernel 'conda-env-old-py' is not installed" in out
    assert "42" in out


async def test_events_never_carry_secrets(
    tmp_path: Path,
    scripted_settings: CodexMax,
    scripted_server: ScriptedModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jupyter_codexmax.testing.pytest_plugin import TEST_API_KEY

    monkeypatch.setenv("BILLING_TOKEN", "bt-9f8e7d6c5b4a")
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    patch = (
        "*** Begin Patch\n*** Add File: conf.py\n"
        f"+KEY = '{TEST_API_KEY}'\n+TOKEN = 'bt-9f8e7d6c5b4a'\n*** End Patch"
    )
    scripted_server.load(
        [
            {
                "calls": [
                    call(
                        "edit_notebook",
                        {
                            "edits": [
                                {
                                    "action": "replace",
                                    "cell_id": "a",
                                    "source": f"key = '{TEST_API_KEY}'",
                                }
                            ]
                        },
                    ),
                    call("apply_patch", {"patch": patch}),
                ]
            },
            {"text": "done"},
        ]
    )
    session = Session(scripted_settings, path)
    try:
        await session.agent.run_turn("write it")
    finally:
        await session.close()
    seen = repr(session.events)
    assert TEST_API_KEY not in seen and "bt-9f8e7d6c5b4a" not in seen
    assert session.of(ev.CellEdited) and session.of(ev.FileChanged)
    assert "********" in seen


async def test_agents_md_is_not_read_through_a_link_out_of_the_workspace(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("PRIVATE NOTES FROM ELSEWHERE")
    work = tmp_path / "work"
    work.mkdir()
    (work / "AGENTS.md").symlink_to(outside / "secret.md")
    path = make_notebook(work / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load([{"text": "hello"}])
    session = Session(scripted_settings, path)
    try:
        await session.agent.run_turn("hi")
    finally:
        await session.close()
    assert "PRIVATE NOTES" not in str(scripted_server.requests[0].body)


def run_cli(args: list[str], server: ScriptedModelServer) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-edge-0123456"}
    return subprocess.run(
        [str(BIN / "jupyter-codexmax"), "run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_workspace_mistakes_are_usage_errors(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    other = tmp_path / "elsewhere"
    other.mkdir()
    for args, needle in [
        (["--workspace", str(tmp_path / "missing")], "is not a folder"),
        (["--workspace", str(other)], "not inside the workspace"),
    ]:
        result = run_cli([str(path), "--task", "x", *args], scripted_server)
        assert result.returncode == 2, result.stderr
        assert needle in result.stderr and "Traceback" not in result.stderr
    assert scripted_server.requests == []


def test_jobs_really_run_at_the_same_time(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    marks = tmp_path / "marks.txt"

    def source(name: str) -> str:
        mark = f"open({str(marks)!r}, 'a').write('{{}} {name} %f\\n' % time.time())"
        return f"import time\n{mark.format('start')}\ntime.sleep(2)\n{mark.format('end')}"

    paths = [
        make_notebook(tmp_path / f"{name}.ipynb", [("a", "code", source(name))])
        for name in ("one", "two")
    ]
    scripted_server.load(
        {
            "conversations": [
                {
                    "match": f"{name}.ipynb",
                    "steps": [{"calls": [call("run_cells", {"all": True})]}, {"text": "ran"}],
                }
                for name in ("one", "two")
            ]
        }
    )
    result = run_cli(
        [*map(str, paths), "--task", "run", "--full-auto", "--jobs", "2"], scripted_server
    )
    assert result.returncode == 0, result.stderr
    times: dict[str, float] = {}
    for line in marks.read_text().splitlines():
        kind, name, when = line.split()
        times[f"{kind} {name}"] = float(when)
    assert times["start two"] < times["end one"] and times["start one"] < times["end two"]
