"""``%%agent`` live in real JupyterLab and Chromium, with our JupyterLab extension: the agent
works on the notebook on screen (issue 11's "Must show").

Each test writes its pictures to ``build/screenshots/<test>/``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from browser.lab import Lab, Notebook
from browser.screenshots import API_KEY, ENDED, write_notebook
from jupyter_codexmax.session.store import METADATA_KEY
from jupyter_codexmax.testing import ScriptedModelServer

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BROKEN = ("Traceback", "Error displaying widget", "model not found", "UsageError")


def call(name: str, arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def edit(cell_id: str, **fields: Any) -> dict[str, Any]:
    return call("edit_notebook", {"edits": [{"cell_id": cell_id, **fields}]})


class Live:
    """A notebook in JupyterLab with the extension, and what the agent shows in it."""

    def __init__(
        self,
        page: Page,
        lab: Lab,
        name: str,
        cells: list[tuple[str, str]],
        before_open: Callable[[Path], None] | None = None,
    ):
        written = write_notebook(lab.root, cells, name=name)
        if before_open is not None:
            before_open(written)
        self.nb = Notebook(page, lab, name).open()
        self.page = page
        self.lab = lab
        self.name = name
        self.ids = [cid for cid, _ in cells]

    @property
    def toolbar(self) -> Locator:
        return self.nb.panel.locator(".jp-codexmax-AgentItem")

    def index(self, cell_id: str) -> int:
        return self.ids.index(cell_id)

    def text(self, cell_id: str) -> str:
        """A cell's text as its editor shows it."""
        lines = self.nb.cell(self.index(cell_id)).locator(".cm-content .cm-line")
        return "\n".join(lines.all_inner_texts()).replace("\u200b", "")

    def wait_text(self, cell_id: str, text: str) -> None:
        deadline = time.monotonic() + 30
        while self.text(cell_id) != text:
            if time.monotonic() > deadline:
                raise AssertionError(f"cell {cell_id} shows {self.text(cell_id)!r}, not {text!r}")
            time.sleep(0.05)  # polling interval

    def load(self) -> None:
        """Run the %load_ext cell; the bridge comes up (the toolbar item shows)."""
        self.nb.run_cell(0)
        self.nb.wait_ran(0)
        self.toolbar.filter(has_text="Agent: idle").wait_for()

    def ask(self, cell_id: str, task: str) -> None:
        index = self.index(cell_id)
        self.nb.set_cell(index, task)
        self.nb.run_cell(index)

    def wait_summary(self, cell_id: str) -> str:
        output = self.nb.output(self.index(cell_id))
        output.locator(".jp-OutputArea-output").filter(has_text=ENDED).first.wait_for()
        return output.inner_text()

    def dialogs(self) -> int:
        return self.page.locator(".jp-Dialog").count()

    def shoot(self, folder: Path, name: str, target: Any = None) -> Path:
        path = folder / f"{name}.png"
        (target or self.page).screenshot(path=str(path))
        return path


def _requests_text(server: ScriptedModelServer) -> list[str]:
    return [json.dumps(r.body) for r in server.requests_to("responses")]


# -- 1. an unsaved change, a live edit, a run, the save, one undo ----------------------------


