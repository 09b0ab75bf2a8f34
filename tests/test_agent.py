"""The agent core end to end: a real kernel, the scripted model server, real files."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbhelpers import Session, cells_by_id, make_notebook, raw_cells, without_session

from jupyter_codexmax import events as ev
from jupyter_codexmax.agent.approvals import FutureApprover, RefusingApprover
from jupyter_codexmax.agent.core import ABORTED
from jupyter_codexmax.config import CodexMax
from jupyter_codexmax.testing import ScriptedModelServer

pytestmark = pytest.mark.anyio

STATS = [
    ("intro", "markdown", "# Stats\nThe mean of some numbers."),
    ("data", "code", "values = [3, 1, 4, 1, 5, 9, 2, 6]"),
    ("mean", "code", "mean = sum(values) / len(value)"),
    ("show", "code", 'print(f"mean={mean:.3f}")'),
    ("later", "code", "# not part of the task\nunused = 1"),
]


def call(name: str, arguments: Any, call_id: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "arguments": arguments}
    if call_id:
        entry["id"] = call_id
    return entry


async def test_the_agent_fixes_a_notebook(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "stats.ipynb", STATS)
    original = path.read_text()
    scripted_server.load(
        [
            {"calls": [call("read_notebook", {})]},
            {
                "expect": {"contains": "len(value)"},
                "calls": [call("run_cells", {"cell_ids": ["data", "mean"]})],
            },
            {
                "expect": {"contains": "NameError"},
                "calls": [
                    call(
                        "edit_notebook",
                        {
                            "edits": [
                                {
                                    "action": "find_replace",
                                    "cell_id": "mean",
                                    "find": "len(value)",
                                    "replace": "len(values)",
                                }
                            ]
                        },
                    )
                ],
            },
            {"calls": [call("run_cells", {"cell_ids": ["mean", "show"]})]},
            {"expect": {"contains": "mean=3.875"}, "text": "Fixed: len(values)."},
        ]
    )
    session = Session(scripted_settings, path)
    try:
        result = await session.agent.run_turn("Fix the failing cell")
    finally:
        await session.close()
    assert scripted_server.failures == []
    assert (result.status, result.final_text, result.steps) == ("done", "Fixed: len(values).", 5)

    saved = nbformat.read(path, as_version=4)
    nbformat.validate(saved)
    cells = cells_by_id(path)
    assert cells["mean"]["source"] == "mean = sum(values) / len(values)"
    assert cells["show"]["outputs"][0]["text"] == "mean=3.875\n"
    assert cells["mean"]["outputs"] == []
    before = json.loads(original)
    stored = raw_cells(path)
    for untouched in ("intro", "later"):
        assert stored[untouched] == next(c for c in before["cells"] if c["id"] == untouched)
        block = json.dumps(stored[untouched], indent=1, sort_keys=True, ensure_ascii=False)
        indented = "\n".join("  " + line for line in block.splitlines())
        assert indented in original and indented in path.read_text(), "byte for byte"
    ran = session.of(ev.CellRan)
    assert [(e.cell_id, e.status) for e in ran] == [
        ("data", "ok"),
        ("mean", "error"),
        ("mean", "ok"),
        ("show", "ok"),
    ]
    assert "NameError" in (ran[1].error or "")
    edited = session.of(ev.CellEdited)
    assert len(edited) == 1 and "+mean = sum(values) / len(values)" in edited[0].diff
    assert session.of(ev.TurnFinished)[0].status == "done"
    assert session.agent.usage_total.input_tokens > 0


async def test_tool_mistakes_go_back_to_the_model(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "stats.ipynb", STATS)
    scripted_server.load(
        [
            {
                "calls": [
                    call("no_such_tool", {}, "c1"),
                    call("read_notebook", '{"start": ', "c2"),
                    call("read_notebook", {"start": "one"}, "c3"),
                    call(
                        "edit_notebook", {"edits": [{"action": "delete", "cell_id": "zzz"}]}, "c4"
                    ),
                ]
            },
            {
                "expect": {
                    "contains": [
                        "there is no tool 'no_such_tool'",
                        "not valid JSON",
                        "must be integer",
                        "no cell has id 'zzz'",
                    ]
                },
                "text": "Understood.",
            },
        ]
    )
    session = Session(scripted_settings, path)
    try:
        result = await session.agent.run_turn("go")
    finally:
        await session.close()
    assert scripted_server.failures == []
    assert result.status == "done"
    outputs = session.outputs()
    assert all(str(outputs[c]).startswith("error: ") for c in ("c1", "c2", "c3", "c4"))
    assert [e.ok for e in session.of(ev.ToolCallFinished)] == [False] * 4
    copy = make_notebook(tmp_path / "copy.ipynb", STATS)
    assert without_session(path) == copy.read_bytes(), "only the agent's own metadata changed"
    assert cells_by_id(path) == cells_by_id(copy)


def approval_script() -> list[dict[str, Any]]:
    patch = "*** Begin Patch\n*** Add File: notes.txt\n+hello\n*** End Patch"
    return [
        {
            "calls": [
                call(
                    "edit_notebook",
                    {"edits": [{"action": "replace", "cell_id": "later", "source": "unused = 2"}]},
                    "edit",
                ),
                call("run_cells", {"cell_ids": ["data"]}, "run"),
                call("shell", {"command": "echo from-shell > shell.txt"}, "shell"),
                call("apply_patch", {"patch": patch}, "patch"),
                call("restart_kernel", {}, "restart"),
            ]
        },
        {"text": "done"},
    ]


@pytest.mark.parametrize("level", ["read-only", "ask", "auto"])
async def test_approval_levels(
    level: str, tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "stats.ipynb", STATS)
    original = path.read_text()
    scripted_server.load(approval_script())
    session = Session(scripted_settings, path, approval=level, approver=RefusingApprover())
    try:
        result = await session.agent.run_turn("do things")
    finally:
        await session.close()
    assert result.status == "done"
    out = {k: str(v) for k, v in session.outputs().items()}
    if level == "read-only":
        assert out["edit"].startswith("PROPOSED, not applied")
        assert out["patch"].startswith("PROPOSED, not applied")
        for refused in ("run", "shell", "restart"):
            assert out[refused].startswith("refused: the approval level is read-only")
        assert path.read_text() == original
        assert not (tmp_path / "notes.txt").exists()
        assert session.runner.starts == 0
    elif level == "ask":
        assert out["edit"].startswith("replace later")
        assert cells_by_id(path)["later"]["source"] == "unused = 2"
        for asked in ("run", "shell", "patch", "restart"):
            assert out[asked].startswith("not done:") and "--approval auto" in out[asked]
        assert not (tmp_path / "notes.txt").exists()
        assert not (tmp_path / "shell.txt").exists()
        assert session.runner.starts == 0
        assert len(session.of(ev.ApprovalRequested)) == 4
    else:
        assert (tmp_path / "notes.txt").read_text() == "hello\n"
        assert (tmp_path / "shell.txt").read_text() == "from-shell\n"
        assert out["run"].startswith("§2 data [1] ok")
        assert "restarted" in out["restart"]
        assert session.runner.starts == 2


async def test_asking_a_person(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    """Approve, approve for the session (not asked again), deny."""
    path = make_notebook(tmp_path / "stats.ipynb", STATS)
    scripted_server.load(
        [
            {"calls": [call("shell", {"command": "echo one >> log.txt"}, "a")]},
            {"calls": [call("shell", {"command": "echo one >> log.txt"}, "b")]},
            {"calls": [call("shell", {"command": "echo two >> log.txt"}, "c")]},
            {"text": "done"},
        ]
    )
    approver = FutureApprover()
    answers = iter(["approve_session", "deny"])
    session = Session(scripted_settings, path, approval="ask", approver=approver)

    def answer(event: ev.Event) -> None:
        session.events.append(event)
        if isinstance(event, ev.ApprovalRequested):
            decision = next(answers)
            asyncio.get_running_loop().call_later(
                1.0, session.agent.resolve_approval, event.request_id, decision
            )

    session.agent._on_event = answer
    try:
        result = await session.agent.run_turn("log things")
    finally:
        await session.close()
    assert result.status == "done"
    assert (tmp_path / "log.txt").read_text() == "one\none\n"
    assert len(session.of(ev.ApprovalRequested)) == 2
    # A call's time is its own: the person's second to answer is not in it.
    first = next(e for e in session.of(ev.ToolCallFinished) if e.call_id == "a")
    assert first.ok and first.duration < 0.9
    out = session.outputs()
    assert str(out["c"]).startswith("not done:") and "denied" in str(out["c"])


async def test_stopping_mid_turn(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(
        tmp_path / "slow.ipynb",
        [("slow", "code", "import time\ntime.sleep(60)"), ("quick", "code", "print('ok')")],
    )
    scripted_server.load(
        [
            {
                "calls": [
                    call("run_cells", {"cell_ids": ["slow"]}, "run1"),
                    call("read_notebook", {}, "read1"),
                ]
            },
            {"calls": [call("run_cells", {"cell_ids": ["quick"]}, "run2")]},
            {"text": "second turn done"},
        ]
    )
    session = Session(scripted_settings, path)
    started = asyncio.Event()

    def on_event(event: ev.Event) -> None:
        session.events.append(event)
        if isinstance(event, ev.ToolCallStarted) and event.name == "run_cells":
            started.set()

    session.agent._on_event = on_event
    try:
        turn = asyncio.create_task(session.agent.run_turn("run the slow cell"))
        await asyncio.wait_for(started.wait(), 30)
        for _ in range(600):  # until the kernel is up and busy with the cell
            if session.runner.started and session.doc.nb.cells[0].get("execution_count"):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert session.agent.stop()
        result = await asyncio.wait_for(turn, 30)
        assert result.status == "stopped"
        history = session.agent.history
        calls = [i["call_id"] for i in history if i.get("type") == "function_call"]
        outputs = session.outputs()
        assert set(calls) == set(outputs) == {"run1", "read1"}
        assert outputs["run1"] == ABORTED and outputs["read1"] == ABORTED
        slow = session.doc.nb.cells[0]
        assert slow.outputs and slow.outputs[-1]["ename"] == "KeyboardInterrupt"
        # The session goes on: the kernel was interrupted, not lost.
        second = await session.agent.run_turn("now the quick one")
        assert second.status == "done"
        assert "ok" in str(session.outputs()["run2"])
        assert session.runner.starts == 1
    finally:
        await session.close()


async def test_undo_restores_the_notebook_and_files(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "stats.ipynb", STATS)
    (tmp_path / "helper.py").write_text("x = 1\n")
    original = path.read_bytes()
    patch = (
        "*** Begin Patch\n*** Update File: helper.py\n@@\n-x = 1\n+x = 2\n"
        "*** Add File: new.py\n+y = 3\n*** End Patch"
    )
    scripted_server.load(
        [
            {
                "calls": [
                    call("edit_notebook", {"edits": [{"action": "delete", "cell_id": "intro"}]}),
                    call("run_cells", {"cell_ids": ["data"]}),
                    call("apply_patch", {"patch": patch}),
                ]
            },
            {"text": "changed things"},
            {"expect": {"contains": "The user undid the changes"}, "text": "noted"},
        ]
    )
    session = Session(scripted_settings, path)
    try:
        await session.agent.run_turn("change things")
        assert path.read_bytes() != original
        assert (tmp_path / "helper.py").read_text() == "x = 2\n"
        note = await session.agent.undo()
        assert "stats.ipynb" in note and "helper.py" in note
        assert without_session(path) == original
        assert (tmp_path / "helper.py").read_text() == "x = 1\n"
        assert not (tmp_path / "new.py").exists()
        assert await session.agent.undo() == "nothing to undo"
        assert (await session.agent.run_turn("ok?")).status == "done"
    finally:
        await session.close()
    assert scripted_server.failures == []


async def test_secrets_never_reach_the_model(
    tmp_path: Path,
    scripted_settings: CodexMax,
    scripted_server: ScriptedModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cell printing the environment, a shell ``env``, a file holding the key: the model,
    the events and the notebook see none of the secrets."""
    from jupyter_codexmax.testing.pytest_plugin import TEST_API_KEY

    monkeypatch.setenv("WAREHOUSE_TOKEN", "wh-token-5f2e9a7c31")
    (tmp_path / "key.txt").write_text(TEST_API_KEY + "\n")
    path = make_notebook(
        tmp_path / "env.ipynb",
        [
            ("env", "code", "import os\nprint(dict(os.environ))"),
            ("file", "code", "print(open('key.txt').read())"),
        ],
    )
    scripted_server.load(
        [
            {
                "calls": [
                    call("run_cells", {"all": True}),
                    call("shell", {"command": "env; cat key.txt"}),
                    call("read_file", {"path": "key.txt"}),
                    call("search_files", {"pattern": "sk-"}),
                ]
            },
            {"text": "looked"},
        ]
    )
    session = Session(scripted_settings, path)
    try:
        await session.agent.run_turn("print things")
    finally:
        await session.close()
    sent = json.dumps([r.body for r in scripted_server.requests])
    # The cell printed the kernel's environment (PATH is there), in which no credential
    # is left; the shell's `env` shows none either.
    assert '\\"PATH\\"' in sent or "'PATH'" in sent, "the environment was printed, as a check"
    assert "WAREHOUSE_TOKEN" not in sent
    for secret in (TEST_API_KEY, "wh-token-5f2e9a7c31"):
        assert secret not in sent
        assert secret not in repr(session.events)
    assert "********" in sent
    kernel_env = cells_by_id(path)["env"]["outputs"][0]["text"]
    assert "OPENAI_API_KEY" not in kernel_env, "the kernel does not get the agent's key"


