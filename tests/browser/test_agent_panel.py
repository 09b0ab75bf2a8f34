"""``%%agent`` in real JupyterLab and Chromium without our JupyterLab extension: the widget
panel while the turn works in the cell, the static summary it leaves, and that summary
rendered again from the saved notebook. (With the extension: ``test_live.py``.)"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from browser.lab import Lab
from browser.screenshots import API_KEY, HEADLINE, run_scenario, run_stop_scenario
from jupyter_codexmax.session.store import OUTPUT_MIME
from jupyter_codexmax.testing import ScriptedModelServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
BROKEN = ("Traceback", "Error displaying widget", "model not found", "UsageError")


def test_agent_panel_and_saved_summary(
    page: Page, plain_lab: Lab, scripted_server: ScriptedModelServer, screenshots: Path
) -> None:
    """Without our JupyterLab extension (as in any other frontend): the turn runs in the
    cell, its edit is a proposal, the approval is asked in the input box."""
    shots = run_scenario(page, plain_lab, scripted_server, screenshots)
    print(f"kernel dialogs: {shots.kernel_dialogs}; seconds: {shots.seconds}")
    assert scripted_server.failures == []

    working = shots.texts["working"]
    assert "read_notebook" in working and "edit_notebook" in working
    assert "Approve?" in working and "run_cells calc" in working
    assert "Allow run_cells calc? [y]es / [n]o / [a]lways this session:" in working
    assert "+x = 42" in working, "the edit's row opens on its diff"
    # Issue 8's tidiness, as a person sees it: the scripted server is named, no cost is
    # made up, the approval's code is shown once, the edit's diff once.
    assert "jupyter-codexmax · scripted · medium · 127.0.0.1:" in working
    assert "$" not in working
    assert working.count("# cell calc") == 1
    assert working.count("@@ -1,2 +1,2 @@") == 1

    summary = shots.texts["summary"]
    assert HEADLINE in summary
    assert "Done: x is 42 now, and the cell prints 126." in summary, "markdown rendered"
    assert "Proposed changes (1, not applied)" in summary and "x = 42" in summary
    assert "Approve?" not in summary, "the panel gave way to the summary"
    assert "Allow run_cells" not in summary, "the prompt and its answer went with the panel"
    assert "x is 21 in the calc cell; I'll double it.\n" in summary, "messages stay apart"
    assert "• ✓" not in summary and "$" not in summary

    calc = shots.saved["cells"][1]
    assert calc["source"] == "x = 21\nprint(x * 3)", "the edit is a proposal, not applied"
    (saved,) = [o for o in shots.saved["cells"][2]["outputs"] if "data" in o]
    assert HEADLINE in saved["data"]["text/markdown"] and OUTPUT_MIME in saved["data"]
    assert "Allow run_cells" not in str(shots.saved["cells"][2]["outputs"])
    assert not any(WIDGET_MIME in o.get("data", {}) for o in shots.saved["cells"][2]["outputs"])

    reloaded = shots.texts["reloaded"]
    assert HEADLINE in reloaded and "Done: x is 42 now" in reloaded
    details = shots.texts["details"]
    assert "read_notebook" in details and "run_cells calc" in details
    for text in (working, summary, reloaded, details):
        assert not any(bad in text for bad in BROKEN), text
        assert API_KEY not in text
    assert API_KEY not in str(shots.saved)
    assert sorted(shots.paths) == [
        "1-panel-working",
        "1-panel-working-page",
        "2-panel-streaming",
        "3-summary",
        "3-summary-page",
        "4-saved-summary",
        "4-saved-summary-page",
        "5-saved-summary-details",
    ]
    assert all(p.stat().st_size > 1000 for p in shots.paths.values())


def test_the_interrupt_button_stops_a_turn(
    page: Page, plain_lab: Lab, scripted_server: ScriptedModelServer, screenshots: Path
) -> None:
    shots = run_stop_scenario(page, plain_lab, scripted_server, screenshots)
    stopped = shots.texts["stopped"]
    assert "jupyter-codexmax · turn 1 · stopped" in stopped
    assert "step by step" in stopped, "what it had written stays"
    assert "stopping (interrupt again" not in stopped, "a status line goes with the turn"
    assert not any(bad in stopped for bad in BROKEN), stopped
    assert len(scripted_server.requests_to("responses")) == 1
    assert sorted(shots.paths) == ["1-panel-writing", "2-stopped-summary", "2-stopped-summary-page"]
