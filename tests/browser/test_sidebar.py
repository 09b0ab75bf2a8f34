"""The sidebar chat in real JupyterLab and Chromium, with the scripted model server
(issue 12's "Must show"): the extension loaded by the sidebar itself, the answer streamed,
the edit and the run in the notebook, the session shared with ``%%agent`` cells, switching
notebooks, an approval, Stop, an error line, a kernel without the package.

Each test writes its pictures to ``build/screenshots/<test>/``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from browser.lab import Lab, Notebook
from browser.screenshots import API_KEY, write_notebook
from jupyter_codexmax.testing import ScriptedModelServer

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BROKEN = ("Traceback", "[object Object]", "undefined", "UsageError")


def call(name: str, arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


class Sidebar:
    """The chat on the right, driven as a person would."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.node = page.locator("#codexmax-chat")

    def open(self) -> None:
        """With the command (the page's command registry, as the palette runs it)."""
        self.page.evaluate("() => window.jupyterapp.commands.execute('codexmax:open-chat')")
        self.node.locator(".jp-codexmax-Chat-input").wait_for(state="visible")

    @property
    def rows(self) -> Locator:
        return self.node.locator(".jp-codexmax-Chat-row")

    def send(self, text: str) -> None:
        box = self.node.locator(".jp-codexmax-Chat-input")
        box.click()
        box.fill(text)
        box.press("Enter")

    def wait_row(self, css: str, text: str = "") -> Locator:
        found = self.node.locator(css)
        if text:
            found = found.filter(has_text=text)
        found.first.wait_for()
        return found.first

    def errors(self) -> list[str]:
        return self.node.locator(".jp-codexmax-Chat-notice[data-level='error']").all_inner_texts()

    def wait_idle(self) -> None:
        self.page.wait_for_function(
            "() => document.querySelector('#codexmax-chat')?.dataset.busy === 'false'"
        )

    def text(self) -> str:
        return self.node.inner_text()


def _open(page: Page, lab: Lab, name: str, cells: list[tuple[str, str]]) -> Notebook:
    write_notebook(lab.root, cells, name=name)
    return Notebook(page, lab, name).open()


def _shoot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"))


def _kernel_has_agent(page: Page) -> bool:
    """Whether the page sees the bridge up (the toolbar item shows)."""
    return bool(page.locator(".jp-codexmax-AgentItem:visible").count())


# -- 1. the main scenario ------------------------------------------------------------------------