def test_the_agent_edits_the_notebook_on_screen(
    page: Page, lab: Lab, scripted_server: ScriptedModelServer, screenshots: Path
) -> None:
    mine = "x = 21  # typed, not saved\nprint(x * 3)"
    scripted_server.load(
        [
            {
                # The first request has the notebook as on screen, the unsaved text too.
                "expect": {"contains": "# typed, not saved"},
                "calls": [call("read_notebook", {})],
            },
            {
                "expect": {"contains": "# typed, not saved"},
                "text": "x is 21; I'll double it and keep your note.",
                "calls": [edit("calc", action="find_replace", find="21", replace="42")],
            },
            {"calls": [call("run_cells", {"cell_ids": ["calc"]})]},
            {"expect": {"contains": "126"}, "text": "Done: x is 42, the cell prints 126."},
        ]
    )
    live = Live(
        page,
        lab,
        "live.ipynb",
        [("load", "%load_ext jupyter_codexmax"), ("calc", "x = 21\nprint(x * 3)"), ("ask", "")],
    )
    live.load()
    live.nb.set_cell(1, mine)  # an unsaved change on screen
    assert live.nb.panel.page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty").count()
    assert "# typed" not in json.dumps(lab.saved("live.ipynb")), "not saved"
    live.ask("ask", "%%agent --approval auto\nDouble x and run the cell")
    live.wait_text("calc", "x = 42  # typed, not saved\nprint(x * 3)")
    live.nb.wait_output(1, "126")
    live.shoot(screenshots, "1-edited-and-ran")
    summary = live.wait_summary("ask")
    live.nb.wait_idle()
    live.shoot(screenshots, "2-summary")
    assert scripted_server.failures == []
    assert "Done: x is 42" in summary and not any(bad in summary for bad in BROKEN)
    assert live.dialogs() == 0, "no dialog (no 'file changed on disk')"
    requests = _requests_text(scripted_server)
    assert "Double x and run the cell" in requests[0]
    assert "(3 cells" in requests[0] or "3 cells" in requests[0], requests[0][:600]
    assert "# typed, not saved" in requests[0], "the first request has the notebook on screen"
    assert "# typed, not saved" in requests[1], "the agent read the notebook on screen"
    # After the turn the notebook on disk has the edit and the session, saved by JupyterLab.
    deadline = time.monotonic() + 30
    while "42" not in "".join(lab.saved("live.ipynb")["cells"][1]["source"]):
        assert time.monotonic() < deadline, "the notebook was not saved"
        time.sleep(0.1)  # polling interval
    saved = lab.saved("live.ipynb")
    assert "".join(saved["cells"][1]["source"]) == "x = 42  # typed, not saved\nprint(x * 3)"
    assert saved["metadata"][METADATA_KEY]["turns"] == 1
    assert API_KEY not in json.dumps(saved)
    # One Ctrl+Z in the cell takes the agent's edit back (the user's note stays).
    live.nb.cell(1).locator(".cm-content").click()
    page.keyboard.press("ControlOrMeta+z")
    live.wait_text("calc", mine)
    live.shoot(screenshots, "3-after-one-undo", live.nb.cell(1))
    assert live.dialogs() == 0


# -- 2. the user types while the agent edits ---------------------------------------------------


def test_typing_while_the_agent_edits(
    page: Page, lab: Lab, scripted_server: ScriptedModelServer, screenshots: Path
) -> None:
    typed_c = "  # mine"
    scripted_server.load(
        [
            {"calls": [call("read_notebook", {})]},
            {
                # Written slowly, so the user types meanwhile; then the edit of b lands.
                "text": "Let me change b first, and then c. " * 6,
                "chunk": 4,
                "delay": 0.1,
                "calls": [edit("b", action="replace", source="b = 20")],
            },
            {"calls": [edit("c", action="replace", source="c = 30")]},
            {
                "expect": {"contains": "the user changed cell c in the notebook since you read"},
                "calls": [call("read_notebook", {})],
            },
            {
                "expect": {"contains": "# mine"},
                "calls": [edit("c", action="find_replace", find="3", replace="30")],
            },
            {"text": "b and c changed; your comment in c is kept."},
        ]
    )
    live = Live(
        page,
        lab,
        "typing.ipynb",
        [
            ("load", "%load_ext jupyter_codexmax"),
            ("a", "a = 1"),
            ("b", "b = 2"),
            ("c", "c = 3"),
            ("ask", ""),
        ],
    )
    live.load()
    live.ask("ask", "%%agent --approval auto\nSet b to 20 and c to 30")
    live.nb.output(4).filter(has_text="read_notebook").wait_for()
    # The user types into c (which the agent will edit next), then into a, a key at a time,
    # until the agent's edit of b has landed, and a few keys more.
    live.nb.cell(3).locator(".cm-content").click()
    page.keyboard.press("End")
    page.keyboard.type(typed_c)
    live.nb.cell(1).locator(".cm-content").click()
    page.keyboard.press("End")
    typed_a = ""
    b_changed_at = None
    phrase = "  # typed by the user while the agent works"
    while b_changed_at is None or len(typed_a) < b_changed_at + 10:
        assert len(typed_a) < 600, "the agent's edit of b did not come"
        key = phrase[len(typed_a) % len(phrase)]
        page.keyboard.type(key)
        typed_a += key
        if b_changed_at is None and live.text("b") == "b = 20":
            b_changed_at = len(typed_a)
            live.shoot(screenshots, "1-typing-while-b-changes")
        time.sleep(0.05)
    live.wait_summary("ask")
    live.nb.wait_idle()
    live.shoot(screenshots, "2-after-the-turn")
    assert scripted_server.failures == []
    assert b_changed_at is not None and b_changed_at > 1, "b changed while the user typed"
    assert live.text("a") == "a = 1" + typed_a, "every key the user typed is there"
    assert live.text("b") == "b = 20"
    assert live.text("c") == "c = 30" + typed_c, "the refused edit, then one on the user's text"
    assert live.dialogs() == 0


