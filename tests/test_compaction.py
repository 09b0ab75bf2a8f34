"""Compaction, the ledger and the stored record, at their edges (many found by review)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from nbhelpers import call, make_notebook

from jupyter_codexmax import events as ev
from jupyter_codexmax.agent.compaction import (
    _newest_that_fit,
    is_model_output,
    pending_items,
    prompt,
    retained_messages,
)
from jupyter_codexmax.agent.core import Agent
from jupyter_codexmax.agent.tokens import TokenCounter
from jupyter_codexmax.config import CodexMax
from jupyter_codexmax.notebook.file import FileNotebook
from jupyter_codexmax.providers.items import user_message
from jupyter_codexmax.session.integrity import sign
from jupyter_codexmax.session.journal import journal_path
from jupyter_codexmax.session.store import SessionRecord, fit_record, latest_record
from jupyter_codexmax.testing import ScriptedModelServer
from jupyter_codexmax.workspace import Workspace

pytestmark = pytest.mark.anyio

KEY = "sk-proj-" + "Q" * 30


def agent_for(
    settings: CodexMax, path: Path, events: list[ev.Event] | None = None, **kwargs: Any
) -> Agent:
    return Agent(
        settings,
        workspace=Workspace(path.parent.resolve()),
        notebook=FileNotebook.open(path),
        approval=kwargs.pop("approval", "auto"),
        on_event=(events.append if events is not None else None),
        **kwargs,
    )


def stored(path: Path) -> SessionRecord:
    record = latest_record(FileNotebook.open(path).nb)
    assert record is not None
    return record


# -- usage and cost of compaction ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["local", "remote"])
async def test_compaction_requests_are_counted_and_billed(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer, method: str
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_settings.compaction = "local" if method == "local" else "auto"
    steps: list[dict[str, Any]] = [
        {"text": "one", "usage": {"input_tokens": 1_000, "output_tokens": 10}}
    ]
    if method == "local":
        steps.append(
            {
                "expect": {"contains": "hand-off summary"},
                "text": "SUMMARY",
                "usage": {"input_tokens": 200_000, "output_tokens": 5_000},
            }
        )
    scripted_server.load(
        {
            "steps": steps,
            "compactions": [
                {"summary": "s", "usage": {"input_tokens": 200_000, "output_tokens": 5_000}}
            ],
        }
    )
    events: list[ev.Event] = []
    # The scripted server answers as "scripted:<model>", which has no price: give it one.
    scripted_settings.prices = {
        f"scripted:{scripted_settings.model}": {"input": 1.25, "output": 10.0}
    }
    agent = agent_for(scripted_settings, path, events)
    try:
        await agent.run_turn("first")
        before_tokens, before_cost = agent.usage_total.input_tokens, agent.cost
        await agent.compact()
    finally:
        await agent.aclose()
    assert scripted_server.failures == []
    assert agent.usage_total.input_tokens == before_tokens + 200_000
    assert agent.usage_total.output_tokens == 10 + 5_000
    assert agent.cost > before_cost
    usage = [e for e in events if isinstance(e, ev.UsageUpdated)][-1]
    assert usage.total_input_tokens == 201_000 and usage.cost_usd == round(agent.cost, 6)
    assert usage.context_tokens < 10_000, "the context after compaction, not the request's size"
    assert stored(path).usage["input_tokens"] == 201_000


async def test_a_compaction_during_a_turn_is_part_of_its_usage(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load(
        {
            "steps": [
                {"calls": [call("read_notebook", {})]},
                {"fault": "stream_error", "shape": "failed", "code": "context_length_exceeded"},
                {"text": "done"},
            ],
            "compactions": [{"usage": {"input_tokens": 50_000, "output_tokens": 500}}],
        }
    )
    agent = agent_for(scripted_settings, path)
    try:
        result = await agent.run_turn("go")
    finally:
        await agent.aclose()
    assert result.status == "done"
    assert result.usage.input_tokens > 50_000 and result.usage.output_tokens >= 500


# -- the guard across steps ---------------------------------------------------------------------


async def test_compactions_that_do_not_help_stop_the_turn(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    """The server keeps reporting a context over the threshold after each compaction: after
    the guard's attempts the turn stops with a clear error, instead of paying for a
    compaction every step."""
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load(
        {
            "steps": [
                {
                    "calls": [call("read_notebook", {})],
                    "usage": {"input_tokens": 250_000, "output_tokens": 10},
                    "repeat": 20,
                },
                {"text": "done"},
            ]
        }
    )
    events: list[ev.Event] = []
    agent = agent_for(scripted_settings, path, events)
    try:
        result = await agent.run_turn("go")
    finally:
        await agent.aclose()
    finished = [e for e in events if isinstance(e, ev.CompactionFinished)]
    assert result.status == "failed"
    assert "compaction is not helping" in (result.error or "")
    assert len(finished) == scripted_settings.compaction_max_attempts
    assert len(scripted_server.requests_to("compact")) == len(finished)
    assert result.steps <= len(finished) + 1


async def test_a_compaction_that_helps_resets_the_guard(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    over = {"input_tokens": 250_000, "output_tokens": 10}
    under = {"input_tokens": 2_000, "output_tokens": 10}
    steps: list[dict[str, Any]] = []
    for _ in range(4):  # over the limit, then (after compacting) well under it
        steps.append({"calls": [call("read_notebook", {})], "usage": over})
        steps.append({"calls": [call("read_notebook", {})], "usage": under})
    steps.append({"text": "done"})
    scripted_server.load({"steps": steps})
    agent = agent_for(scripted_settings, path)
    try:
        result = await agent.run_turn("go")
    finally:
        await agent.aclose()
    assert result.status == "done", result.error
    assert len(scripted_server.requests_to("compact")) == 4


# -- local after remote -------------------------------------------------------------------------


async def test_a_local_compaction_keeps_what_a_remote_one_held(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_settings.max_retries = 0
    scripted_server.load(
        {
            "steps": [
                {"text": "one"},
                {"text": "two"},
                {"expect": {"contains": "hand-off summary"}, "text": "SUMMARY-2"},
                {"text": "three"},
            ],
            "compactions": [
                {"summary": "the launch code is PELICAN-42"},
                {"fault": "http", "status": 500},
            ],
        }
    )
    agent = agent_for(scripted_settings, path)
    try:
        await agent.run_turn("first")
        await agent.compact()
        await agent.run_turn("second")
        await agent.compact()  # the endpoint fails: a local summary
        await agent.run_turn("third")
    finally:
        await agent.aclose()
    assert scripted_server.failures == []
    requests = scripted_server.requests_to("responses")
    ask = prompt("compact")[:60]
    (summary,) = [r for r in requests if ask in json.dumps(r.body["input"][-1])]
    items = [i for i in summary.body["input"] if i.get("type") == "compaction"]
    assert len(items) == 1, "the model summarising sees what the remote compaction held"
    assert "SUMMARY-2" in json.dumps(requests[-1].body["input"])


# -- the step in progress, and where a summary request may start --------------------------------


REASONED_STEP: list[dict[str, Any]] = [
    {"type": "message", "role": "user", "content": "go"},
    {"type": "reasoning", "id": "rs_1", "encrypted_content": "x", "summary": []},
    {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "I'll read the notebook."}],
    },
    {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "read_notebook"},
    {"type": "function_call_output", "call_id": "c1", "output": "..."},
]


def test_the_pending_step_keeps_the_reasoning_that_led_to_its_calls() -> None:
    pending = pending_items(REASONED_STEP)
    assert [i.get("id") for i in pending] == ["rs_1", "msg_1", "fc_1", None]
    assert pending_items(REASONED_STEP[:4]) == REASONED_STEP[1:4], "calls not answered yet"
    assert pending_items(REASONED_STEP[:3]) == [], "no calls: nothing pending"
    partial = [
        *REASONED_STEP[:4],
        {"type": "function_call", "call_id": "c2", "name": "x"},
        REASONED_STEP[4],
    ]
    assert pending_items(partial) == []


def test_a_summary_request_never_starts_inside_a_model_output() -> None:
    items = REASONED_STEP * 3
    sizes = [10] * len(items)
    for room in range(10, 160, 10):
        start, sent = _newest_that_fit(items, sizes, room)
        assert start == 0 or not is_model_output(items[start - 1])
        ids = {i.get("call_id") for i in sent if i.get("type") == "function_call"}
        assert all(i.get("call_id") in ids for i in sent if i.get("type") == "function_call_output")


def test_a_retained_message_fits_its_budget_in_any_script() -> None:
    counter = TokenCounter(mode="estimate")
    for text in ("数据分析" * 50_000, "données " * 100_000):
        kept = retained_messages([user_message(text)], counter, 20_000)
        assert counter.count_items(kept) <= 20_000 + 10


async def test_a_cut_off_answer_leaves_no_dangling_reasoning(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_settings.reasoning_effort = "high"
    scripted_server.load(
        [
            {"reasoning": "thinking hard", "status": "incomplete"},
            {"text": "fine"},
        ]
    )
    agent = agent_for(scripted_settings, path)
    try:
        first = await agent.run_turn("go")
        await agent.run_turn("again")
    finally:
        await agent.aclose()
    assert first.status == "failed" and "cut short" in (first.error or "")
    assert not any(i.get("type") == "reasoning" for i in agent.history)


# -- the record: size cap, secrets, copies ------------------------------------------------------


def test_the_record_always_fits_its_cap_and_keeps_the_task() -> None:
    usage = {
        "input_tokens": 0,
        "cached_input_tokens": 0,
        "output_tokens": 0,
        "reasoning_tokens": 0,
        "total_tokens": 0,
    }
    ledger = {
        "task": "Clean the sales data " * 50,
        "earlier_tasks": ["an earlier task " * 20] * 5,
        "plan": [{"step": f"step {n} " * 30, "status": "completed"} for n in range(40)],
        "cells_edited": [f"cell{n}" for n in range(40)],
        "cells_run": {f"cell{n}": "error (ValueError: " + "x" * 150 + ")" for n in range(40)},
    }
    record = SessionRecord(
        session_id="abc",
        model="m",
        usage=usage,
        summary=user_message("S" * 30_000),
        messages=[user_message("old " * 1000), user_message("newest " * 20_000)],
        ledger=ledger,
    )
    for cap in (8_192, 16_384, 65_536):
        fitted = fit_record(record, cap)
        assert fitted.size() <= cap, (cap, fitted.size(), fitted.dropped)
        assert fitted.ledger["task"].startswith("Clean the sales data")
        assert fitted.ledger["plan"], "the plan stays"
    roomy = fit_record(record, 65_536)
    assert roomy.messages and "newest" in json.dumps(roomy.messages[-1])
    with pytest.raises(Exception, match="8192"):
        CodexMax(session_cap=4_096)


def test_a_signed_record_fits_its_cap() -> None:
    """The cap holds for the record as stored: signed, with its integrity mark. (Fitted
    without room for the mark, a record that landed just under the cap went over it once
    signed: 65,616 bytes of a 65,536 cap in bench_session.py.)"""
    usage = dict.fromkeys(
        ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens"), 0
    )
    over = []
    for extra in range(0, 400, 7):
        record = SessionRecord(
            session_id="abc",
            model="m",
            usage={**usage, "total_tokens": 0},
            messages=[user_message("w" * (900 + extra + 13 * n)) for n in range(12)],
            ledger={"task": "t"},
        )
        for cap in (8_192, 9_000):
            signed = SessionRecord.from_json(sign(fit_record(record, cap).to_json()))
            assert signed.mark is not None
            if signed.size() > cap:
                over.append((extra, cap, signed.size()))
    assert over == []


async def test_secrets_after_a_line_break_are_masked_in_the_journal_and_record(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(
        tmp_path / "nb.ipynb",
        [("a", "code", "print(k)")],
        outputs={"a": [{"output_type": "stream", "name": "stdout", "text": KEY + "\n"}]},
    )
    scripted_server.load(
        [{"calls": [call("read_notebook", {})]}, {"text": "one"}, {"text": f"Key:\n{KEY}"}]
    )
    agent = agent_for(scripted_settings, path)
    try:
        await agent.run_turn("first")
    finally:
        await agent.aclose()
    resumed = agent_for(scripted_settings, path, resume=stored(path))
    try:
        await resumed.run_turn("what was printed?")
    finally:
        await resumed.aclose()
    sent = json.dumps([r.body["input"] for r in scripted_server.requests_to("responses")])
    assert KEY not in sent, "the resume note is masked like read_notebook"
    assert KEY not in journal_path(agent.session_id).read_text()
    assert KEY not in json.dumps(json.loads(path.read_text())["metadata"])


async def test_environment_credentials_are_masked_on_resume(
    tmp_path: Path,
    scripted_settings: CodexMax,
    scripted_server: ScriptedModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = "dbpass-0123456789-SECRET"
    monkeypatch.setenv("MY_DB_PASSWORD", token)
    path = make_notebook(
        tmp_path / "nb.ipynb",
        [("a", "code", "print(password)")],
        outputs={"a": [{"output_type": "stream", "name": "stdout", "text": token + "\n"}]},
    )
    scripted_server.load([{"text": "one"}, {"text": "two"}])
    agent = agent_for(scripted_settings, path)
    try:
        await agent.run_turn(f"the password is {token}")
    finally:
        await agent.aclose()
    resumed = agent_for(scripted_settings, path, resume=stored(path))
    try:
        await resumed.run_turn("second")
    finally:
        await resumed.aclose()
    assert token not in json.dumps([r.body for r in scripted_server.requests])
    assert token not in journal_path(agent.session_id).read_text()
    assert token not in json.dumps(json.loads(path.read_text())["metadata"])


async def test_a_copied_notebook_does_not_replay_the_other_copys_history(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_server.load({"steps": [{"text": "ok"}], "after_last": "repeat"})
    a = make_notebook(tmp_path / "a.ipynb", [("a", "code", "x = 1")])

    async def turn(path: Path, message: str, resume: bool = True) -> Agent:
        agent = agent_for(scripted_settings, path, resume=stored(path) if resume else None)
        try:
            await agent.run_turn(message)
        finally:
            await agent.aclose()
        return agent

    await turn(a, "first", resume=False)
    b = tmp_path / "b.ipynb"
    shutil.copy(a, b)
    await turn(a, "A-second")
    await turn(b, "B-second")
    agent = agent_for(scripted_settings, a, resume=stored(a))
    await agent.aclose()
    text = json.dumps(agent.history)
    assert "A-second" in text and "B-second" not in text


# -- saving ---------------------------------------------------------------------------------------


async def test_a_session_that_cannot_be_saved_says_so(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load([{"text": "one"}, {"text": "two"}])
    events: list[ev.Event] = []
    agent = agent_for(scripted_settings, path, events)
    try:
        await agent.run_turn("first")
        data = json.loads(path.read_text())  # someone else saves the notebook meanwhile
        data["cells"][0]["source"] = "x = 2  # edited in JupyterLab"
        path.write_text(json.dumps(data, indent=1))
        result = await agent.run_turn("second")
    finally:
        await agent.aclose()
    assert result.status == "done"
    assert agent.save_error and "could not be saved" in agent.save_error
    errors = [e for e in events if isinstance(e, ev.ErrorEvent)]
    assert errors and not errors[-1].fatal and "changed on disk" in errors[-1].message
    assert stored(path).turns == 1, "the other save is not overwritten"
    assert '"x = 2  # edited in JupyterLab"' in path.read_text()


def test_prices_match_dated_snapshots_only() -> None:
    from jupyter_codexmax.agent.accounting import DEFAULT_PRICES, price_for

    assert price_for("gpt-4o-2024-08-06") == DEFAULT_PRICES["gpt-4o"]
    assert price_for("gpt-5-2025-08-07") == DEFAULT_PRICES["gpt-5"]
    assert price_for("gpt-4o-mini") is None, "a variant is not its parent"
    assert price_for("o3-pro") is None
    assert price_for("my-model", {"my-model": {"input": 1, "output": 2}}) is not None
