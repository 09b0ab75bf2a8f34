"""Benchmark: the sidebar chat in real JupyterLab and Chromium (issue 12's Performance).

- a streamed text delta, kernel to the sidebar's DOM: from the comm message's kernel-side
  timestamp (its header's ``date``) to the moment the delta's text is in the rendered
  answer (a MutationObserver in the page), for every delta of a streamed answer; target
  median at most 50 ms;
- opening the sidebar on a notebook with a 200-turn session, from the command to the
  message box visible with the session's rows in it (timed in the page); target at most
  150 ms; and, beside it, drawing that session when the user switches to it with the
  sidebar open (every row, the answers through JupyterLab's markdown renderer);
- Stop: from the click to the turn's end shown ("stopped"); target at most 100 ms;
- the Jupyter server's start (until its API answers), with our extension and without it
  (our extension has no server part: nothing is imported at the server's start).

    .venv/bin/python benchmarks/bench_sidebar.py   # writes RESULTS-sidebar.md
"""

from __future__ import annotations

import datetime
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from browser.lab import Lab, Notebook, jupyter_lab, lab_environment, launch_chromium, new_page  # noqa: E402
from browser.screenshots import API_KEY, write_notebook  # noqa: E402
from lab_bench import median_row  # noqa: E402
from results import Row, median, report  # noqa: E402

from jupyter_codexmax.testing import ScriptedModelServer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS-sidebar.md"
OPEN_SAMPLES = 7
STOP_SAMPLES = 5
START_SAMPLES = 3

WATCH_DELTAS = """() => {
    const app = window.jupyterapp;
    const panel = app.shell.currentWidget;
    const kernel = panel.sessionContext.session.kernel;
    window.__deltas = {};   // word -> kernel time (ms since the epoch)
    window.__shown = {};    // word -> DOM time
    kernel.iopubMessage.connect((_, msg) => {
        if (msg.header.msg_type !== 'comm_msg') return;
        const event = msg.content.data && msg.content.data.event;
        if (!event || event.type !== 'TextDelta') return;
        for (const word of event.text.match(/w\\d{4}/g) || []) {
            window.__deltas[word] = Date.parse(msg.header.date);
        }
    });
    const list = document.querySelector('#codexmax-chat .jp-codexmax-Chat-list');
    new MutationObserver(() => {
        const now = Date.now();
        const answer = list.querySelector('.jp-codexmax-Chat-answer:last-of-type');
        if (!answer) return;
        for (const word of answer.textContent.match(/w\\d{4}/g) || []) {
            if (!(word in window.__shown)) window.__shown[word] = now;
        }
    }).observe(list, {childList: true, subtree: true, characterData: true});
}"""

OPEN_TIMED = """(rows) => new Promise(resolve => {
    const app = window.jupyterapp;
    const started = performance.now();
    app.commands.execute('codexmax:open-chat');
    const check = () => {
        const box = document.querySelector('#codexmax-chat .jp-codexmax-Chat-input');
        const shown = document.querySelectorAll('#codexmax-chat .jp-codexmax-Chat-user');
        if (box && box.offsetParent !== null && !box.disabled && shown.length >= rows) {
            resolve(performance.now() - started);
        } else {
            requestAnimationFrame(check);
        }
    };
    check();
})"""

SWITCH_TIMED = """([name, rows]) => new Promise(resolve => {
    const app = window.jupyterapp;
    const target = [...app.shell.widgets('main')].find(w => w.context && w.context.path === name);
    const started = performance.now();
    app.shell.activateById(target.id);
    const check = () => {
        const shown = document.querySelectorAll('#codexmax-chat .jp-codexmax-Chat-user');
        const where = document.querySelector('#codexmax-chat .jp-codexmax-Chat-where');
        if (where.textContent === name && shown.length >= rows) {
            resolve(performance.now() - started);
        } else {
            requestAnimationFrame(check);
        }
    };
    check();
})"""

STOP_TIMED = """() => new Promise(resolve => {
    const chat = document.querySelector('#codexmax-chat');
    const answers = chat.querySelectorAll('.jp-codexmax-Chat-answer');
    const answer = answers[answers.length - 1];
    const before = chat.querySelectorAll('.jp-codexmax-Chat-end').length;
    const started = performance.now();
    let shown = null;
    let lastText = started;
    let length = answer.textContent.length;
    new MutationObserver(() => {
        const now = performance.now();
        if (answer.textContent.length !== length) {
            length = answer.textContent.length;
            lastText = now;
        }
        if (shown === null && chat.querySelectorAll('.jp-codexmax-Chat-end').length > before) {
            shown = now - started;
        }
        if (shown !== null && chat.dataset.busy === 'false') {
            resolve([shown, lastText - started, now - started]);
        }
    }).observe(chat, {childList: true, subtree: true, characterData: true, attributes: true});
    chat.querySelector('.jp-codexmax-Chat-stop').click();
})"""


