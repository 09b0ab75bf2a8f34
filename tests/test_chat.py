"""The sidebar chat's requests to the kernel (``agent.*``, docs/bridge.md), against real
kernels and a frontend that speaks the protocol (``tests/bridgehelpers.py``): the sidebar
and ``%%agent`` share one session; params are checked; one turn at a time; the extension
loads with a silent execute."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridgehelpers import FakeFrontend
from kernelhelpers import KEY, Kernel
from nbhelpers import make_notebook

from jupyter_codexmax.testing import ScriptedModelServer


def chat_notebook(folder: Path) -> Path:
    return make_notebook(
        folder / "chat.ipynb",
        [
            ("data", "code", "x = 21"),
            ("ask", "code", "%%agent\nWhat did I ask you before?"),
        ],
    )


def sidebar(tmp_path: Path, server: ScriptedModelServer) -> tuple[Path, Kernel]:
    path = chat_notebook(tmp_path)
    kernel = Kernel(
        tmp_path, server, data_dir=tmp_path / "data", env={"JPY_SESSION_NAME": str(path)}
    )
    return path, kernel


def replied(frontend: FakeFrontend, request_id: str) -> Callable[[], bool]:
    return lambda: request_id in frontend.replies


def load_silently(frontend: FakeFrontend) -> str:
    """As the sidebar does: a silent execute; the kernel offers the bridge as it loads."""
    loading = frontend.execute_code("%load_ext jupyter_codexmax", silent=True)
    frontend.pump(lambda: frontend.finished(loading)() and bool(frontend.hello))
    return loading


def test_the_sidebar_and_agent_cells_share_one_session(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """A silent load leaves no trace; the session is empty, then the sidebar's turn; a
    %%agent cell continues it (its request carries the sidebar's message and answer), and
    agent.session gives the thread so far, with no secret in it."""
    scripted_server.load(
        [
            {"text": "Noted: the sky is teal."},
            {"expect": {"contains": "the sky is teal"}, "text": "You told me the sky is teal."},
        ]
    )
    path, kernel = sidebar(tmp_path, scripted_server)
    with kernel:
        frontend = FakeFrontend(kernel, path)
        loading = load_silently(frontend)
        run = frontend.done[loading]
        assert run["outputs"] == [] and run.get("execution_count") is None, run
        assert frontend.hello["type"] == "hello"
        empty = frontend.request("agent.session")
        frontend.pump(lambda: empty in frontend.replies)
        turn = frontend.request(
            "agent.turn", message="Remember: the sky is teal.", effort="high", model=None
        )
        frontend.pump(frontend.turn_finished())
        cell = frontend.execute("ask")
        frontend.pump(frontend.turn_finished(2))
        frontend.pump(frontend.finished(cell))
        after = frontend.request("agent.session")
        frontend.pump(lambda: after in frontend.replies)
    assert scripted_server.failures == []
    assert frontend.replies[empty]["result"]["record"] is None
    assert frontend.replies[turn]["ok"], frontend.replies[turn]
    started = frontend.replies[turn]["result"]
    requests = scripted_server.requests_to("responses")
    assert requests[0].body["reasoning"]["effort"] == "high"
    second = json.dumps(requests[1].body)
    assert "Remember: the sky is teal." in second and "Noted: the sky is teal." in second
    record = frontend.replies[after]["result"]["record"]
    assert record["session_id"] == started["session_id"] and record["turns"] == 2
    texts = json.dumps(record["messages"])
    assert "Remember: the sky is teal." in texts and "You told me the sky is teal." in texts
    assert "mark" not in record
    starts = [e["message"] for e in frontend.events if e["type"] == "TurnStarted"]
    assert starts == ["Remember: the sky is teal.", "What did I ask you before?"], (
        "the %%agent turn's events reach the sidebar too"
    )
    assert KEY not in json.dumps(frontend.events) + json.dumps(frontend.replies)


def test_bad_params_are_refused_and_nothing_starts(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    scripted_server.load([])
    path, kernel = sidebar(tmp_path, scripted_server)
    bad: dict[str, tuple[dict[str, Any], str]] = {
        "effort": ({"message": "hi", "effort": "max"}, "agent.turn: effort must be one of "
                   "none, minimal, low, medium, high, xhigh, not 'max'"),
        "approval": ({"message": "hi", "approval": 3}, "agent.turn: approval must be one of "
                     "read-only, ask, auto, not int"),
        "model": ({"message": "hi", "model": ""}, "agent.turn: model must be a non-empty string"),
        "key": ({"message": "hi", "temperature": 2}, "agent.turn: unknown param 'temperature'"),
        "message": ({"message": ["hi"]}, "agent.turn: message must be a non-empty string"),
    }  # fmt: skip
    with kernel:
        frontend = FakeFrontend(kernel, path)
        load_silently(frontend)
        asked = {
            name: frontend.request("agent.turn", **params) for name, (params, _) in bad.items()
        }
        decision = frontend.request("agent.approve", decision="maybe")
        extra = frontend.request("agent.stop", now=True)
        waiting = [*asked.values(), decision, extra]
        frontend.pump(lambda: all(r in frontend.replies for r in waiting))
        status = frontend.request("agent.status")
        frontend.pump(lambda: status in frontend.replies)
    for name, (_, error) in bad.items():
        reply = frontend.replies[asked[name]]
        assert reply["ok"] is False and reply["error"] == error, name
    assert frontend.replies[decision]["error"] == (
        "agent.approve: decision must be one of approve, approve_session, deny, not 'maybe'"
    )
    assert frontend.replies[extra]["error"] == "agent.stop: unknown param 'now'"
    assert frontend.events == [] and scripted_server.requests_to("responses") == []
    assert frontend.replies[status]["result"]["busy"] is False


def test_one_turn_at_a_time_and_stop(tmp_path: Path, scripted_server: ScriptedModelServer) -> None:
    """A second request while a turn waits for an approval says so; stop ends the turn."""
    scripted_server.load([{"calls": [{"name": "shell", "arguments": {"command": "echo cleaned"}}]}])
    path, kernel = sidebar(tmp_path, scripted_server)
    with kernel:
        frontend = FakeFrontend(kernel, path)
        load_silently(frontend)
        first = frontend.request("agent.turn", message="Clean up", approval="ask")
        frontend.pump(lambda: any(e["type"] == "ApprovalRequested" for e in frontend.events))
        second = frontend.request("agent.turn", message="Something else")
        cell = frontend.execute_code("%%agent\nAnd this")
        frontend.pump(lambda: second in frontend.replies and frontend.finished(cell)())
        stop = frontend.request("agent.stop")
        frontend.pump(frontend.turn_finished())
    assert frontend.replies[first]["ok"]
    assert frontend.replies[second] == {
        "type": "reply",
        "id": second,
        "ok": False,
        "error": "the agent is working on a turn in this notebook: wait for it to finish, or "
        "stop it",
    }
    refused = json.dumps(frontend.done[cell]["outputs"])
    assert "UsageError: the agent is working on a turn" in refused, refused
    assert frontend.replies[stop]["result"] == {"stopped": True}
    finished = [e for e in frontend.events if e["type"] == "TurnFinished"]
    assert [e["status"] for e in finished] == ["stopped"]
    assert len(scripted_server.requests_to("responses")) == 1


def test_a_stop_while_the_turn_is_being_set_up_stops_it(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """Stop clicked right after sending, while the kernel still reads the notebook on screen
    (the turn has not started): the turn ends as it starts, stopped, and asks the model
    nothing (found by a new user: the answer streamed on under "stopped")."""
    scripted_server.load([{"text": "An answer that must not come. " * 40, "chunk": 4}])
    path, kernel = sidebar(tmp_path, scripted_server)
    with kernel:
        frontend = FakeFrontend(kernel, path)
        load_silently(frontend)
        # Both sent before the frontend answers the kernel's notebook.get (it answers
        # while pumping): the stop lands while the turn is being set up.
        first = frontend.request("agent.turn", message="Go")
        stop = frontend.request("agent.stop")
        frontend.pump(frontend.turn_finished())
    assert frontend.replies[first]["ok"]
    assert frontend.replies[stop]["result"] == {"stopped": True}
    finished = [e for e in frontend.events if e["type"] == "TurnFinished"]
    assert [e["status"] for e in finished] == ["stopped"]
    assert scripted_server.requests_to("responses") == []


def test_stop_ends_a_streaming_turn_at_once_every_time(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """Stopped mid-stream, again and again, the next message sent as soon as the last turn
    ended: each turn ends within a second of its stop, no more of the answer comes after
    the stop's answer, and no request is refused or sent again (the frontend hears a
    turn's end a little before the kernel's main thread has handled it: before the fix a
    message sent then was refused as "working")."""
    import time

    rounds = 12
    slow = {"text": "A slow answer " * 200, "chunk": 4, "delay": 0.1}
    scripted_server.load([slow] * rounds)
    path, kernel = sidebar(tmp_path, scripted_server)
    with kernel:
        frontend = FakeFrontend(kernel, path)
        load_silently(frontend)
        for n in range(rounds):
            turn = frontend.request("agent.turn", message=f"slow {n}")
            frontend.pump(replied(frontend, turn))
            assert frontend.replies[turn]["ok"], (n, frontend.replies[turn])
            frontend.pump(lambda: sum(1 for e in frontend.events if e["type"] == "TextDelta") > 3)
            asked = time.monotonic()
            stop = frontend.request("agent.stop")
            frontend.pump(replied(frontend, stop))
            after = len(frontend.events)
            frontend.pump(frontend.turn_finished(n + 1), timeout=10)
            took = time.monotonic() - asked
            late = [e for e in frontend.events[after:] if e["type"] == "TextDelta"]
            assert frontend.replies[stop]["result"] == {"stopped": True}
            assert took < 1.5, f"round {n}: the turn ended {took:.1f} s after the stop"
            assert late == [], f"round {n}: {len(late)} deltas after the stop's answer"
            # The next round counts its own events (one TurnFinished per round before it).
            frontend.events[:] = [{"type": "TurnFinished"}] * (n + 1)
    assert len(scripted_server.requests_to("responses")) == rounds


def test_no_api_key_is_one_line_to_the_sidebar(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """No key where the endpoint needs one: the turn's error is one line naming the
    variable, no traceback; nothing is sent anywhere."""
    scripted_server.load([])
    path = chat_notebook(tmp_path)
    env = {
        "JPY_SESSION_NAME": str(path),
        "OPENAI_API_KEY": "",
        "OPENAI_BASE_URL": "https://api.openai.com/v1",
    }
    with Kernel(tmp_path, scripted_server, data_dir=tmp_path / "data", env=env) as kernel:
        frontend = FakeFrontend(kernel, path)
        load_silently(frontend)
        turn = frontend.request("agent.turn", message="Hello")
        frontend.pump(frontend.turn_finished())
    assert frontend.replies[turn]["ok"], "the turn starts; its first request says why not"
    errors = [e["message"] for e in frontend.events if e["type"] == "ErrorEvent"]
    assert errors == [
        "no API key: set OPENAI_API_KEY in the environment (needed for https://api.openai.com/v1)"
    ]
    (finished,) = [e for e in frontend.events if e["type"] == "TurnFinished"]
    assert finished["status"] == "failed"
    assert "Traceback" not in json.dumps(frontend.events)
    assert scripted_server.requests_to("responses") == []


def test_an_agent_cell_run_as_a_sidebar_turn_ends_is_not_refused(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """The frontend hears TurnFinished a little before the kernel's main thread has handled
    the turn's end: a %%agent cell (or a sidebar message) sent at that moment goes ahead."""
    rounds = 25
    scripted_server.load([{"text": f"answer {n}"} for n in range(2 * rounds)])
    path, kernel = sidebar(tmp_path, scripted_server)
    with kernel:
        frontend = FakeFrontend(kernel, path)
        load_silently(frontend)
        for n in range(rounds):
            turn = frontend.request("agent.turn", message=f"sidebar {n}")
            frontend.pump(frontend.turn_finished(2 * n + 1))
            cell = frontend.execute_code(f"%%agent\ncell {n}")
            frontend.pump(frontend.finished(cell))
            assert frontend.replies[turn]["ok"], frontend.replies[turn]
            said = json.dumps(frontend.done[cell]["outputs"])
            assert "working on a turn" not in said, (n, said)
            frontend.pump(frontend.turn_finished(2 * n + 2))
    starts = [e["message"] for e in frontend.events if e["type"] == "TurnStarted"]
    assert len(starts) == 2 * rounds
