"""The bridge's kernel half, against a frontend that speaks its protocol over a real kernel
connection (``tests/bridgehelpers.py``; the JupyterLab extension is the real one)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bridgehelpers import FakeFrontend
from kernelhelpers import KEY, Kernel
from nbhelpers import call, make_notebook

from jupyter_codexmax.session.store import METADATA_KEY, OUTPUT_MIME, validate_record
from jupyter_codexmax.testing import ScriptedModelServer


def notebook(folder: Path) -> Path:
    return make_notebook(
        folder / "live.ipynb",
        [
            ("load", "code", "%load_ext jupyter_codexmax"),
            ("data", "code", "x = 21\nprint(x * 3)"),
            ("ask", "code", "%%agent\nDouble x, run it, and check with a shell command"),
        ],
    )


def test_a_turn_in_the_background_on_the_live_notebook(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """With a bridge: %%agent returns at once; the kernel stays free (another cell runs while
    the agent waits); edits and runs happen in the frontend's notebook; an approval is a
    click on the panel's button, through the widget's messages; the session goes into the
    notebook's metadata, saved by the frontend; the cell's output ends as the summary."""
    path = notebook(tmp_path)
    file_before = path.read_bytes()
    scripted_server.load(
        [
            {"calls": [call("edit_notebook", {"edits": [
                {"action": "replace", "cell_id": "data", "source": "x = 42\nprint(x * 3)"}]})]},
            {"calls": [call("run_cells", {"cell_ids": ["data"]})]},
            {"calls": [call("shell", {"command": "echo checked-by-shell"})]},
            {"text": "Done: x is 42 and the cell prints 126."},
        ]
    )  # fmt: skip
    with Kernel(
        tmp_path, scripted_server, data_dir=tmp_path / "data", env={"JPY_SESSION_NAME": str(path)}
    ) as kernel:
        frontend = FakeFrontend(kernel, path)
        loading = frontend.execute("load")
        frontend.pump(frontend.finished(loading))
        assert frontend.hello["type"] == "hello" and frontend.hello["protocol"] == 2
        status = frontend.execute_code("%agent status")
        frontend.pump(frontend.finished(status))
        text = "".join(o.get("text", "") for o in frontend.done[status]["outputs"])
        assert "live in test frontend (bridge)" in text

        started = time.monotonic()
        turn = frontend.execute("ask")
        frontend.pump(frontend.finished(turn))
        returned_after = time.monotonic() - started
        assert returned_after < 5, "the cell returned once the turn had started"
        frontend.pump(lambda: bool(frontend.buttons("Approve")))
        assert not frontend.turn_finished()(), "the agent waits for the approval"

        # The kernel is free: a cell of the user's runs meanwhile.
        other = frontend.execute_code("y = 5\nprint(y * 2)")
        frontend.pump(frontend.finished(other))
        assert frontend.done[other]["outputs"][0]["text"] == "10\n"
        # The live notebook already has the edit; the run waits for its approval.
        assert frontend.cell("data").source == "x = 42\nprint(x * 3)"
        (approve,) = frontend.buttons("Approve")
        frontend.click(approve)
        frontend.pump(lambda: bool(frontend.cell("data").outputs))
        assert frontend.cell("data").outputs[0]["text"] == "126\n"
        assert frontend.cell("data").execution_count is not None
        # The shell command's approval: a new row, a new button.
        frontend.pump(lambda: len(frontend.buttons("Approve")) == 2)
        second = next(b for b in frontend.buttons("Approve") if b != approve)
        frontend.click(second)
        frontend.pump(frontend.turn_finished())
        frontend.pump(lambda: any(m == "notebook.edit" and p["ops"][0]["op"] == "set_outputs"
                                  for m, p in frontend.requests))  # fmt: skip
        frontend.pump(lambda: not frontend.dirty, timeout=10)
    assert scripted_server.failures == []
    finished = [e for e in frontend.events if e["type"] == "TurnFinished"][-1]
    assert finished["status"] == "done"
    assert "checked-by-shell" in json.dumps(scripted_server.requests_to("responses")[3].body)
    kinds = [e["type"] for e in frontend.events]
    for kind in ("TurnStarted", "ToolCallStarted", "CellEdited", "CellRan", "ApprovalRequested"):
        assert kind in kinds, kinds
    # The session is in the notebook's metadata, written by the frontend's save.
    saved = json.loads(path.read_text())
    validate_record(saved["metadata"][METADATA_KEY])
    assert saved["metadata"][METADATA_KEY]["turns"] == 1
    assert path.read_bytes() != file_before and frontend.saves >= 1
    # The %%agent cell now shows the summary (no dead widget, no second record).
    (summary,) = frontend.cell("ask").outputs
    assert "Done: x is 42 and the cell prints 126." in summary["data"]["text/markdown"]
    assert OUTPUT_MIME not in summary["data"]
    assert KEY not in path.read_text() + json.dumps(frontend.events)


def test_the_frontend_asks_for_turns_and_status(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """The bridge opened by the frontend (its welcome in the open message); a sidebar's
    requests: a turn, its events, the status; a mistake answered with an error."""
    path = notebook(tmp_path)
    scripted_server.load([{"text": "x is 21 here."}])
    with Kernel(
        tmp_path, scripted_server, data_dir=tmp_path / "data", env={"JPY_SESSION_NAME": str(path)}
    ) as kernel:
        frontend = FakeFrontend(kernel, path, accept=False)
        loading = frontend.execute("load")
        frontend.pump(frontend.finished(loading))
        frontend.open_bridge()
        asked = frontend.request("agent.turn", message="What is x?", effort="low")
        frontend.pump(lambda: asked in frontend.replies)
        assert frontend.replies[asked]["ok"], frontend.replies[asked]
        assert frontend.replies[asked]["result"]["turn"] == 1
        frontend.pump(frontend.turn_finished())
        status = frontend.request("agent.status")
        frontend.pump(lambda: status in frontend.replies)
        bad = frontend.request("agent.turn", message="   ")
        unknown = frontend.request("agent.fly")
        frontend.pump(lambda: bad in frontend.replies and unknown in frontend.replies)
    request = scripted_server.requests_to("responses")[0].body
    assert request["reasoning"]["effort"] == "low"
    text = "".join(e.get("text", "") for e in frontend.events if e["type"] == "TextDelta")
    assert text == "x is 21 here."
    result = frontend.replies[status]["result"]
    assert (result["turns"], result["busy"]) == (1, False)
    assert result["context_window"] == 272_000 and result["usage"]["input_tokens"] > 0
    assert (
        frontend.replies[bad]["ok"] is False
        and frontend.replies[bad]["error"] == "agent.turn: message must be a non-empty string"
    )
    assert "unknown method 'agent.fly'" in frontend.replies[unknown]["error"]


def test_wait_keeps_the_turn_in_the_cell_even_with_a_bridge(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = notebook(tmp_path)
    scripted_server.load([{"text": "ran in the cell"}])
    with Kernel(
        tmp_path, scripted_server, data_dir=tmp_path / "data", env={"JPY_SESSION_NAME": str(path)}
    ) as kernel:
        frontend = FakeFrontend(kernel, path)
        frontend.pump(frontend.finished(frontend.execute("load")))
        turn = frontend.execute_code("%%agent --wait\nSay where you ran")
        frontend.pump(frontend.finished(turn))
    outputs = frontend.done[turn]["outputs"]
    summary = [o for o in outputs if o["output_type"] == "display_data"][-1]
    assert "ran in the cell" in summary["data"]["text/markdown"]
    assert not [m for m, _ in frontend.requests if m.startswith("notebook.")], (
        "a turn in the cell does not wait for frontend replies (the kernel could not read them)"
    )


# -- found by review: the background turn's edges ----------------------------------------------

EDIT_DATA = {
    "calls": [
        call(
            "edit_notebook",
            {"edits": [{"action": "replace", "cell_id": "data", "source": "x = 42\nprint(x * 3)"}]},
        )
    ]
}


def outputs_text(frontend: FakeFrontend, msg_id: str) -> str:
    return json.dumps(frontend.done[msg_id]["outputs"])


def notice(frontend: FakeFrontend, start: str) -> bool:
    return any(e["type"] == "Notice" and e["message"].startswith(start) for e in frontend.events)


def bridged(tmp_path: Path, server: ScriptedModelServer, **env: str) -> tuple[Path, Kernel]:
    path = notebook(tmp_path)
    kernel = Kernel(
        tmp_path, server, data_dir=tmp_path / "data", env={"JPY_SESSION_NAME": str(path), **env}
    )
    return path, kernel


def test_undo_and_compact_work_on_the_live_notebook(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    scripted_server.load([EDIT_DATA, {"text": "edited"}])
    path, kernel = bridged(tmp_path, scripted_server)
    with kernel:
        frontend = FakeFrontend(kernel, path)
        frontend.pump(frontend.finished(frontend.execute("load")))
        frontend.pump(frontend.finished(frontend.execute("ask")))
        frontend.pump(frontend.turn_finished())
        assert frontend.cell("data").source == "x = 42\nprint(x * 3)"
        started = time.monotonic()
        undo = frontend.execute_code("%agent undo")
        frontend.pump(frontend.finished(undo))
        assert "undo: working in the background" in outputs_text(frontend, undo)
        frontend.pump(lambda: frontend.cell("data").source == "x = 21\nprint(x * 3)")
        frontend.pump(lambda: notice(frontend, "undo:"))
        compact = frontend.execute_code("%agent compact")
        frontend.pump(frontend.finished(compact))
        frontend.pump(lambda: notice(frontend, "compact:"))
        frontend.pump(lambda: not frontend.dirty)
        took = time.monotonic() - started
    assert took < 10, f"no waiting for answers the busy kernel could not read ({took:.0f} s)"
    saved = json.loads(path.read_text())
    assert saved["metadata"][METADATA_KEY]["compactions"] == 1
    assert "x = 21" in "".join(saved["cells"][1]["source"]), "the undo reached the saved notebook"


def test_nothing_else_starts_while_a_background_turn_runs(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """Run All (a second %%agent while the first starts), %agent new, another %%agent after
    the user saved: refused at once, one line; the running turn keeps the live notebook."""
    import nbformat

    scripted_server.load(
        [
            EDIT_DATA,
            {"calls": [call("run_cells", {"cell_ids": ["data"]})]},
            {"calls": [call("edit_notebook", {"edits": [
                {"action": "replace", "cell_id": "data", "source": "x = 84\nprint(x * 3)"}]})]},
            {"text": "done"},
        ]
    )  # fmt: skip
    path, kernel = bridged(tmp_path, scripted_server)
    with kernel:
        frontend = FakeFrontend(kernel, path)
        frontend.pump(frontend.finished(frontend.execute("load")))
        one = frontend.execute("ask")
        two = frontend.execute_code("%%agent\nSecond task")  # right behind it (Run All)
        frontend.pump(lambda: frontend.finished(one)() and frontend.finished(two)())
        assert "UsageError: the agent is working on a turn" in outputs_text(frontend, two)
        frontend.pump(lambda: bool(frontend.buttons("Approve")))
        nbformat.write(frontend.nb, path)  # the user saves meanwhile
        started = time.monotonic()
        for code in ("%agent new", "%%agent\nanother task", "%%agent --new\nfresh"):
            refused = frontend.execute_code(code)
            frontend.pump(frontend.finished(refused))
            assert "working on a turn" in outputs_text(frontend, refused), code
        assert time.monotonic() - started < 5, "refused at once, not after a wait"
        (approve,) = frontend.buttons("Approve")
        frontend.click(approve)
        frontend.pump(frontend.turn_finished())
        frontend.pump(lambda: frontend.cell("data").source == "x = 84\nprint(x * 3)")
    starts = [e for e in frontend.events if e["type"] == "TurnStarted"]
    assert len(starts) == 1 and starts[0]["message"].startswith("Double x")


def test_stopping_twice_still_finishes_the_turn(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    scripted_server.load([{"calls": [call("run_cells", {"cell_ids": ["data"]})]}, {"text": "x"}])
    path, kernel = bridged(tmp_path, scripted_server)
    with kernel:
        frontend = FakeFrontend(kernel, path)
        frontend.pump(frontend.finished(frontend.execute("load")))
        frontend.pump(frontend.finished(frontend.execute("ask")))
        frontend.pump(lambda: bool(frontend.buttons("Approve")))
        (stop,) = frontend.buttons("Stop")
        frontend.click(stop)
        again = frontend.execute_code("%agent stop")
        frontend.pump(frontend.finished(again))
        frontend.pump(frontend.turn_finished())
        frontend.pump(lambda: "text/markdown" in json.dumps(frontend.cell("ask").outputs))
        frontend.pump(lambda: not frontend.dirty)
    finished = [e for e in frontend.events if e["type"] == "TurnFinished"]
    assert [e["status"] for e in finished] == ["stopped"]
    assert "turn 1 · stopped" in frontend.cell("ask").outputs[0]["data"]["text/markdown"]
    assert json.loads(path.read_text())["metadata"][METADATA_KEY]["turns"] == 1


def test_the_bridge_when_the_extension_loads_from_the_kernel_config(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """Loaded before the kernel's event loop runs: background turns still get out."""
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        'c.InteractiveShellApp.extensions = ["jupyter_codexmax"]\n'
    )
    scripted_server.load([{"text": "x is 21 here."}])
    path, kernel = bridged(tmp_path, scripted_server, IPYTHONDIR=str(tmp_path / "ipython"))
    with kernel:
        frontend = FakeFrontend(kernel, path, accept=False)
        frontend.open_bridge()
        asked = frontend.request("agent.turn", message="What is x?")
        frontend.pump(lambda: asked in frontend.replies)
        assert frontend.replies[asked]["ok"], frontend.replies[asked]
        frontend.pump(frontend.turn_finished(), timeout=30)
    assert [e["status"] for e in frontend.events if e["type"] == "TurnFinished"] == ["done"]


