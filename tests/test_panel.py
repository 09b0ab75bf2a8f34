"""The widget panel: events in, widget state out; clicks through the widgets' own message
path. (In this process the widgets' comms are comm's stand-ins: the same code handles a
frontend's message as in a kernel.)"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from nbhelpers import make_notebook

from jupyter_codexmax import events as ev
from jupyter_codexmax.agent.core import Agent
from jupyter_codexmax.config import CodexMax
from jupyter_codexmax.kernel.panel import Panel
from jupyter_codexmax.kernel.turnlog import Heading, TurnLog
from jupyter_codexmax.notebook.file import FileNotebook
from jupyter_codexmax.testing import ScriptedModelServer
from jupyter_codexmax.workspace import Workspace


def click(button: Any) -> None:
    """What a frontend sends when the button is clicked, handled as the kernel does."""
    button.comm.handle_msg(
        {"content": {"data": {"method": "custom", "content": {"event": "click"}}}, "buffers": []}
    )


def titles(panel: Panel) -> list[str]:
    return [row.titles[0] for row in panel.calls.children]


DIFF = "--- cell c1\n+++ cell c1\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"


def turn_events() -> list[ev.Event]:
    return [
        ev.TurnStarted(1, "Fix the data cell"),
        ev.StepStarted(1, 1),
        ev.ReasoningDelta("Reading the notebook first."),
        ev.ToolCallStarted("k1", "read_notebook", {}, "read_notebook"),
        ev.ToolCallFinished("k1", "read_notebook", True, "cells 1-3 of 3", 0.12, "§1 c1 ..."),
        ev.PlanUpdated(
            [
                {"step": "Read the notebook", "status": "completed"},
                {"step": "Fix the cell", "status": "in_progress"},
            ]
        ),
        ev.ToolCallStarted("k2", "edit_notebook", {"edits": []}, "edit_notebook replace c1"),
        ev.CellEdited("c1", "replace", DIFF, applied=False),
        ev.ToolCallFinished("k2", "edit_notebook", True, "proposed replace c1", 0.01),
        ev.ToolCallStarted("k3", "run_cells", {"cell_ids": ["c1"]}, "run_cells c1"),
        ev.CellRan("c1", "error", 0.5, None, "ValueError", "ValueError: bad value"),
        ev.ToolCallFinished("k3", "run_cells", False, "c1 error", 0.5, "§1 c1 error"),
        ev.UsageUpdated(9_000, 0, 120, 40, 9_000, 120, 9_120, 272_000, 0.0123),
        ev.CompactionFinished("remote", 250_000, 20_000, 1, 1),
        ev.TextDelta("The cell **now** "),
        ev.TextDelta("reads `x = 2`."),
    ]


def test_events_become_widget_state() -> None:
    panel = Panel(title="jupyter-codexmax · gpt-5.1-codex-max", interactive=True)
    for event in turn_events():
        panel.handle(event)
    assert panel.reasoning.layout.display == "" and "Reading the notebook" in (
        panel.reasoning_text.value
    )
    assert panel.reasoning.selected_index is None, "the reasoning starts collapsed"
    assert titles(panel) == [
        "✓ read_notebook → cells 1-3 of 3 (0.1s)",
        "✓ edit_notebook replace c1 → proposed replace c1 (0.0s)",
        "✗ run_cells c1 → c1 error (0.5s)",
    ]
    assert all(row.selected_index is None for row in panel.calls.children), "rows start closed"
    edit_body = panel.row_bodies["k2"].value
    assert "proposed cell c1" in edit_body and "+x = 2" in edit_body and "#1a7f37" in edit_body
    run_body = panel.row_bodies["k3"].value
    assert "cell c1 error: ValueError: bad value (0.5s)" in run_body
    assert "✓ Read the notebook" in panel.plan.value and "▸ Fix the cell" in panel.plan.value
    assert panel.meter.value == pytest.approx(20_000 / 272_000)
    assert "1 compaction" in panel.meter_label.value and "$0.01" in panel.meter_label.value
    assert "compacted the context (remote): 250.0k → 20.0k tokens" in panel.notices.value
    # The streamed answer as markdown (the last delta may wait for the next update).
    panel.handle(ev.TurnFinished(1, "done", "The cell **now** reads `x = 2`.", 3))
    (answer,) = panel.answer.outputs
    assert answer["data"]["text/markdown"] == "The cell **now** reads `x = 2`."
    assert "done" in panel.header.value and "step 3" in panel.header.value
    assert panel.stop_button.layout.display == "none", "nothing to stop any more"


def test_the_static_summary_keeps_what_matters() -> None:
    log = TurnLog()
    for event in [*turn_events(), ev.TurnFinished(1, "done", "The cell reads `x = 2`.", 3)]:
        log.apply(event)
    markdown = log.markdown()
    assert markdown.startswith("**jupyter-codexmax · turn 1 · done in 3 steps")
    assert "The cell reads `x = 2`." in markdown
    assert "<summary>What it did (3 actions)</summary>" in markdown
    assert "✗ run_cells c1 → c1 error (0.5s)" in markdown
    assert "cell c1 error: ValueError: bad value" in markdown
    assert "- ✓ Read the notebook" in markdown and "- ▸ Fix the cell" in markdown
    assert "context 20.0k of 272.0k (7%; 252.0k left) · 1 compaction" in markdown
    plain = log.plain()
    assert "turn 1 · done in 3 steps" in plain and "x = 2" in plain


def test_without_a_way_to_click_the_panel_says_where_to_answer() -> None:
    panel = Panel(title="t", interactive=False)
    panel.handle(ev.TurnStarted(1, "go"))
    panel.handle(ev.ApprovalRequested("approval-9", "run", "run_cells c1", "# cell c1\nx = 1"))
    (row,) = panel.approvals.children
    text = json.dumps([getattr(c, "value", "") for c in row.children])
    assert "Answer in the prompt below" in text and "run_cells c1" in text
    assert panel.stop_button.layout.display == "none"
    assert "Interrupt the kernel" in panel.hint.value


def test_stop_button_calls_back_through_its_message_path() -> None:
    stopped: list[bool] = []
    panel = Panel(title="t", interactive=True, on_stop=lambda: stopped.append(True))
    click(panel.stop_button)
    assert stopped == [True]
    assert panel.stop_button.disabled and panel.stop_button.description == "Stopping"


@pytest.mark.anyio
async def test_an_approval_click_resolves_the_waiting_approval(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    """A real agent waits for approval to run a shell command; clicking the panel's Approve
    button (through the widget's message path) lets it go on; the next one is denied."""
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load(
        [
            {"calls": [{"name": "shell", "arguments": {"command": "echo approved-run"}}]},
            {"calls": [{"name": "shell", "arguments": {"command": "echo denied-run"}}]},
            {"text": "one ran, one did not"},
        ]
    )
    agent: Agent

    def decide(request_id: str, decision: str) -> None:  # as the host wires it
        agent.resolve_approval(request_id, decision)

    panel = Panel(title="t", interactive=True, on_decision=decide)
    agent = Agent(
        scripted_settings,
        workspace=Workspace(tmp_path.resolve()),
        notebook=FileNotebook.open(path),
        approval="ask",
        on_event=panel.handle,
    )

    seen: set[str] = set()

    async def wait_for_row() -> Any:
        for _ in range(400):
            fresh = [rid for rid in panel.approval_rows if rid not in seen]
            if fresh:
                seen.add(fresh[0])
                return panel.approval_rows[fresh[0]]
            await asyncio.sleep(0.01)
        raise AssertionError("no approval was requested")

    try:
        turn = asyncio.ensure_future(agent.run_turn("Run the two commands"))
        row = await wait_for_row()
        approve, deny, _ = row.children[1].children
        assert [b.description for b in row.children[1].children] == [
            "Approve",
            "Deny",
            "Approve for the session",
        ]
        assert "$ echo approved-run" in row.children[0].value
        click(approve)
        assert approve.disabled and deny.disabled
        row = await wait_for_row()
        assert "echo denied-run" in row.children[0].value
        click(row.children[1].children[1])
        result = await asyncio.wait_for(turn, 30)
    finally:
        await agent.aclose()
    assert result.status == "done", result.error
    assert scripted_server.failures == []
    outputs = [r.body["input"][-1] for r in scripted_server.requests_to("responses")[1:]]
    assert "approved-run" in json.dumps(outputs[0])
    assert outputs[1]["output"].endswith("needs approval, and the user denied it")
    assert panel.approvals.children == (), "answered requests leave the panel"


def test_the_heading_names_the_model_that_answered() -> None:
    """Before an answer: the configured model, the effort, and an endpoint that is not
    OpenAI's. After the scripted server answered: ``scripted``, and no dollar cost."""
    heading = Heading("gpt-5.1-codex-max", "medium", "127.0.0.1:8765")
    panel = Panel(title=heading, interactive=True)
    assert "jupyter-codexmax · gpt-5.1-codex-max · medium · 127.0.0.1:8765" in panel.header.value
    panel.handle(
        ev.UsageUpdated(900, 0, 12, 0, 900, 12, 912, 272_000, None, "scripted:gpt-5.1-codex-max")
    )
    assert "jupyter-codexmax · scripted · medium · 127.0.0.1:8765" in panel.header.value
    assert "gpt-5.1-codex-max" not in panel.header.value
    assert "$" not in panel.meter_label.value
    assert "scripted · context" in panel.log.markdown() and "$" not in panel.log.markdown()
    # A dated snapshot of the configured model is the configured model.
    assert Heading("gpt-5.1-codex-max").text("gpt-5.1-codex-max-2025-11-19") == (
        "jupyter-codexmax · gpt-5.1-codex-max"
    )
    # A deployment that serves another model says which.
    assert Heading("my-deployment").text("gpt-5.1-codex-max-2025-11-19") == (
        "jupyter-codexmax · gpt-5.1-codex-max-2025-11-19"
    )


def test_the_turns_messages_are_paragraphs() -> None:
    """Two messages in two steps do not run together ("the mean.Fixed:")."""
    log = TurnLog()
    events: list[ev.Event] = [
        ev.TurnStarted(1, "fix"),
        ev.StepStarted(1, 1),
        ev.TextDelta("Looking at the mean."),
        ev.AssistantMessage("Looking at the mean."),
        ev.StepStarted(1, 2),
        ev.TextDelta("Fixed: "),
        ev.TextDelta("it converts."),
    ]
    for event in events:
        log.apply(event)
    assert log.answer == "Looking at the mean.\n\nFixed: it converts."
    log.apply(ev.AssistantMessage("Fixed: it converts."))
    log.apply(ev.TurnFinished(1, "done", "Fixed: it converts.", 2))
    assert log.answer == "Looking at the mean.\n\nFixed: it converts."


def test_notes_plan_and_counts_stay_apart_in_the_summary() -> None:
    log = TurnLog()
    events: list[ev.Event] = [
        ev.TurnStarted(1, "fix"),
        ev.StepStarted(1, 1),
        ev.ToolCallStarted("k1", "read_notebook", {}, "read_notebook"),
        ev.ToolCallFinished("k1", "read_notebook", True, "cells 1-3 of 3", 0.1),
        ev.PlanUpdated([{"step": "Read", "status": "completed"}]),
        ev.Notice("a credential in the message was masked before the model saw it"),
    ]
    for event in events:
        log.apply(event)
    log.note("stopping (interrupt again to stop waiting)", transient=True)
    assert "stopping" in log.status_note
    log.apply(ev.TurnFinished(1, "done", "ok", 1))
    markdown = log.markdown()
    assert "done in 1 step ·" in markdown and "(1 action)" in markdown
    assert "stopping" not in markdown, "a host's status line goes when the turn ends"
    plan, notes = markdown.split("**Notes**")
    assert "- ✓ Read" in plan
    assert notes.lstrip().startswith("* _a credential"), "notes are a list of their own"


def test_a_proposal_diff_keeps_its_lines_apart() -> None:
    from jupyter_codexmax.notebook.detached import Proposal

    diff = Proposal("c1", "replace", "code", "x = 2", "x = 1", 1).diff
    assert "-x = 1\n+x = 2\n" in diff