def test_a_sidebar_turn_on_a_kernel_without_the_extension_then_agent_continues_it(
    page: Page, lab: Lab, scripted_server: ScriptedModelServer, screenshots: Path
) -> None:
    answer = (
        "I doubled **x** in cell `calc` and ran it: it prints **126**.\n\n"
        "- the edit is in the notebook\n- the cell ran in your kernel\n"
    )
    scripted_server.load(
        [
            {
                "reasoning": "The user wants x doubled; edit the cell, then run it.",
                "calls": [
                    call("update_plan", {"plan": [
                        {"step": "Double x", "status": "in_progress"},
                        {"step": "Run the cell", "status": "pending"}]}),
                    call("edit_notebook", {"edits": [{"cell_id": "calc",
                        "action": "find_replace", "find": "21", "replace": "42"}]}),
                ],
            },
            {"calls": [call("run_cells", {"cell_ids": ["calc"]})]},
            {"expect": {"contains": "126"}, "text": answer, "chunk": 6, "delay": 0.05},
            {
                "expect": {"contains": "Double x in the calc cell and run it"},
                "text": "Earlier you asked me to double x; it is 42 now.",
            },
        ]
    )  # fmt: skip
    nb = _open(page, lab, "chat.ipynb", [("calc", "x = 21\nprint(x * 3)"), ("ask", "")])
    assert not _kernel_has_agent(page), "the kernel has not loaded the extension"
    sidebar = Sidebar(page)
    sidebar.open()
    _shoot(page, screenshots, "1-opened")
    sidebar.node.locator("select.jp-codexmax-Chat-select-approval").select_option("auto")
    sidebar.send("Double x in the calc cell and run it")
    first = sidebar.wait_row(".jp-codexmax-Chat-answer", "I doubled")
    # Streamed: the answer shows in parts before it is whole.
    seen = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        chars = first.get_attribute("data-chars")
        seen.add(int(chars or 0))
        if "cell ran in your kernel" in first.inner_text():
            break
        time.sleep(0.01)  # polling interval
    assert len([n for n in seen if 0 < n < len(answer)]) >= 2, seen
    sidebar.wait_idle()
    nb.wait_output(0, "126")
    _shoot(page, screenshots, "2-answered")
    assert "126" in first.locator("strong").all_inner_texts(), "rendered as markdown"
    text = sidebar.text()
    assert "Double x in the calc cell and run it" in text  # the user's row
    assert sidebar.node.locator(".jp-codexmax-Chat-tool").count() >= 3
    assert sidebar.node.locator(".jp-codexmax-Chat-plan li").count() == 2
    assert sidebar.node.locator(".jp-codexmax-Chat-reasoning").count() == 1
    cell_row = sidebar.wait_row(".jp-codexmax-Chat-cell", "calc")
    sidebar.wait_row(".jp-codexmax-Chat-run", "calc")
    assert "context" in sidebar.node.locator(".jp-codexmax-Chat-meter").inner_text()
    # The edit is in the notebook on screen, and the cell ran there.
    assert "x = 42" in nb.cell(0).inner_text()
    assert nb.wait_ran(0) == "[1]:", "the silent load took no execution count"
    # The extension was loaded silently: no cell, no output, no execution count of its own.
    assert nb.panel.locator(".jp-Cell").count() == 2
    assert "load_ext" not in nb.panel.inner_text()
    # A tool row opens to its arguments and result; the cell link selects the cell.
    tool = sidebar.node.locator(".jp-codexmax-Chat-tool").filter(has_text="run_cells").first
    tool.locator("summary").click()
    assert "calc" in tool.locator(".jp-codexmax-Chat-args").inner_text()
    cell_row.locator("a").click()
    nb.panel.locator(".jp-Cell.jp-mod-active").filter(has_text="x = 42").wait_for()
    _shoot(page, screenshots, "3-tool-expanded")

    # A %%agent cell continues the sidebar's session, and shows live in the sidebar.
    nb.set_cell(1, "%%agent\nWhat did I ask you before?")
    nb.run_cell(1)
    sidebar.wait_row(".jp-codexmax-Chat-answer", "Earlier you asked me")
    sidebar.wait_idle()
    assert "What did I ask you before?" in sidebar.text()
    assert scripted_server.failures == []
    requests = scripted_server.requests_to("responses")
    last = json.dumps(requests[-1].body)
    assert "Double x in the calc cell and run it" in last, "it carries the sidebar's turn"
    assert "I doubled" in last
    _shoot(page, screenshots, "4-agent-cell-continued")
    shown = sidebar.text()
    assert not any(bad in shown for bad in BROKEN), shown
    assert API_KEY not in page.content()


# -- 2. switching notebooks ----------------------------------------------------------------------


