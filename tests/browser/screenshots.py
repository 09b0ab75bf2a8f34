"""The ``%%agent`` panel and its saved summary in real JupyterLab without our extension (the
kernel has no bridge, as in any other frontend), as screenshots.

Used by ``test_agent_panel.py``, and runnable on its own to regenerate the pictures::

    ./dev screenshots                     # or: .venv/bin/python tests/browser/screenshots.py
    ./dev screenshots --out some/folder   # default build/screenshots/

It starts the scripted model server, a JupyterLab server and Chromium, runs a notebook whose
``%%agent`` cell reads the notebook, plans, proposes an edit, asks to run a cell (answered
``y`` in the input prompt) and answers; then saves, reloads and shows the saved summary.
A second notebook's turn is stopped with the interrupt button while it writes (``stop/``).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from browser.lab import Lab
    from jupyter_codexmax.testing import ScriptedModelServer

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"

#: The key the kernels get (the scripted server takes any key; it must never show).
API_KEY = "sk-browser-test-0123456789abcdef"

NOTEBOOK = "agent.ipynb"
STOP_NOTEBOOK = "stop.ipynb"
TASK = "%%agent\nDouble x and show it"
ANSWER = "Done: **x is 42** now, and the cell prints 126."
HEADLINE = "turn 1 · done in 5 steps"
ENDED = re.compile(r"jupyter-codexmax · turn \d+ · (done|failed|stopped)")  # the summary's
STEPS = ("Read the notebook", "Double x in the calc cell", "Run it and check")


def _call(name: str, arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


#: What the scripted model answers: a plan and a read, an edit (a proposal: the kernel has
#: no bridge), a run (needs approval at the default level, `ask`), the plan done, the answer.
SCRIPT: list[dict[str, Any]] = [
    {
        "reasoning": "Look at the notebook before changing anything.",
        "calls": [
            _call(
                "update_plan",
                {
                    "plan": [
                        {"step": STEPS[0], "status": "in_progress"},
                        {"step": STEPS[1], "status": "pending"},
                        {"step": STEPS[2], "status": "pending"},
                    ]
                },
            ),
            _call("read_notebook", {}),
        ],
    },
    {
        "text": "x is 21 in the calc cell; I'll double it.",
        "calls": [
            _call(
                "edit_notebook",
                {
                    "edits": [
                        {"action": "replace", "cell_id": "calc", "source": "x = 42\nprint(x * 3)"}
                    ]
                },
            )
        ],
    },
    {"calls": [_call("run_cells", {"cell_ids": ["calc"]})]},
    {
        # The run happened in the real kernel, and its output reached the model.
        "expect": {"contains": "126"},
        "calls": [
            _call("update_plan", {"plan": [{"step": s, "status": "completed"} for s in STEPS]})
        ],
    },
    # Streamed slowly (about 3 s), so the panel can be seen writing it.
    {"text": ANSWER, "chunk": 6, "delay": 0.25},
]


#: A long answer, streamed slowly (about 15 s), for the turn that is stopped.
SLOW_ANSWER = {
    "text": "Let me explain what x is, step by step, taking my time over every part of it. " * 4,
    "chunk": 5,
    "delay": 0.2,
}


def write_notebook(
    folder: Path, cells: list[tuple[str, str]] | None = None, name: str = NOTEBOOK
) -> Path:
    """The notebook: load the extension, a calc cell, and an empty cell for the task."""
    import nbformat
    from nbformat import v4

    nb = v4.new_notebook()
    nb.nbformat_minor = 5
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    }
    for cid, source in cells or [
        ("load", "%load_ext jupyter_codexmax"),
        ("calc", "x = 21\nprint(x * 3)"),
        ("ask", ""),
    ]:
        cell = v4.new_code_cell(source)
        cell["id"] = cid
        nb.cells.append(cell)
    path = folder / name
    path.write_text(nbformat.writes(nb) + "\n")
    return path


@dataclass
class Shots:
    """What the scenario saw: the screenshots' paths and the texts shown at each stage."""

    folder: Path
    paths: dict[str, Path] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    saved: dict[str, Any] = field(default_factory=dict)
    kernel_dialogs: int = 0  # JupyterLab asked which kernel to start (a race of its own)
    seconds: dict[str, float] = field(default_factory=dict)  # each stage's wall time