def stored_session(turns: int) -> dict[str, Any]:
    from browser.test_sidebar import _stored_session

    record = _stored_session(turns)
    for item in record["messages"]:
        if item["role"] == "assistant":
            item["content"][0]["text"] += (
                "\n\n- a list item with **bold** text\n- and `code`\n\n```python\nx = 1\n```"
            )
    return record


def send(page: Any, text: str) -> None:
    box = page.locator("#codexmax-chat .jp-codexmax-Chat-input")
    box.fill(text)
    box.press("Enter")


def wait_idle(page: Any) -> None:
    page.wait_for_function(
        "() => document.querySelector('#codexmax-chat')?.dataset.busy === 'false'"
    )


def measure(lab: Lab, server: ScriptedModelServer, browser: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    words = " ".join(f"w{n:04d}" for n in range(1, 121))
    server.load(
        [{"text": "warm-up"}, {"text": words, "chunk": 6, "delay": 0.03}]
        + [{"text": "A slow answer " * 200, "chunk": 4, "delay": 0.1}] * STOP_SAMPLES
    )
    page = new_page(browser)
    write_notebook(lab.root, [("a", "a = 1")], name="stream.ipynb")
    Notebook(page, lab, "stream.ipynb").open()
    page.evaluate("() => window.jupyterapp.commands.execute('codexmax:open-chat')")
    send(page, "warm up")
    page.locator("#codexmax-chat .jp-codexmax-Chat-answer").filter(has_text="warm-up").wait_for()
    wait_idle(page)
    page.evaluate(WATCH_DELTAS)
    send(page, "stream")
    page.locator("#codexmax-chat .jp-codexmax-Chat-answer").filter(has_text="w0120").wait_for()
    wait_idle(page)
    deltas = page.evaluate("() => window.__deltas")
    shown = page.evaluate("() => window.__shown")
    latencies = [shown[w] - deltas[w] for w in deltas if w in shown]
    out["delta"] = latencies
    out["delta_count"] = len(deltas)

    stops = []
    for n in range(STOP_SAMPLES):
        send(page, f"slow {n}")
        page.locator("#codexmax-chat .jp-codexmax-Chat-answer").filter(
            has_text="A slow answer A slow"
        ).nth(n).wait_for()
        stops.append(page.evaluate(STOP_TIMED))
        wait_idle(page)
    out["stop"] = [s[0] for s in stops]
    out["stop_text"] = [s[1] for s in stops]
    out["stop_end"] = [s[2] for s in stops]
    page.context.close()

    opens, switches = [], []
    for n in range(OPEN_SAMPLES):
        big = write_notebook(lab.root, [("a", "a = 1")], name=f"big{n}.ipynb")
        data = json.loads(big.read_text())
        data["metadata"]["codexmax"] = stored_session(200)
        big.write_text(json.dumps(data))
        write_notebook(lab.root, [("b", "b = 1")], name=f"small{n}.ipynb")
        page = new_page(browser)
        Notebook(page, lab, f"big{n}.ipynb").open()
        opens.append(page.evaluate(OPEN_TIMED, 200))
        page.evaluate(
            f"() => window.jupyterapp.commands.execute('docmanager:open', "
            f"{{path: 'small{n}.ipynb'}})"
        )
        page.locator("#codexmax-chat .jp-codexmax-Chat-where").filter(
            has_text=f"small{n}.ipynb"
        ).wait_for()
        page.wait_for_timeout(500)
        switches.append(page.evaluate(SWITCH_TIMED, [f"big{n}.ipynb", 200]))
        page.context.close()
    out["open"] = opens
    out["switch"] = switches
    return out


def server_start(root: Path, env: dict[str, str], extension: bool) -> list[float]:
    times = []
    for n in range(START_SAMPLES):
        folder = root / f"start-{extension}-{n}"
        folder.mkdir()
        env_n = lab_environment(folder, model_url=env["OPENAI_BASE_URL"], api_key=API_KEY)
        started = time.perf_counter()
        with jupyter_lab(folder, env_n, extension=extension):
            times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> int:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, ScriptedModelServer() as server:
        root = Path(tmp)
        env = lab_environment(root / "lab", model_url=server.base_url, api_key=API_KEY)
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            with jupyter_lab(root / "lab", env) as lab:
                results = measure(lab, server, browser)
            browser.close()
        starts_with = server_start(root, env, True)
        starts_without = server_start(root, env, False)
    write(results, starts_with, starts_without)
    print(RESULTS.read_text())
    report(rows(results, starts_with, starts_without), details=RESULTS.name)
    return 0


def rows(
    results: dict[str, Any], starts_with: list[float], starts_without: list[float]
) -> list[Row]:
    """The summary rows for ``./dev bench``: ours only (no peer was measured in this run;
    RESULTS.md says only what was)."""
    start = "browser: the Jupyter server's start, until its API answers"
    added = median(starts_with) - median(starts_without)
    opened = median_row(
        "browser: opening the sidebar on a 200-turn session",
        "median",
        results["open"],
        150,
        "issue 12",
    )
    stop = median_row(
        'browser: Stop, click to "stopped" shown', "median", results["stop"], 100, "issue 12"
    )
    return [
        median_row(
            "browser: text delta, kernel to the sidebar's DOM",
            "median",
            results["delta"],
            50,
            "issue 12",
        ),
        opened,
        Row(opened.table, "switching to it, sidebar open, median", "ms", median(results["switch"])),
        stop,
        Row(start, "with our extension, median", "ms", median(starts_with)),
        Row(start, "without it, median", "ms", median(starts_without)),
        Row(
            start,
            "added by the extension",
            "ms",
            added,
            target="nothing added (issue 12): within 5 % of the start",
            met=added <= 0.05 * median(starts_without),
        ),
    ]


def _stats(values: list[float]) -> str:
    return (
        f"median **{statistics.median(values):.0f} ms**; min {min(values):.0f}, "
        f"max {max(values):.0f} ({len(values)} samples)"
    )


def write(results: dict[str, Any], starts_with: list[float], starts_without: list[float]) -> None:
    import platform

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    delta = statistics.median(results["delta"])
    opened = statistics.median(results["open"])
    stop = statistics.median(results["stop"])
    met = lambda ok: "**met**" if ok else "**not met**"  # noqa: E731
    lines = [
        "# Benchmark: the sidebar chat",
        "",
        f"Run {now} by `benchmarks/bench_sidebar.py`: a real JupyterLab, Debian's Chromium "
        "(headless), real kernels, the scripted model server on loopback; a 2-core machine "
        "shared with other sessions. Times in the page unless said.",
        "",
        f"- text delta, kernel to the sidebar's DOM (the comm message's kernel timestamp to "
        f"its text in the rendered answer), {results['delta_count']} deltas of one streamed "
        f"answer: {_stats(results['delta'])}; target at most 50 ms: {met(delta <= 50)}; "
        f"95th percentile {sorted(results['delta'])[int(0.95 * len(results['delta'])) - 1]:.0f} ms",
        f"- opening the sidebar on a notebook with a 200-turn session (400 messages), from "
        f"the command to the message box visible with the session's 200 turns in it: "
        f"{_stats(results['open'])}; target at most 150 ms: {met(opened <= 150)} (Jupyter AI "
        "3.2: 0.12-0.21 s with a short chat)",
        f"- beside it, switching to that notebook with the sidebar open (every row drawn again, "
        f"the 200 answers through JupyterLab's markdown renderer): {_stats(results['switch'])}",
        f'- Stop, from the click to "stopped" shown (the kernel has cancelled the turn: no '
        f"more of the answer comes): {_stats(results['stop'])}; target at most 100 ms: "
        f"{met(stop <= 100)} (Jupyter AI 3.2's Codex: 0.14 s). The answer's last change after "
        f"the click: {_stats(results['stop_text'])} (0: none after the click). The turn's own "
        f"end (`TurnFinished`, after its session is saved through JupyterLab): "
        f"{_stats(results['stop_end'])}",
        f"- the Jupyter server's start until its API answers: with our extension "
        f"{_stats(starts_with)}, without it {_stats(starts_without)}. The extension has no "
        "server part (no `jupyter_server_extension_points`, nothing in "
        "`jupyter_server_config.d`): the server imports nothing of ours, so any difference is "
        "noise (Jupyter AI's Jupyternaut: 11-13 s added).",
        f"- Python {platform.python_version()}",
        "",
        "How each is timed: see the docstring of `bench_sidebar.py`. The delta latency "
        "includes the comm message's trip through the Jupyter server's websocket, parsing and "
        "checking it, the transcript, and the markdown render (at most once an animation frame).",
        "",
        "What the opening time leaves out: the sidebar draws the active notebook's session when "
        "the notebook becomes active (from its metadata, no kernel), also while the sidebar is "
        "closed, so the command only shows it; the switch line above is that drawing, for the "
        "same 200 turns, with the sidebar open (the worst case a user waits for). The session's "
        "markdown renders finish after the rows are in place (they are asynchronous); the "
        "input is usable before.",
        "",
    ]
    RESULTS.write_text("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