def test_a_turn_that_cannot_read_the_notebook_says_so(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    scripted_server.load([{"text": "never"}])
    path, kernel = bridged(tmp_path, scripted_server)
    with kernel:
        frontend = FakeFrontend(kernel, path)
        answer = frontend._answer

        def refusing(method: str, params: dict[str, Any]) -> dict[str, Any]:
            if method == "notebook.get":
                raise ValueError("the notebook is being reloaded")
            return answer(method, params)

        frontend._answer = refusing  # type: ignore[method-assign]
        frontend.pump(frontend.finished(frontend.execute("load")))
        frontend.pump(frontend.finished(frontend.execute("ask")))
        frontend.pump(frontend.turn_finished())
        frontend.pump(lambda: "text/markdown" in json.dumps(frontend.cell("ask").outputs))
        again = frontend.execute_code("%agent status")
        frontend.pump(frontend.finished(again))
    (finished,) = [e for e in frontend.events if e["type"] == "TurnFinished"]
    assert finished["status"] == "failed" and "being reloaded" in finished["error"]
    summary = frontend.cell("ask").outputs[0]["data"]["text/markdown"]
    assert "could not start" in summary and "being reloaded" in summary
    assert "idle" in outputs_text(frontend, again), "ready for the next turn"
    assert scripted_server.requests == []


def test_without_a_cell_id_the_summary_replaces_the_panel_by_its_display(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    scripted_server.load([{"text": "The answer is 42."}])
    path, kernel = bridged(tmp_path, scripted_server)
    with kernel:
        frontend = FakeFrontend(kernel, path)
        frontend.pump(frontend.finished(frontend.execute("load")))
        turn = frontend.execute_code("%%agent\nWhat is the answer?")  # no cell id sent
        frontend.pump(frontend.finished(turn))
        frontend.pump(frontend.turn_finished())
        frontend.pump(lambda: "The answer is 42." in outputs_text(frontend, turn))
    (panel,) = frontend.done[turn]["outputs"]
    assert "application/vnd.jupyter.widget-view+json" not in panel["data"]


# -- protocol 2: edits checked against what the user typed --------------------------------------


def test_an_edit_of_a_cell_the_user_changed_is_refused_and_the_model_told(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """The user types into the cell after the agent read the notebook: the agent's edit of
    it is refused whole (its edit of another cell with it too), the user's text stays, the
    model is told to read again, reads the user's text and edits that."""
    mine = "x = 21  # the user's\nprint(x * 3)"
    scripted_server.load(
        [
            {"calls": [call("edit_notebook", {"edits": [
                {"action": "replace", "cell_id": "load", "source": "%load_ext jupyter_codexmax\n"},
                {"action": "replace", "cell_id": "data", "source": "x = 42\nprint(x * 3)"}]})]},
            {"expect": {"contains": "the user changed cell data in the notebook since you read it"},
             "calls": [call("read_notebook", {})]},
            {"expect": {"contains": "# the user's"},
             "calls": [call("edit_notebook", {"edits": [
                 {"action": "find_replace", "cell_id": "data", "find": "21", "replace": "42"}]})]},
            {"text": "Done, keeping your comment."},
        ]
    )  # fmt: skip
    path, kernel = bridged(tmp_path, scripted_server)
    with kernel:
        frontend = FakeFrontend(kernel, path)
        answer = frontend._answer
        reads = []

        def typing(method: str, params: dict[str, Any]) -> dict[str, Any]:
            result = answer(method, params)
            if method == "notebook.get":
                reads.append(result)
                if len(reads) == 1:
                    frontend.cell("data").source = mine  # typed once the agent has read it
            return result

        frontend._answer = typing  # type: ignore[method-assign]
        frontend.pump(frontend.finished(frontend.execute("load")))
        frontend.pump(frontend.finished(frontend.execute("ask")))
        frontend.pump(frontend.turn_finished())
        frontend.pump(lambda: not frontend.dirty)
    assert scripted_server.failures == []
    assert frontend.cell("data").source == "x = 42  # the user's\nprint(x * 3)"
    assert frontend.cell("load").source == "%load_ext jupyter_codexmax", "refused whole"
    edits = [p for m, p in frontend.requests if m == "notebook.edit" and "base" in p["ops"][0]]
    assert [len(p["ops"]) for p in edits] == [2, 1], "one request per edit, every op in it"
    assert edits[0]["ops"][1]["base"] == "x = 21\nprint(x * 3)"
    assert len(reads) == 2, "read again after the refusal"
    finished = [e for e in frontend.events if e["type"] == "TurnFinished"][-1]
    assert finished["status"] == "done"
    failed = [e for e in frontend.events if e["type"] == "ToolCallFinished" and not e["ok"]]
    assert len(failed) == 1 and "since you read it" in failed[0]["summary"]
    edited = [e["cell_id"] for e in frontend.events if e["type"] == "CellEdited"]
    assert edited == ["data"], "the refused edit is not reported as made"


def test_bad_messages_from_the_frontend_get_an_error_reply(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path, kernel = bridged(tmp_path, scripted_server)
    with kernel:
        frontend = FakeFrontend(kernel, path)
        frontend.pump(frontend.finished(frontend.execute("load")))
        before = frontend.nb.copy()
        frontend.send("not an object")
        frontend.send({"type": "request", "method": "agent.status"})  # no id
        unknown = frontend.request("notebook.fly")
        frontend.pump(lambda: unknown in frontend.replies and len(frontend.replies_none) == 2)
        status = frontend.execute_code("%agent status")
        frontend.pump(frontend.finished(status))
    errors = [r["error"] for r in frontend.replies_none]
    assert errors == ["a bridge message must be a JSON object, not str", "a request needs an id"]
    assert frontend.replies[unknown]["error"] == "unknown method 'notebook.fly'"
    assert frontend.nb == before
    assert "idle" in outputs_text(frontend, status), "the kernel carries on"


def test_undo_of_a_cell_the_user_changed_since_is_refused(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    scripted_server.load([EDIT_DATA, {"text": "edited"}])
    path, kernel = bridged(tmp_path, scripted_server)
    with kernel:
        frontend = FakeFrontend(kernel, path)
        frontend.pump(frontend.finished(frontend.execute("load")))
        frontend.pump(frontend.finished(frontend.execute("ask")))
        frontend.pump(frontend.turn_finished())
        frontend.cell("data").source = "x = 42  # now mine\nprint(x * 3)"
        undo = frontend.execute_code("%agent undo")
        frontend.pump(frontend.finished(undo))
        frontend.pump(lambda: notice(frontend, "undo:"))
    (said,) = [e["message"] for e in frontend.events if e["type"] == "Notice"]
    assert "changed cell data" in said, said
    assert frontend.cell("data").source == "x = 42  # now mine\nprint(x * 3)"


def test_the_bridge_is_offered_again_when_the_frontend_closes_it(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """A notebook closed and opened again (its kernel kept): the kernel offers the bridge
    again as soon as the frontend closes it, so the reopened notebook finds it open."""
    path, kernel = bridged(tmp_path, scripted_server)
    with kernel:
        frontend = FakeFrontend(kernel, path)
        frontend.pump(frontend.finished(frontend.execute("load")))
        first = frontend.comm_id
        assert first is not None
        frontend.close_bridge()
        frontend.pump(lambda: frontend.comm_id is not None)
        assert frontend.comm_id != first and frontend.hello["type"] == "hello"
        status = frontend.execute_code("%agent status")
        frontend.pump(frontend.finished(status))
    assert "live in test frontend (bridge)" in outputs_text(frontend, status)


def test_a_session_saved_through_the_frontend_stays_this_machines(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """JupyterLab's model keeps numbers as JavaScript does (0.0 comes back as 0): the record
    it saves must still carry a valid mark, or after a restart this machine's own session
    would be continued as someone else's."""
    from jupyter_codexmax.kernel.sessions import as_javascript_keeps_it
    from jupyter_codexmax.session.integrity import is_ours, sign

    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path))
    record = sign({"id": "s1", "usage": {"cost_usd": 0.0, "tokens": 12}, "ratio": 0.5})

    def through_javascript(value: dict[str, Any]) -> dict[str, Any]:
        def number(text: str) -> float | int:
            parsed = float(text)
            return int(parsed) if parsed.is_integer() else parsed

        return dict(json.loads(json.dumps(value), parse_float=number))

    assert not is_ours(through_javascript(record)), "the mark breaks on the way"
    kept = through_javascript(as_javascript_keeps_it(record))
    assert is_ours(kept) and kept["ratio"] == 0.5
    assert as_javascript_keeps_it({"id": "x", "n": 1.0}) == {"id": "x", "n": 1.0}, "unsigned"