def test_switching_notebooks_switches_the_session(
    page: Page, lab: Lab, scripted_server: ScriptedModelServer, screenshots: Path
) -> None:
    scripted_server.load([{"text": "Answer for the first notebook."}])
    write_notebook(lab.root, [("a", "a = 1")], name="first.ipynb")
    nb = _open(page, lab, "first.ipynb", [("a", "a = 1")])
    sidebar = Sidebar(page)
    # The keyboard shortcut opens it (from the notebook, in command mode).
    nb.cell(0).locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Control+Alt+c")
    sidebar.node.locator(".jp-codexmax-Chat-input").wait_for(state="visible")
    assert page.evaluate("() => document.activeElement?.className").startswith(
        "jp-codexmax-Chat-input"
    ), "the caret is in the message box"
    sidebar.send("Hello from the first notebook")
    sidebar.wait_row(".jp-codexmax-Chat-answer", "Answer for the first notebook.")
    sidebar.wait_idle()
    # A second notebook, with a stored session (as from another machine).
    second = write_notebook(lab.root, [("b", "b = 2")], name="second.ipynb")
    stored = json.loads(second.read_text())
    stored["metadata"]["codexmax"] = _stored_session(3)
    second.write_text(json.dumps(stored))
    box = sidebar.node.locator(".jp-codexmax-Chat-input")
    box.fill("half a thought for the first notebook")  # typed, not sent
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:open', "
                  "{path: 'second.ipynb'})")  # fmt: skip
    sidebar.wait_row(".jp-codexmax-Chat-user", "stored question 3")
    assert box.input_value() == "", "the first notebook's draft is not offered for the second"
    header = sidebar.node.locator(".jp-codexmax-Chat-where")
    assert header.inner_text() == "second.ipynb"
    assert "Hello from the first notebook" not in sidebar.text()
    assert "stored answer 1" in sidebar.text()
    _shoot(page, screenshots, "1-second-notebook")
    page.locator(".lm-TabBar-tab").filter(has_text="first.ipynb").first.click()
    sidebar.wait_row(".jp-codexmax-Chat-user", "Hello from the first notebook")
    assert header.inner_text() == "first.ipynb"
    assert box.input_value() == "half a thought for the first notebook", "its draft is back"
    assert "stored question" not in sidebar.text()
    _shoot(page, screenshots, "2-back-to-first")


def _kernelspec(lab: Lab, code: str, *, name: str, display_name: str, language: str) -> Path:
    """A kernelspec ``name`` in the lab's data folder whose kernel runs ``code``; its folder
    (the test removes it)."""
    data = lab.root.parent / "jupyter-data" / "kernels" / name
    data.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-c", code, "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": display_name, "language": language}
    (data / "kernel.json").write_text(json.dumps(spec))
    return data


def _notebook_of(
    lab: Lab,
    filename: str,
    cells: list[tuple[str, str]],
    *,
    name: str,
    display_name: str,
    language: str,
) -> Path:
    """A notebook of ``cells`` whose kernelspec is ``name``."""
    path = write_notebook(lab.root, cells, name=filename)
    nb_json = json.loads(path.read_text())
    nb_json["metadata"]["kernelspec"] = {
        "name": name,
        "display_name": display_name,
        "language": language,
    }
    path.write_text(json.dumps(nb_json))
    return path