# -- 3. an approval by the panel's button; the toolbar item; stopping --------------------------


def test_approval_by_button_and_stop(
    page: Page, lab: Lab, scripted_server: ScriptedModelServer, screenshots: Path
) -> None:
    slow = {"text": "Now let me explain, slowly, what x is. " * 20, "chunk": 4, "delay": 0.2}
    scripted_server.load([{"calls": [call("run_cells", {"cell_ids": ["calc"]})]}, slow, slow])
    live = Live(
        page,
        lab,
        "approve.ipynb",
        [
            ("load", "%load_ext jupyter_codexmax"),
            ("calc", "x = 21\nprint(x * 3)"),
            ("ask", ""),
            ("again", ""),
        ],
    )
    live.load()
    live.ask("ask", "%%agent\nRun the calc cell")
    output = live.nb.output(2)
    approve = output.get_by_role("button", name="Approve", exact=True)
    approve.wait_for()
    live.toolbar.filter(has_text="waiting for approval").wait_for()
    assert live.nb.output(2).locator(".jp-Stdin").count() == 0, "buttons, not the input box"
    live.shoot(screenshots, "1-approval-buttons")
    approve.click()
    live.nb.wait_output(1, "63")  # the run, in the notebook, as if the user ran it
    output.filter(has_text="Now let me explain").wait_for()
    live.toolbar.filter(has_text="Agent: working").wait_for()
    live.shoot(screenshots, "2-working-toolbar", live.nb.panel.locator(".jp-Toolbar").first)
    live.toolbar.click()  # stops the turn
    summary = live.wait_summary("ask")
    live.toolbar.filter(has_text="Agent: idle").wait_for()
    live.shoot(screenshots, "3-stopped-by-toolbar")
    assert "turn 1 · stopped" in summary
    # The panel's own Stop button stops the next turn.
    live.ask("again", "%%agent\nExplain x")
    again = live.nb.output(3)
    again.filter(has_text="Now let me explain").wait_for()
    again.get_by_role("button", name="Stop").click()
    summary = live.wait_summary("again")
    live.shoot(screenshots, "4-stopped-by-panel", live.nb.cell(3))
    assert "turn 2 · stopped" in summary
    assert scripted_server.failures == []
    assert live.dialogs() == 0


# -- 4. a kernel restart mid-session ----------------------------------------------------------


def test_a_kernel_restart_mid_session(
    page: Page, lab: Lab, scripted_server: ScriptedModelServer, screenshots: Path
) -> None:
    scripted_server.load(
        [
            {"calls": [edit("calc", action="replace", source="x = 42\nprint(x * 3)")]},
            {"text": "x is 42."},
            {"calls": [call("run_cells", {"cell_ids": ["slow"]})]},
            # (the kernel restarts during that run: the turn ends with it)
            {
                "expect": {"contains": "Set x to 42"},
                "calls": [edit("calc", action="replace", source="x = 84\nprint(x * 3)")],
            },
            {"text": "x is 84 now, after the restart."},
        ]
    )
    live = Live(
        page,
        lab,
        "restart.ipynb",
        [
            ("load", "%load_ext jupyter_codexmax"),
            ("calc", "x = 21\nprint(x * 3)"),
            ("slow", "import time\ntime.sleep(60)"),
            ("first", ""),
            ("second", ""),
            ("third", ""),
        ],
    )
    live.load()
    live.ask("first", "%%agent --approval auto\nSet x to 42")
    live.wait_text("calc", "x = 42\nprint(x * 3)")
    live.wait_summary("first")
    live.ask("second", "%%agent --approval auto\nRun the slow cell")
    live.nb.cell(2).locator(".jp-InputArea-prompt").filter(has_text="[*]").wait_for()
    # The kernel restarts while the frontend runs the agent's cell (a request in flight).
    live.nb.panel.locator('.jp-Toolbar [data-command="notebook:restart-kernel"]').click()
    page.locator(".jp-Dialog .jp-mod-accept").click()
    live.toolbar.wait_for(state="hidden")
    live.nb.wait_idle()
    live.shoot(screenshots, "1-after-the-restart")
    assert live.text("calc") == "x = 42\nprint(x * 3)", "the notebook as the user sees it"
    live.nb.run_cell(0)  # %load_ext again: the bridge comes back
    live.nb.wait_ran(0)
    live.toolbar.filter(has_text="Agent: idle").wait_for()
    live.ask("third", "%%agent --approval auto\nNow set x to 84")
    live.wait_text("calc", "x = 84\nprint(x * 3)")
    summary = live.wait_summary("third")
    live.shoot(screenshots, "2-continued-after-restart")
    assert "x is 84 now" in summary
    assert "continuing session" in summary, summary
    assert "another machine" not in summary, "the session saved by JupyterLab is this one's"
    assert scripted_server.failures == []
    assert live.dialogs() == 0


