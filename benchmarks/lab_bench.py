"""What the benchmarks in real JupyterLab and Chromium share (``bench_live.py``,
``bench_cells.py``): the server, the browser and the scripted model together, and the timing
of ``notebook.get`` through the live bridge.

``notebook.get`` is timed kernel to kernel: a cell (:data:`FIRE_SETTLED` or
:data:`FIRE_NOW`) starts a timer thread that asks the bridge for the notebook; the comm's
``send`` is wrapped to note the clock as the request goes out, and the future's callback
notes it when the parsed reply is there (what the agent waits for at each turn). The reply
is handled while the kernel is idle, so the driver waits after each run
(:func:`fire_get`); a last cell (:data:`REPORT_GETS`) prints every time noted, by label.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from browser.lab import (  # noqa: E402
    Lab,
    Notebook,
    jupyter_lab,
    lab_environment,
    launch_chromium,
    new_page,
    why_no_browser,
    why_no_extension,
)
from browser.screenshots import API_KEY  # noqa: E402
from results import Row, median  # noqa: E402

from jupyter_codexmax.testing import ScriptedModelServer  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Browser

__all__ = [
    "FIRE_NOW",
    "FIRE_SETTLED",
    "LOAD",
    "REPORT_GETS",
    "execute",
    "fire_get",
    "gets_of",
    "lab_and_browser",
    "median_row",
    "open_bridged",
    "read_gets",
    "wait_quiet",
    "why_not",
]

#: The cell that loads the extension (the bridge comes with it).
LOAD = "%load_ext jupyter_codexmax"

_FIRE_GET = """\
import threading, time
from jupyter_codexmax.kernel import _loaded
bridge = next(iter(_loaded.values())).bridge
mine = globals().setdefault("gets", {{}}).setdefault("{label}", [])
record = {{}}
real_send = bridge.comm.send
def timed_send(data, *a, **k):
    if isinstance(data, dict) and data.get("method") == "notebook.get":
        record["sent"] = time.perf_counter()
    return real_send(data, *a, **k)
def ask():
    bridge.comm.send = timed_send
    future = bridge.request("notebook.get")
    def done(f):
        record["done"] = time.perf_counter()
        record["cells"] = len(f.result()["cells"])
        bridge.comm.send = real_send
    future.add_done_callback(done)
threading.Timer({delay}, ask).start()
mine.append(record)
"""

#: Right as the cell ends (as a turn's first read: JupyterLab is still busy with the run),
#: and once the page has settled (the bridge's own cost).
FIRE_NOW = _FIRE_GET.format(label="now", delay=0.0)
FIRE_SETTLED = _FIRE_GET.format(label="settled", delay=1.0)

REPORT_GETS = """\
import json
print(json.dumps({label: {"times": [(r["done"] - r["sent"]) * 1000 for r in found if "done" in r],
                          "cells": sorted({r.get("cells") for r in found})}
                  for label, found in gets.items()}))
"""


def why_not() -> str | None:
    """Why the browser benchmarks cannot run here (None when they can)."""
    return why_no_browser() or why_no_extension()


@contextmanager
def lab_and_browser() -> Iterator[tuple[Lab, ScriptedModelServer, Browser]]:
    """A JupyterLab server with the extension (in a temporary folder, its kernels talking
    to the scripted model server) and Debian's Chromium, headless; all stopped at the end."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="cmx-bench-") as tmp, ScriptedModelServer() as server:
        root = Path(tmp)
        env = lab_environment(root, model_url=server.base_url, api_key=API_KEY)
        with jupyter_lab(root, env) as lab, sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                yield lab, server, browser
            finally:
                browser.close()


def open_bridged(browser: Browser, lab: Lab, name: str) -> Notebook:
    """``name`` open in a page of its own, its first cell (:data:`LOAD`) run, and the
    agent's status item idle: the bridge is up."""
    nb = Notebook(new_page(browser), lab, name).open()
    nb.run_cell(0)
    nb.wait_ran(0)
    nb.panel.locator(".jp-codexmax-AgentItem").filter(has_text="idle").wait_for()
    return nb


def fire_get(nb: Notebook, cell: int, wait: float = 1.6) -> None:
    """Run a ``FIRE_*`` cell, and wait ``wait`` seconds with the kernel idle (the request
    goes out and its reply is handled meanwhile)."""
    nb.run_cell(cell)
    nb.wait_ran(cell)
    nb.wait_idle()
    time.sleep(wait)  # the reply comes while the kernel is idle


_QUIET = """([ms, most]) => new Promise(resolve => {
    const started = performance.now();
    let last = started;
    new PerformanceObserver(() => { last = performance.now(); })
        .observe({type: 'longtask', buffered: false});
    const check = () => {
        const now = performance.now();
        if (now - last >= ms || now - started >= most) resolve(now - last >= ms);
        else setTimeout(check, 100);
    };
    setTimeout(check, 100);
})"""


def wait_quiet(nb: Notebook, ms: float = 2000, most: float = 60_000) -> bool:
    """Wait until the page has run no long task (50 ms or more) for ``ms`` milliseconds (a
    big notebook goes on rendering for a while after it shows), at most ``most``; whether
    it was quiet."""
    return bool(nb.page.evaluate(_QUIET, [ms, most]))


_EXECUTE = """async (code) => {
    const panel = [...window.jupyterapp.shell.widgets('main')]
        .find(w => w.sessionContext?.session?.kernel);
    const future = panel.sessionContext.session.kernel.requestExecute({code});
    let out = '';
    future.onIOPub = msg => { if (msg.header.msg_type === 'stream') out += msg.content.text; };
    const reply = await future.done;
    return [reply.content.status, out];
}"""


def execute(nb: Notebook, code: str) -> str:
    """Run ``code`` in the notebook's kernel from the page (no cell, no click: the page
    need not be in front); what it printed."""
    status, out = nb.page.evaluate(_EXECUTE, code)
    if status != "ok":
        raise RuntimeError(f"the code failed in {nb.name}'s kernel: {out}")
    return str(out)


def gets_of(text: str) -> dict[str, Any]:
    """What :data:`REPORT_GETS` printed: label to ``{"times": [ms...], "cells": [n...]}``."""
    try:
        found: dict[str, Any] = json.loads(text)
    except ValueError:
        raise RuntimeError(f"the report cell printed: {text}") from None
    return found


def read_gets(nb: Notebook, cell: int) -> dict[str, Any]:
    """Run the :data:`REPORT_GETS` cell: label to ``{"times": [ms...], "cells": [n...]}``."""
    nb.run_cell(cell)
    return gets_of(nb.wait_output(cell, "times").inner_text())


def median_row(table: str, row: str, values: list[float], limit: float, issue: str) -> Row:
    """A row for ``./dev bench``: the median of ``values`` (ms) against "at most ``limit``
    ms" (``issue`` names where the target comes from); no peer has this measure."""
    ours = median(values) if values else None
    return Row(
        table=table,
        row=row,
        unit="ms",
        ours=ours,
        target=f"≤ {limit:g} ms ({issue})",
        met=None if ours is None else ours <= limit,
        note="" if values else "no sample was measured",
    )