async def test_kernel_death_and_timeouts_are_reported(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(
        tmp_path / "k.ipynb",
        [
            ("set", "code", "x = 41"),
            ("die", "code", "import os\nos._exit(1)"),
            ("use", "code", "print(x + 1)"),
            ("spin", "code", "while True:\n    pass"),
            ("after", "code", "print('still here')"),
        ],
    )
    scripted_server.load(
        [
            {"calls": [call("run_cells", {"cell_ids": ["set", "die"]}, "r1")]},
            {
                "expect": {"contains": "the kernel died"},
                "calls": [call("run_cells", {"cell_ids": ["use"]}, "r2")],
            },
            {"calls": [call("run_cells", {"cell_ids": ["spin"], "timeout": 1}, "r3")]},
            {
                "expect": {"contains": "time limit"},
                "calls": [call("run_cells", {"cell_ids": ["after"]}, "r4")],
            },
            {"text": "reported"},
        ]
    )
    session = Session(scripted_settings, path)
    try:
        result = await session.agent.run_turn("run them")
    finally:
        await session.close()
    assert scripted_server.failures == []
    assert result.status == "done"
    out = {k: str(v) for k, v in session.outputs().items()}
    assert "dead" in out["r1"] and "next run starts a fresh kernel" in out["r1"]
    assert "NameError" in out["r2"], "a fresh kernel: x is gone"
    assert "timeout" in out["r3"]
    assert "still here" in out["r4"]
    assert session.runner.starts == 2


async def test_the_fixed_part_of_a_request_is_lean(scripted_settings: CodexMax) -> None:
    """Instructions and tool schemas: at most 4,000 tokens (the Codex CLI sends 9,500-13,800)."""
    from jupyter_codexmax.agent.instructions import build_instructions
    from jupyter_codexmax.agent.tokens import estimate_tokens
    from jupyter_codexmax.providers import ModelRequest, open_provider
    from jupyter_codexmax.tools import default_tools

    provider = open_provider(scripted_settings)
    body = provider.build_body(
        ModelRequest(
            input=[], instructions=build_instructions("ask"), tools=default_tools().specs()
        )
    )
    await provider.aclose()
    fixed = json.dumps({"instructions": body["instructions"], "tools": body["tools"]})
    assert estimate_tokens(fixed) <= 4_000


async def test_agents_md_and_context(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "AGENTS.md").write_text("Use snake_case everywhere.")
    sub = tmp_path / "analysis"
    sub.mkdir()
    (sub / "AGENTS.md").write_text("Plots go in figures/.")
    path = make_notebook(sub / "stats.ipynb", STATS)
    scripted_server.load(
        [
            {
                "expect": {
                    "contains": [
                        "Use snake_case everywhere.",
                        "Plots go in figures/.",
                        "analysis/stats.ipynb",
                    ]
                },
                "text": "ok",
            }
        ]
    )
    from jupyter_codexmax.workspace import Workspace

    session = Session(scripted_settings, path)
    session.agent.workspace = Workspace.for_notebook(path)
    try:
        assert (await session.agent.run_turn("hi")).status == "done"
    finally:
        await session.close()
    assert scripted_server.failures == []
    context = scripted_server.requests[0].body["input"][0]
    assert context["role"] == "developer"
    assert session.agent.workspace.root == tmp_path.resolve()


async def test_images_go_to_models_that_take_them(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    png = (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAAB"
        "JRU5ErkJggg=="
    )
    outputs = {
        "plot": [
            {
                "output_type": "display_data",
                "metadata": {},
                "data": {"image/png": png, "text/plain": "<Figure size 1x1>"},
            }
        ]
    }
    path = make_notebook(tmp_path / "img.ipynb", [("plot", "code", "plot()")], outputs=outputs)
    for images, expected in ((True, "input_image"), (False, "not sent")):
        scripted_settings.models = {"gpt-5.1-codex-max": {"images": images}}
        scripted_server.load([{"calls": [call("read_notebook", {})]}, {"text": "seen"}])
        session = Session(scripted_settings, path)
        try:
            await session.agent.run_turn("look")
        finally:
            await session.close()
        output = json.dumps(scripted_server.requests[-1].body["input"][-1])
        assert expected in output
        assert (png in output) is images


async def test_the_first_request_has_the_notebook_once(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    """A new session's first request already holds the notebook as it is (no read needed
    to see it); a resumed session's too, once, as it is now."""
    from jupyter_codexmax.agent.session import NOTEBOOK_VIEW_MARK

    path = make_notebook(tmp_path / "stats.ipynb", STATS)
    scripted_server.load([{"text": "It computes a mean."}])
    session = Session(scripted_settings, path)
    try:
        await session.agent.run_turn("What does it do?")
    finally:
        await session.close()
    first = json.dumps(scripted_server.requests_to("responses")[0].body["input"])
    assert first.count(NOTEBOOK_VIEW_MARK) == 1
    assert "len(value)" in first and "values = [3, 1, 4" in first

    cells = nbformat.read(path, as_version=4)
    cells.cells[2].source = "mean = sum(values) / len(values)  # fixed by hand"
    nbformat.write(cells, path)
    scripted_server.load([{"text": "You fixed it."}])
    session = Session(scripted_settings, path)
    try:
        await session.agent.run_turn("And now?")
    finally:
        await session.close()
    resumed = json.dumps(scripted_server.requests_to("responses")[-1].body["input"])
    # The first turn's view is part of that turn's history; the last view is of now.
    assert "# fixed by hand" in resumed.rsplit(NOTEBOOK_VIEW_MARK, 1)[1]


async def test_the_first_request_says_the_task_once(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    """The ledger has nothing to tell at a session's start: the task is in the request once
    (it was also in the ledger's copy, up to 1,000 characters of it twice)."""
    path = make_notebook(tmp_path / "stats.ipynb", STATS)
    scripted_server.load([{"text": "Done."}])
    session = Session(scripted_settings, path)
    try:
        await session.agent.run_turn("Rename the variable zqxw_unique_marker please")
    finally:
        await session.close()
    first = json.dumps(scripted_server.requests_to("responses")[0].body["input"])
    assert first.count("zqxw_unique_marker") == 1