def _stored_session(turns: int) -> dict[str, Any]:
    """A session record as a notebook keeps it (docs/session.md), ``turns`` turns."""
    messages: list[dict[str, Any]] = []
    for n in range(1, turns + 1):
        messages.append(
            {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": f"stored question {n}"}]}
        )  # fmt: skip
        messages.append(
            {"type": "message", "role": "assistant",
             "content": [{"type": "output_text", "text": f"stored answer {n} with `code`"}]}
        )  # fmt: skip
    return {
        "schema": 1,
        "session_id": "stored-session-0001",
        "created": "2026-11-01T10:00:00+00:00",
        "updated": "2026-11-01T10:05:00+00:00",
        "provider": "responses",
        "model": "gpt-5.1-codex-max",
        "effort": "medium",
        "turns": turns,
        "compactions": 1,
        "context_tokens": 5230,
        "usage": {
            "input_tokens": 12000,
            "cached_input_tokens": 0,
            "output_tokens": 900,
            "reasoning_tokens": 100,
            "total_tokens": 12900,
        },
        "summary": None,
        "messages": messages,
        "ledger": {"task": "stored task", "cells_edited": ["b"]},
    }


# -- 3. an approval, Stop, an error line -----------------------------------------------------------


def test_approval_stop_and_an_error_line(
    page: Page, lab: Lab, scripted_server: ScriptedModelServer, screenshots: Path
) -> None:
    scripted_server.load(
        [
            {"calls": [call("shell", {"command": "echo approved-by-click"})]},
            {"expect": {"contains": "approved-by-click"}, "text": "The command ran."},
            {"text": "A long answer that goes on " * 40, "chunk": 4, "delay": 0.2},
            {"fault": "http", "status": 401},
        ]
    )
    _open(page, lab, "approve.ipynb", [("a", "a = 1")])
    sidebar = Sidebar(page)
    sidebar.open()
    sidebar.node.locator("select.jp-codexmax-Chat-select-approval").select_option("ask")
    sidebar.send("Run a shell command")
    row = sidebar.wait_row("div.jp-codexmax-Chat-approval", "echo approved-by-click")
    _shoot(page, screenshots, "1-approval-asked")
    row.locator("button[data-decision='approve']").click()
    sidebar.wait_row(".jp-codexmax-Chat-answer", "The command ran.")
    assert "approved" in row.inner_text()
    sidebar.wait_idle()
    _shoot(page, screenshots, "2-approved")

    # Stop: a slow answer, stopped mid-stream.
    sidebar.send("Write something long")
    sidebar.wait_row(".jp-codexmax-Chat-answer", "A long answer")
    stop = sidebar.node.locator(".jp-codexmax-Chat-stop")
    assert stop.is_enabled()
    stop.click()
    sidebar.wait_row(".jp-codexmax-Chat-end", "stopped")
    sidebar.wait_idle()
    stopped = sidebar.node.locator(".jp-codexmax-Chat-answer").last
    length = len(stopped.inner_text())
    time.sleep(0.6)  # three of the stream's delays: nothing more comes
    assert len(stopped.inner_text()) == length
    assert length < len("A long answer that goes on " * 40)
    assert sidebar.node.locator(".jp-codexmax-Chat-end").count() == 1
    _shoot(page, screenshots, "3-stopped")

    # An error: the server refuses the credentials; one line, no traceback.
    sidebar.send("Once more")
    error = sidebar.wait_row(".jp-codexmax-Chat-notice[data-level='error']")
    sidebar.wait_idle()
    _shoot(page, screenshots, "4-error")
    errors = sidebar.errors()
    assert len(errors) == 1, errors
    assert "refused" in errors[0] and "\n" not in errors[0].strip(), errors
    assert "Traceback" not in sidebar.text() and API_KEY not in page.content()
    assert error.is_visible()
    assert scripted_server.failures == []


# -- 4. a kernel without the package -------------------------------------------------------------


NO_PACKAGE = """
import sys

class NoCodexmax:
    def find_spec(self, name, path=None, target=None):
        if name == "jupyter_codexmax" or name.startswith("jupyter_codexmax."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoCodexmax())
from ipykernel import kernelapp
kernelapp.launch_new_instance()
"""


def test_a_kernel_without_the_package_says_so(
    page: Page, lab: Lab, scripted_server: ScriptedModelServer, screenshots: Path
) -> None:
    """A kernelspec whose Python cannot import jupyter_codexmax (an environment without
    it): the sidebar says so and how to fix it; the notebook is left as it was."""
    scripted_server.load([])
    spec = {"name": "nocodexmax", "display_name": "Python (no jupyter-codexmax)"}
    data = _kernelspec(lab, NO_PACKAGE, language="python", **spec)
    try:
        path = _notebook_of(lab, "bare.ipynb", [("a", "a = 1")], language="python", **spec)
        before = path.read_text()
        nb = Notebook(page, lab, "bare.ipynb").open()
        sidebar = Sidebar(page)
        sidebar.open()
        sidebar.send("Hello")
        sidebar.wait_row(".jp-codexmax-Chat-notice[data-level='error']")
        (error,) = sidebar.errors()
        _shoot(page, screenshots, "1-no-package")
        assert "has no jupyter-codexmax" in error and "%pip install jupyter-codexmax" in error
        assert "nocodexmax" in error
        assert sidebar.node.locator(".jp-codexmax-Chat-input").input_value() == "Hello"
        nb.wait_idle()
        assert nb.panel.locator(".jp-Cell").count() == 1
        assert path.read_text() == before, "the notebook is left as it was"
        # The notebook still works.
        nb.run_cell(0)
        assert nb.wait_ran(0) == "[1]:"
    finally:
        for child in data.iterdir():
            child.unlink()
        data.rmdir()


# -- 5. settings ----------------------------------------------------------------------------------


def test_the_settings_are_the_selectors_defaults_and_reach_the_kernel(
    page: Page, lab: Lab, scripted_server: ScriptedModelServer
) -> None:
    """The settings editor's values (saved through JupyterLab's settings API, as the editor
    does) are the selectors' defaults, and the turn's request carries them."""
    import urllib.request

    scripted_server.load([{"text": "Thinking hard."}])
    body = json.dumps({"raw": json.dumps({"effort": "high", "approval": "read-only"})})
    request = urllib.request.Request(
        f"{lab.url}lab/api/settings/jupyter-codexmax:sidebar",
        data=body.encode(),
        method="PUT",
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass
    try:
        _open(page, lab, "settings.ipynb", [("a", "a = 1")])
        sidebar = Sidebar(page)
        sidebar.open()
        effort = sidebar.node.locator("select.jp-codexmax-Chat-select-effort")
        approval = sidebar.node.locator("select.jp-codexmax-Chat-select-approval")
        assert (effort.input_value(), approval.input_value()) == ("high", "read-only")
        sidebar.send("Think")
        sidebar.wait_row(".jp-codexmax-Chat-answer", "Thinking hard.")
        sidebar.wait_idle()
        (sent,) = scripted_server.requests_to("responses")
        assert sent.body["reasoning"]["effort"] == "high"
    finally:
        request = urllib.request.Request(
            f"{lab.url}lab/api/settings/jupyter-codexmax:sidebar",
            data=json.dumps({"raw": "{}"}).encode(),
            method="PUT",
            headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass


OTHER_LANGUAGE = """
from ipykernel.ipkernel import IPythonKernel
from ipykernel.kernelapp import IPKernelApp

class ShellKernel(IPythonKernel):
    language_info = {"name": "bash", "mimetype": "text/x-sh", "file_extension": ".sh"}

IPKernelApp.launch_instance(kernel_class=ShellKernel)
"""


def test_a_kernel_of_another_language_says_so(
    page: Page, lab: Lab, scripted_server: ScriptedModelServer, screenshots: Path
) -> None:
    """A kernel that says it runs another language (bash): the sidebar does not try to load
    the agent there, and says why and what to do."""
    scripted_server.load([])
    spec = {"name": "othershell", "display_name": "Shell (test)"}
    data = _kernelspec(lab, OTHER_LANGUAGE, language="bash", **spec)
    try:
        _notebook_of(lab, "shell.ipynb", [("a", "echo hi")], language="bash", **spec)
        Notebook(page, lab, "shell.ipynb").open()
        sidebar = Sidebar(page)
        sidebar.open()
        sidebar.send("Hello")
        sidebar.wait_row(".jp-codexmax-Chat-notice[data-level='error']")
        (error,) = sidebar.errors()
        _shoot(page, screenshots, "1-another-language")
        assert error.startswith("this notebook's kernel (othershell) runs bash, not Python")
        assert "Change Kernel" in error
        assert not _kernel_has_agent(page)
        assert scripted_server.requests_to("responses") == []
    finally:
        for child in data.iterdir():
            child.unlink()
        data.rmdir()