def run_scenario(page: Page, lab: Lab, server: ScriptedModelServer, out: Path) -> Shots:
    """Run the ``%%agent`` scenario in ``page``; screenshots into ``out``."""
    from browser.lab import Notebook

    out.mkdir(parents=True, exist_ok=True)
    shots = Shots(out)

    started = time.monotonic()

    def lap(stage: str) -> None:
        nonlocal started
        now = time.monotonic()
        shots.seconds[stage] = round(now - started, 2)
        started = now

    def shoot(name: str, target: Any) -> None:
        path = out / f"{name}.png"
        target.screenshot(path=str(path))
        shots.paths[name] = path

    server.load(SCRIPT)
    write_notebook(lab.root)
    nb = Notebook(page, lab, NOTEBOOK).open()
    lap("open")

    nb.run_cell(0)
    nb.wait_ran(0)
    nb.run_cell(1)
    nb.wait_output(1, "63")
    nb.set_cell(2, TASK)
    nb.run_cell(2)
    lap("first cells")

    # Working: the panel is up, and the turn waits for its approval in the input prompt.
    panel = nb.output(2).locator(".widget-vbox").first
    panel.wait_for()
    stdin = nb.output(2).locator(".jp-Stdin-input")
    stdin.wait_for()
    nb.output(2).filter(has_text="Approve?").wait_for()
    # Open the edit's row, to show the proposed diff (the view only: no message is needed
    # from the kernel, which is busy with the turn).
    row = nb.output(2).get_by_text("edit_notebook replace calc")
    row.click()
    nb.output(2).locator(".widget-html").filter(has_text="+x = 42").first.wait_for()
    shots.texts["working"] = nb.output(2).inner_text()
    shoot("1-panel-working", nb.cell(2))
    shoot("1-panel-working-page", page)
    lap("working")
    stdin.fill("y")
    stdin.press("Enter")

    # Writing the answer (best effort: the turn may end before the picture is taken).
    ended = nb.output(2).locator(".jp-OutputArea-output").filter(has_text=ENDED)
    panel.filter(has_text="Done:").or_(ended).first.wait_for()
    shoot("2-panel-streaming", nb.cell(2))
    shots.texts["streaming"] = nb.output(2).inner_text()

    # Done (or failed: the test says what it shows): the panel gives way to the summary.
    ended.first.wait_for()
    nb.wait_ran(2)
    nb.wait_idle()
    shots.texts["summary"] = nb.output(2).inner_text()
    shoot("3-summary", nb.cell(2))
    shoot("3-summary-page", page)
    lap("summary")

    # Saved and reloaded: the summary as it renders from the notebook file.
    nb.save(lambda saved: "jupyter-codexmax · turn" in str(saved["cells"][2].get("outputs")))
    shots.saved = lab.saved(NOTEBOOK)
    lap("save")
    nb.reload()
    ended.first.wait_for()
    shots.texts["reloaded"] = nb.output(2).inner_text()
    shoot("4-saved-summary", nb.cell(2))
    shoot("4-saved-summary-page", page)
    nb.output(2).get_by_text("What it did").click()
    nb.output(2).locator("details[open]").wait_for()
    shots.texts["details"] = nb.output(2).inner_text()
    shoot("5-saved-summary-details", nb.cell(2))
    lap("reload")
    shots.kernel_dialogs = nb.kernel_dialogs
    return shots


def run_stop_scenario(page: Page, lab: Lab, server: ScriptedModelServer, out: Path) -> Shots:
    """A turn stopped with JupyterLab's interrupt button while it writes; then the kernel
    runs the next cell."""
    from browser.lab import Notebook

    out.mkdir(parents=True, exist_ok=True)
    shots = Shots(out)
    server.load([SLOW_ANSWER])
    # Its own name: this machine keeps each notebook path's session (the journal's index),
    # and a notebook at the same path would continue the other scenario's session.
    write_notebook(
        lab.root,
        [("load", "%load_ext jupyter_codexmax"), ("ask", TASK), ("after", "print(6 * 7)")],
        name=STOP_NOTEBOOK,
    )
    nb = Notebook(page, lab, STOP_NOTEBOOK).open()
    nb.run_cell(0)
    nb.wait_ran(0)
    nb.run_cell(1)
    nb.output(1).locator(".widget-vbox").filter(has_text="step by step").first.wait_for()
    nb.cell(1).screenshot(path=str(out / "1-panel-writing.png"))
    shots.paths["1-panel-writing"] = out / "1-panel-writing.png"
    nb.interrupt()
    ended = nb.output(1).locator(".jp-OutputArea-output").filter(has_text=ENDED)
    ended.first.wait_for()
    nb.wait_ran(1)
    shots.texts["stopped"] = nb.output(1).inner_text()
    nb.run_cell(2)
    nb.wait_output(2, "42")
    nb.wait_idle()
    nb.cell(1).screenshot(path=str(out / "2-stopped-summary.png"))
    shots.paths["2-stopped-summary"] = out / "2-stopped-summary.png"
    page.screenshot(path=str(out / "2-stopped-summary-page.png"))
    shots.paths["2-stopped-summary-page"] = out / "2-stopped-summary-page.png"
    shots.kernel_dialogs = nb.kernel_dialogs
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=SCREENSHOTS, help="folder for the PNGs")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for `browser`
    from playwright.sync_api import sync_playwright

    from browser.lab import jupyter_lab, lab_environment, launch_chromium, new_page, why_no_browser
    from jupyter_codexmax.testing import ScriptedModelServer

    reason = why_no_browser()
    if reason:
        print(f"cannot take screenshots: {reason}", file=sys.stderr)
        return 1
    with (
        tempfile.TemporaryDirectory(prefix="cmx-lab-") as tmp,
        ScriptedModelServer() as server,
    ):
        env = lab_environment(Path(tmp), model_url=server.base_url, api_key=API_KEY)
        # These scenarios show %%agent without our JupyterLab extension (the live notebook's
        # pictures come from tests/browser/test_live.py).
        with (
            jupyter_lab(Path(tmp), env, extension=False) as lab,
            sync_playwright() as playwright,
        ):
            browser = launch_chromium(playwright)
            try:
                paths = run_scenario(new_page(browser), lab, server, args.out).paths
                if server.failures:
                    print(f"the scripted server refused: {server.failures}", file=sys.stderr)
                    return 1
                lab.reset()
                stop = run_stop_scenario(new_page(browser), lab, server, args.out / "stop")
                paths.update(stop.paths)
            finally:
                browser.close()
    for path in paths.values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