# -- 5. bad input on the bridge ------------------------------------------------------------------

SPY = """\
from jupyter_codexmax.kernel import _loaded
bridge = next(iter(_loaded.values())).bridge
seen = []
received = bridge._received
def spy(comm, msg):
    seen.append(msg["content"]["data"])
    received(comm, msg)
bridge._received = spy  # the comm's handler calls bridge._received
bridge.comm.send("not an object")
asked = {
    "method": bridge.request("notebook.fly"),
    "cell": bridge.request(
        "notebook.edit", ops=[{"op": "set_source", "id": "nope", "source": "x"}]),
    "op": bridge.request("notebook.edit", ops=[{"op": "fly", "id": "calc"}]),
    "late": bridge.request("notebook.edit", ops=[
        {"op": "set_source", "id": "calc", "source": "changed"},
        {"op": "delete", "id": "nope"}]),
    "run": bridge.request("notebook.run", ids=["nope"], timeout=5),
}
"""

REPORT = """\
import json
print(json.dumps({
    "answers": {k: str(f.exception() or f.result()) for k, f in asked.items()},
    "bad": [m for m in seen if m.get("id") is None],
}))
"""


def test_bad_input_gets_an_error_reply_and_changes_nothing(
    page: Page, lab: Lab, screenshots: Path
) -> None:
    live = Live(
        page,
        lab,
        "bad.ipynb",
        [
            ("load", "%load_ext jupyter_codexmax"),
            ("calc", "x = 21\nprint(x * 3)"),
            ("spy", SPY),
            ("report", REPORT),
        ],
    )
    live.load()
    live.nb.run_cell(2)
    live.nb.wait_ran(2)
    live.nb.run_cell(3)
    shown = live.nb.wait_output(3, "answers").inner_text()
    live.shoot(screenshots, "1-error-replies")
    found = json.loads(shown)
    answers = found["answers"]
    assert answers["method"] == 'unknown method "notebook.fly"'
    assert answers["cell"] == 'op 1 (set_source): no cell has id "nope"'
    assert answers["op"] == 'op 1: unknown op "fly"'
    assert answers["late"] == 'op 2 (delete): no cell has id "nope"', "checked whole first"
    assert answers["run"] == 'no cell has id "nope"'
    (bad,) = found["bad"]
    assert bad["ok"] is False
    assert bad["error"] == "a bridge message must be a JSON object, not a string"
    assert live.text("calc") == "x = 21\nprint(x * 3)", "nothing changed"
    assert re.search(r"Agent: idle", live.toolbar.inner_text())


# -- 6. the notebook closed while the agent runs a cell in it -------------------------------------


def test_the_notebook_closed_mid_request(
    page: Page, lab: Lab, scripted_server: ScriptedModelServer, screenshots: Path
) -> None:
    """Closing the notebook while the frontend runs the agent's cell: the request fails
    with one line (the model is told), the file keeps what the user had; opened again, the
    notebook finds the bridge (the kernel offered it again) without a cell being run."""
    scripted_server.load(
        [
            {"calls": [call("run_cells", {"cell_ids": ["slow"]})]},
            {"expect": {"contains": "the frontend closed the bridge"}, "text": "It was closed."},
        ]
    )
    live = Live(
        page,
        lab,
        "closing.ipynb",
        [
            ("load", "%load_ext jupyter_codexmax"),
            ("calc", "x = 21\nprint(x * 3)"),
            ("slow", "import time\ntime.sleep(3)\nprint('slept')"),
            ("ask", ""),
        ],
    )
    live.load()
    live.nb.save()
    before = lab.saved("closing.ipynb")
    live.ask("ask", "%%agent --approval auto\nRun the slow cell")
    live.nb.cell(2).locator(".jp-InputArea-prompt").filter(has_text="[*]").wait_for()
    page.locator(".lm-TabBar-tab.jp-mod-current .lm-TabBar-tabCloseIcon").first.click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for()
    live.shoot(screenshots, "1-closing")
    dialog.get_by_role("button", name="Discard").click()
    dialog.wait_for(state="detached")
    deadline = time.monotonic() + 30
    while len(scripted_server.requests_to("responses")) < 2:
        assert time.monotonic() < deadline, "the turn did not go on after the close"
        time.sleep(0.1)  # polling interval
    # Opened again in the same page: the bridge is back before any cell runs.
    page.locator(".jp-DirListing-item").filter(has_text="closing.ipynb").first.dblclick()
    live.nb.wait_idle()
    live.toolbar.filter(has_text="Agent: idle").wait_for()
    live.shoot(screenshots, "2-opened-again")
    assert scripted_server.failures == []
    saved = lab.saved("closing.ipynb")
    assert [c["source"] for c in saved["cells"][:3]] == [c["source"] for c in before["cells"][:3]]


# -- 7. a run past its time limit ------------------------------------------------------------------


def test_a_run_past_its_time_limit_is_interrupted(
    page: Page, lab: Lab, scripted_server: ScriptedModelServer, screenshots: Path
) -> None:
    scripted_server.load(
        [
            {"calls": [call("run_cells", {"cell_ids": ["slow"], "timeout": 2})]},
            {"expect": {"contains": "timeout"}, "text": "The cell ran past its time limit."},
        ]
    )
    live = Live(
        page,
        lab,
        "timeout.ipynb",
        [
            ("load", "%load_ext jupyter_codexmax"),
            ("slow", "import time\nprint('starting')\ntime.sleep(60)"),
            ("ask", ""),
        ],
    )
    live.load()
    started = time.monotonic()
    live.ask("ask", "%%agent --approval auto\nRun the slow cell")
    live.nb.wait_output(1, "KeyboardInterrupt")  # the frontend interrupted the kernel
    summary = live.wait_summary("ask")
    took = time.monotonic() - started
    live.shoot(screenshots, "1-interrupted")
    assert "past its time limit" in summary
    assert "starting" in live.nb.output(1).inner_text(), "what it printed stays"
    assert took < 30, f"interrupted at the limit, not after the cell's minute ({took:.0f} s)"
    assert scripted_server.failures == []


# -- a notebook JupyterLab opened read-only -------------------------------------------------


def test_a_read_only_notebook_is_never_saved_and_no_dialog_opens(
    page: Page, lab: Lab, scripted_server: ScriptedModelServer, screenshots: Path
) -> None:
    """The file cannot be written (JupyterLab says read-only): the agent's edit and run
    happen on screen, no save is tried (JupyterLab opened an error dialog at each), the
    tools are not failed for it, and the panel says once why nothing was saved."""
    import subprocess

    immutable: list[Path] = []

    def make_immutable(path: Path) -> None:
        # Root writes through a 0444 file; an immutable one it cannot write either.
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"chattr +i is not possible here: {done.stderr.decode().strip()}")
        immutable.append(path)

    scripted_server.load(
        [
            {"calls": [edit("calc", action="find_replace", find="21", replace="42")]},
            {"calls": [call("run_cells", {"cell_ids": ["calc"]})]},
            {"expect": {"contains": "126"}, "text": "x is 42 now; it prints 126."},
        ]
    )
    try:
        live = Live(
            page,
            lab,
            "readonly.ipynb",
            [("load", "%load_ext jupyter_codexmax"), ("calc", "x = 21\nprint(x * 3)"), ("ask", "")],
            before_open=make_immutable,
        )
        before = immutable[0].read_bytes()
        live.load()
        live.ask("ask", "%%agent --approval auto\nDouble x and run the cell")
        live.wait_text("calc", "x = 42\nprint(x * 3)")
        live.nb.wait_output(1, "126")
        summary = live.wait_summary("ask")
        live.shoot(screenshots, "1-read-only-summary")
        assert scripted_server.failures == []
        assert live.dialogs() == 0, "no 'File Save Error' dialog"
        assert "x is 42 now" in summary
        assert "read-only in JupyterLab" in summary, summary
        assert "BridgeError" not in summary and "\u2717" not in summary, summary
        requests = _requests_text(scripted_server)
        assert "read-only in JupyterLab" in requests[1], "the model is told why it was not saved"
        assert immutable[0].read_bytes() == before
    finally:
        for path in immutable:
            subprocess.run(["chattr", "-i", str(path)], check=False)
