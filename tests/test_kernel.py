"""``%%agent`` in real kernels (jupyter_client, nbclient) against the scripted server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import nbformat
from kernelhelpers import KEY, Kernel
from nbhelpers import call, make_notebook

from jupyter_codexmax.session.store import OUTPUT_MIME, validate_record
from jupyter_codexmax.testing import ScriptedModelServer

RESUMED = "This session is being resumed in a new process"


def agent_notebook(folder: Path, name: str = "work.ipynb") -> Path:
    return make_notebook(
        folder / name,
        [
            ("load", "code", "%load_ext jupyter_codexmax"),
            ("calc", "code", "x = 21\nprint(x * 3)"),
            ("ask", "code", "%%agent --approval auto\nDouble x and show it"),
        ],
    )


NEW_CALC = "x = 42\nprint(x * 3)"
EDIT_AND_RUN = [
    {"calls": [call("read_notebook", {})]},
    {
        "calls": [
            call(
                "edit_notebook",
                {
                    "edits": [
                        {"action": "replace", "cell_id": "calc", "source": "x = 42\nprint(x * 3)"}
                    ]
                },
            )
        ]
    },
    {"calls": [call("run_cells", {"cell_ids": ["calc"]})]},
    {"text": "Done: **x is 42** now, and the cell prints 126."},
]


def test_agent_magic_in_a_kernel(tmp_path: Path, scripted_server: ScriptedModelServer) -> None:
    """Load, a turn that edits and runs code, status, proposals, apply, undo, and mistakes
    as one-line usage errors; the notebook file is never written."""
    path = agent_notebook(tmp_path)
    before = path.read_bytes(), path.stat().st_mtime_ns
    scripted_server.load(EDIT_AND_RUN)
    with Kernel(tmp_path, scripted_server, data_dir=tmp_path / "data") as kernel:
        loaded = kernel.run("%load_ext jupyter_codexmax")
        assert loaded.ok and loaded.messages == [], "nothing shown, no bridge offered"
        again = kernel.run("%load_ext jupyter_codexmax", stdin=True)
        assert "already loaded" in again.stdout
        assert kernel.run("x = 21").ok

        turn = kernel.run("%%agent --approval auto\nDouble x and show it")
        assert turn.ok, turn.stderr
        assert scripted_server.failures == []
        # The activity as lines (nobody can answer input here: nbclient-like), then the
        # answer and a summary as markdown, with the session record.
        assert "task: Double x and show it" in turn.stdout
        assert "ok read_notebook" in turn.stdout
        assert "proposed a change to cell calc: replace (+1 -1)" in turn.stdout
        assert "cell calc ok" in turn.stdout
        markdown = turn.markdown()
        assert "Done: **x is 42** now, and the cell prints 126." in markdown
        assert "turn 1 · done in 4 steps" in markdown
        assert "**Proposed changes** (1, not applied)" in markdown and "x = 42" in markdown
        (record,) = turn.records()
        validate_record(record)
        assert record["turns"] == 1
        # The run happened in this kernel, its output went to the model, not the cell.
        assert kernel.run("print(x)").stdout == "42\n"
        assert "126" not in turn.stdout
        sent = json.dumps(scripted_server.requests_to("responses")[3].body["input"])
        assert "126" in sent

        # A turn reads and edits notebooks without nbformat's schema machinery (lark and
        # rfc3987_syntax alone took seconds to import).
        loaded = kernel.run(
            "import sys; print(sorted(m for m in ('lark', 'rfc3987_syntax', 'jsonschema', "
            "'nbformat') if m in sys.modules))"
        )
        assert loaded.stdout == "[]\n"

        status = kernel.run("%agent status").stdout
        assert "turn 1 · idle" in status and str(path) in status
        assert "gpt-5.1-codex-max" in status
        # The scripted server never passes for the real model: named, its endpoint shown,
        # and no dollar cost (it has no price).
        assert "answered by the scripted model server" in status
        assert f"at {scripted_server.base_url}" in status
        assert "$" not in status and "cost unknown" in status
        assert "$" not in markdown and "scripted · context" in markdown
        usage = scripted_server.requests_to("responses")
        assert f"usage: {sum((r.raw_size + 3) // 4 for r in usage):,} in" in status
        assert "proposed changes not applied: 1" in status

        listed = kernel.run("%agent proposals").stdout
        assert "1. change cell 2 (calc: x = 21)" in listed and "+x = 42" in listed
        applied = kernel.run("%agent apply 1")
        payloads = applied.reply.get("payload") or []
        assert [p["text"] for p in payloads if p.get("source") == "set_next_input"] == [
            "x = 42\nprint(x * 3)"
        ]

        undone = kernel.run("%agent undo")
        assert undone.ok and "restored as before it" in undone.markdown()
        assert "proposed changes" not in kernel.run("%agent status").stdout

        # --help shows the options and runs no turn, with no error after them
        shown = kernel.run("%%agent --help\nFix it")
        assert shown.ok and "--effort" in shown.stdout
        assert shown.stderr == "" and "Traceback" not in shown.everything()

        for bad, needle in [
            ("%%agent --effort huge\nhello", "invalid choice: 'huge'"),
            ("%agent bogus", "unknown command"),
            ("%agent apply seven", "the number of a proposal"),
            ("%%agent\n   ", "needs a task"),
            ("%agent status now", "takes no arguments"),
        ]:
            wrong = kernel.run(bad)
            assert not wrong.ok
            assert wrong.stderr.startswith("UsageError: ") and needle in wrong.stderr, bad
            assert wrong.stderr.count("\n") == 1 and "Traceback" not in wrong.everything()

        help_text = kernel.run("%agent help").stdout
        assert "%%agent [--effort E]" in help_text and "%agent undo" in help_text
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before, "the kernel never wrote it"
    assert KEY not in turn.everything()


def test_widgets_and_approvals_in_the_input_prompt(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """With someone watching (input allowed): the widget panel while the turn runs, the
    approvals asked in the input prompt, the static summary when it ends."""
    agent_notebook(tmp_path)
    scripted_server.load(
        [
            {"calls": [call("run_cells", {"cell_ids": ["calc"]})]},
            {"calls": [call("run_cells", {"cell_ids": ["calc"]})]},
            {"text": "ran it once; the second time you said no"},
        ]
    )
    with Kernel(tmp_path, scripted_server, data_dir=tmp_path / "data") as kernel:
        kernel.run("%load_ext jupyter_codexmax")
        turn = kernel.run(
            "%%agent --notebook work.ipynb\nRun the calc cell twice", stdin=True, answers=("y", "n")
        )
    assert turn.ok, turn.stderr
    assert turn.prompts == ["Allow run_cells calc? [y]es / [n]o / [a]lways this session: "] * 2
    # What is to be run is shown once: in the panel, not printed again above the prompt.
    shown = [json.dumps(c) for t, c in turn.messages if t in ("comm_open", "comm_msg")]
    assert any("# cell calc\\nx = 21\\nprint(x * 3)" in s for s in shown)
    assert "# cell calc" not in turn.stdout
    # The prompts and their answers go when the summary comes: the cell keeps the summary.
    kinds = [t for t, _ in turn.messages]
    assert kinds.count("clear_output") == 1
    last_display = max(i for i, k in enumerate(kinds) if k == "display_data")
    assert kinds.index("clear_output") == last_display - 1
    first = next(c for t, c in turn.messages if t == "display_data")
    assert "application/vnd.jupyter.widget-view+json" in first["data"]
    (final,) = turn.displays()
    assert "application/vnd.jupyter.widget-view+json" not in final, "no dead widget is saved"
    assert "ran it once; the second time you said no" in final["text/markdown"]
    assert OUTPUT_MIME in final
    outputs = [r.body["input"][-1] for r in scripted_server.requests_to("responses")[1:]]
    assert "63" in json.dumps(outputs[0])
    assert "needs approval, and the user denied it" in json.dumps(outputs[1])


def test_a_restarted_kernel_carries_on(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """In one client: a turn, a kernel restart (the notebook never saved), and the next
    %%agent continues the session from this machine's journal. The kernel knows its
    notebook as JupyterLab tells it (JPY_SESSION_NAME)."""
    path = agent_notebook(tmp_path)
    scripted_server.load([{"text": "Noted: the launch code is PELICAN-42."}])
    with Kernel(
        tmp_path,
        scripted_server,
        data_dir=tmp_path / "data",
        env={"JPY_SESSION_NAME": str(path)},
    ) as kernel:
        kernel.run("%load_ext jupyter_codexmax")
        first = kernel.run("%%agent\nRemember that the launch code is PELICAN-42.")
        assert first.ok, first.stderr
        kernel.restart()
        scripted_server.load([{"expect": {"contains": "PELICAN-42"}, "text": "It is PELICAN-42."}])
        kernel.run("%load_ext jupyter_codexmax")
        status = kernel.run("%agent status").stdout
        assert "turn 1 · idle" in status, "the stored session, before any turn"
        # The model that answered is kept with the session: the restarted kernel still
        # knows it was the scripted server (no price for it) before any new answer.
        assert "answered by the scripted model server" in status
        assert "cost unknown" in status and "$" not in status
        second = kernel.run("%%agent\nWhat is the launch code?")
    assert second.ok, second.stderr
    assert scripted_server.failures == []
    assert "continuing session" in second.stdout
    (request,) = scripted_server.requests_to("responses")
    text = json.dumps(request.body["input"])
    assert "Remember that the launch code is PELICAN-42." in text and RESUMED in text
    assert first.records()[0]["session_id"] == second.records()[0]["session_id"]
    assert second.records()[0]["turns"] == 2
    assert first.records()[0]["served_model"].startswith("scripted")


def test_interrupting_the_kernel_stops_the_agent(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    make_notebook(
        tmp_path / "slow.ipynb",
        [
            ("load", "code", "%load_ext jupyter_codexmax"),
            ("slow", "code", "import time\ntime.sleep(60)"),
        ],
    )
    scripted_server.load(
        [{"calls": [call("run_cells", {"cell_ids": ["slow"]})]}, {"text": "never sent"}]
    )
    with Kernel(tmp_path, scripted_server, data_dir=tmp_path / "data") as kernel:
        kernel.run("%load_ext jupyter_codexmax")
        started = time.monotonic()
        msg_id = kernel.execute("%%agent --approval auto --notebook slow.ipynb\nRun the slow cell")
        deadline = time.monotonic() + 30
        while len(scripted_server.requests_to("responses")) < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.0)  # the cell is sleeping now
        kernel.interrupt()
        reply = kernel.kc.get_shell_msg(timeout=60)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert time.monotonic() - started < 30, "stopped long before the cell would end"
        after = kernel.run("print('still here')")
        assert after.stdout == "still here\n"
        status = kernel.run("%agent status").stdout
        assert "idle" in status
    assert len(scripted_server.requests_to("responses")) == 1, "no request after the stop"


# -- nbclient: a notebook of %%agent cells, run top to bottom --------------------------------


def displayed(cell: Any) -> dict[str, Any]:
    """The data of the cell's (one) display output."""
    (data,) = [o["data"] for o in cell.outputs if o.get("output_type") == "display_data"]
    return dict(data)


def _execute(nb: Any, cwd: Path, scripted: ScriptedModelServer, data_dir: Path) -> Any:
    """Run ``nb`` with nbclient as papermill does (no input), in its own kernel."""
    import os

    from jupyter_codexmax.testing.notebooks import run_notebook

    env = {
        **os.environ,
        "OPENAI_BASE_URL": scripted.base_url,
        "OPENAI_API_KEY": KEY,
        "CODEXMAX_TOKENIZER": "estimate",
        "JUPYTER_DATA_DIR": str(data_dir),
    }
    return run_notebook(nb, cwd, env, timeout=120)


def test_a_notebook_of_agent_cells_under_nbclient(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """Run top to bottom by nbclient, then saved: the saved file carries the session (in the
    last %%agent output only). Then a new kernel, on another machine's data folder, runs one
    new %%agent cell of the saved notebook: its first request carries the first run's
    fact."""
    path = make_notebook(
        tmp_path / "refactor.ipynb",
        [
            ("load", "code", "%load_ext jupyter_codexmax"),
            ("one", "code", "%%agent\nRemember that the launch code is PELICAN-42."),
            ("data", "code", "values = [3, 1, 2]"),
            ("two", "code", "%%agent --approval auto\nSort values in place and run it."),
        ],
    )
    scripted_server.load(
        [
            {"text": "Noted: the launch code is PELICAN-42."},
            {"calls": [call("edit_notebook", {"edits": [
                {"action": "replace", "cell_id": "data", "source": "values = sorted([3, 1, 2])"}
            ]})]},
            {"calls": [call("run_cells", {"cell_ids": ["data"]})]},
            {"text": "Sorted."},
        ]
    )  # fmt: skip
    nb = nbformat.read(path, as_version=4)
    before = path.read_bytes()
    _execute(nb, tmp_path, scripted_server, tmp_path / "machine-a")
    assert path.read_bytes() == before, "the kernel did not write the notebook"
    assert scripted_server.failures == []
    nbformat.validate(nb)
    nbformat.write(nb, path)  # the owner (here: the test, as papermill would) saves it

    saved = nbformat.read(path, as_version=4)
    by_id = {c.id: c for c in saved.cells}
    records = {
        cid: [o for o in by_id[cid].outputs if OUTPUT_MIME in o.get("data", {})]
        for cid in ("one", "two")
    }
    assert records["one"] == [], "the older output gave its record up to the newer one"
    assert len(records["two"]) == 1 and records["two"][0]["data"][OUTPUT_MIME]["turns"] == 2
    text_one = "".join(o.get("text", "") for o in by_id["one"].outputs)
    assert "task: Remember that the launch code" in text_one
    summary = displayed(by_id["two"])["text/markdown"]
    assert "Sorted." in summary and "values = sorted([3, 1, 2])" in summary
    assert KEY not in path.read_text()

    # A new kernel, another machine (no journal): one new %%agent cell of the saved file.
    saved.cells.append(nbformat.v4.new_code_cell("%%agent\nWhat is the launch code?"))
    saved.cells[-1].id = "three"
    nbformat.write(saved, path)
    scripted_server.load([{"expect": {"contains": "PELICAN-42"}, "text": "It is PELICAN-42."}])
    subset = nbformat.read(path, as_version=4)
    subset.cells = [subset.cells[0], subset.cells[-1]]
    _execute(subset, tmp_path, scripted_server, tmp_path / "machine-b")
    assert scripted_server.failures == []
    (request,) = scripted_server.requests_to("responses")
    text = json.dumps(request.body["input"])
    assert "Remember that the launch code is PELICAN-42." in text and RESUMED in text
    answer = displayed(subset.cells[-1])
    assert answer[OUTPUT_MIME]["turns"] == 3
    assert "It is PELICAN-42." in answer["text/markdown"]


# -- configuration ------------------------------------------------------------------------------


def test_settings_from_ipython_config_and_percent_config(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """Auto-loaded from the kernel's config, with ``c.CodexMax.model`` there; ``%config``
    changes it; the key is never shown."""
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        'c.InteractiveShellApp.extensions = ["jupyter_codexmax"]\n'
        'c.CodexMax.model = "gpt-5.1-codex"\n'
        'c.CodexMax.reasoning_effort = "high"\n'
    )
    agent_notebook(tmp_path)
    with Kernel(
        tmp_path,
        scripted_server,
        data_dir=tmp_path / "data",
        env={"IPYTHONDIR": str(tmp_path / "ipython")},
    ) as kernel:
        kernel.run("%agent new")
        status = kernel.run("%agent status").stdout
        assert "model: gpt-5.1-codex (responses at " in status and "effort high" in status
        assert kernel.run('%config CodexMax.model = "gpt-5.1-codex-max"').ok
        assert kernel.run("%config CodexMax.reasoning_effort = 'xhigh'").ok
        kernel.run("%agent new")
        status = kernel.run("%agent status").stdout
        assert "model: gpt-5.1-codex-max (responses at " in status and "effort xhigh" in status
        shown = kernel.run("%config CodexMax")
        assert "CodexMax.reasoning_effort" in shown.stdout
        bad = kernel.run("%config CodexMax.reasoning_effort = 'extreme'")
        assert "extreme" in bad.everything()
        assert kernel.run("%config AgentMagics.panel = 'text'").ok
        assert KEY not in shown.everything() + status


def test_lazy_loading_on_the_first_agent_cell(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        'c.MagicsManager.lazy_magics = {"agent": "jupyter_codexmax"}\n'
    )
    path = agent_notebook(tmp_path)
    scripted_server.load([{"text": "hello from a lazily loaded agent"}])
    with Kernel(
        tmp_path,
        scripted_server,
        data_dir=tmp_path / "data",
        env={"IPYTHONDIR": str(tmp_path / "ipython"), "JPY_SESSION_NAME": str(path)},
    ) as kernel:
        loaded = kernel.run("import sys; print('jupyter_codexmax' in sys.modules)")
        assert loaded.stdout == "False\n"
        turn = kernel.run("%%agent\nSay hello")
    assert turn.ok, turn.stderr
    assert "hello from a lazily loaded agent" in turn.markdown()


def test_runs_in_the_kernel_capture_errors_displays_and_time_limits(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(
        tmp_path / "runs.ipynb",
        [
            ("boom", "code", "def f():\n    raise ValueError('bad value 7')\nf()"),
            ("show", "code", "from IPython.display import HTML, display\n"
                             "display(HTML('<b>bold</b>'))\nprint('printed')\n41 + 1"),
            ("slow", "code", "import time\ntime.sleep(30)"),
            ("agent", "code", "%agent status"),
        ],
    )  # fmt: skip
    scripted_server.load(
        [
            {"calls": [call("run_cells", {"cell_ids": ["boom"]})]},
            {"calls": [call("run_cells", {"cell_ids": ["show"]})]},
            {"calls": [call("run_cells", {"cell_ids": ["slow"]})]},
            {"calls": [call("run_cells", {"cell_ids": ["agent"]})]},
            {"calls": [call("restart_kernel", {})]},
            {"text": "checked"},
        ]
    )
    with Kernel(
        tmp_path,
        scripted_server,
        data_dir=tmp_path / "data",
        env={"JPY_SESSION_NAME": str(path)},
    ) as kernel:
        kernel.run("%load_ext jupyter_codexmax")
        kernel.run("%config CodexMax.cell_timeout = 2")
        started = time.monotonic()
        turn = kernel.run("%%agent --approval auto\nRun them")
        took = time.monotonic() - started
        after = kernel.run("print(f'{g}' if (g := globals().get('f')) else 'no f')")
    assert turn.ok, turn.stderr
    assert scripted_server.failures == []
    assert took < 25, "the sleeping cell was interrupted at its time limit"
    outputs = [
        json.dumps(r.body["input"][-1]) for r in scripted_server.requests_to("responses")[1:]
    ]
    assert "ValueError: bad value 7" in outputs[0] and "raise ValueError" in outputs[0]
    assert "printed" in outputs[1] and "42" in outputs[1] and "bold" in outputs[1]
    assert "timeout" in outputs[2] and "interrupted after 2 s" in outputs[2]
    assert "is a %%agent cell" in outputs[3], "the agent does not run its own magic"
    assert "cannot restart it; ask the user" in outputs[4]
    assert "ValueError" not in turn.stderr, "errors went to the model, not the cell"
    assert "<function f" in after.stdout, "what the runs defined stays defined"


def test_the_magics_example_runs_as_its_script_says(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """examples/magics_demo.py's notebook: what the scripted answers claim is what the real
    kernel computed (the runs' outputs reached the model)."""
    import shutil
    import sys

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "examples"))
    try:
        import magics_demo
    finally:
        sys.path.pop(0)
    work = tmp_path / "magics"
    shutil.copytree(root / "examples" / "magics", work)
    scripted_server.load(str(root / "examples" / "scripts" / "magics.json"))
    nb = magics_demo.run(work, scripted_server.base_url)
    assert scripted_server.failures == []
    assert scripted_server.remaining_steps == 0
    sent = json.dumps([r.body["input"][-1] for r in scripted_server.requests_to("responses")])
    assert "mean: 11.2 \\u00b0C" in sent
    for line in ("Lisbon: 14.0", "Nairobi: 24.7", "Oslo: -5.2"):
        assert line in sent, line
    by_id = {c.id: c for c in nb.cells}
    assert by_id["mean"].outputs[0]["ename"] == "TypeError", "the user's cell failed first"
    assert "mean: 11.2 °C" in displayed(by_id["ask"])["text/markdown"]
    assert OUTPUT_MIME in displayed(by_id["by-city"])
    assert "proposed changes not applied: 2" in by_id["status"].outputs[0]["text"]


def test_no_api_key_in_outputs_or_the_saved_notebook(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """The kernel has the key (the agent needs it): a task that pastes it, a cell that prints
    it, an approval prompt and an answer that repeat it, status and history: none of it
    shows the key, in the cell outputs or in the notebook as nbclient saves it."""
    path = make_notebook(
        tmp_path / "secret.ipynb",
        [
            ("load", "code", "%load_ext jupyter_codexmax"),
            ("leak", "code", "import os\nprint(os.environ['OPENAI_API_KEY'])"),
            ("ask", "code", f"%%agent\nRun the leak cell; my key is {KEY}"),
            ("status", "code", "%agent status"),
            ("history", "code", "%agent history"),
        ],
    )
    scripted_server.load(
        [
            {"calls": [call("run_cells", {"cell_ids": ["leak"]})]},
            {"calls": [call("shell", {"command": f"echo {KEY}"})]},
            {"text": f"The cell printed {KEY}, and so will I: {KEY}"},
        ]
    )
    with Kernel(
        tmp_path, scripted_server, data_dir=tmp_path / "data", env={"JPY_SESSION_NAME": str(path)}
    ) as kernel:
        kernel.run("%load_ext jupyter_codexmax")
        turn = kernel.run(
            f"%%agent\nRun the leak cell; my key is {KEY}", stdin=True, answers=("y", "y")
        )
        status = kernel.run("%agent status")
        history = kernel.run("%agent history")
    assert turn.ok, turn.stderr
    shown = turn.everything() + status.everything() + history.everything() + "".join(turn.prompts)
    assert KEY not in shown
    assert "********" in turn.markdown()
    ours = [  # what we send (the scripted model's own items go back verbatim)
        [i for i in r.body["input"] if i.get("role") in ("user", "developer")
         or i.get("type") == "function_call_output"]
        for r in scripted_server.requests
    ]  # fmt: skip
    assert KEY not in json.dumps(ours)
    assert "a credential in the message was masked" in turn.stdout + turn.markdown()

    nb = nbformat.read(path, as_version=4)
    nb.cells = nb.cells[:1] + nb.cells[2:3]  # load, then the %%agent cell (no input: refused)
    scripted_server.load([{"text": f"Here it is: {KEY}"}])
    _execute(nb, tmp_path, scripted_server, tmp_path / "data")
    nbformat.write(nb, path)
    saved = nbformat.read(path, as_version=4)  # the user's own cell source holds their key
    assert KEY not in json.dumps([c.get("outputs", []) for c in saved.cells] + [saved.metadata])


def test_terminal_ipython_shows_text(tmp_path: Path, scripted_server: ScriptedModelServer) -> None:
    """No kernel, no widgets: the events as lines, then the summary as text."""
    import os
    import subprocess
    import sys

    script = tmp_path / "session.ipy"
    script.write_text(
        "%load_ext jupyter_codexmax\n"
        "get_ipython().run_cell_magic('agent', '--approval auto', 'Compute 6 * 7 here')\n"
        "print('answer is', answer)\n"
    )
    scripted_server.load(
        [
            {"calls": [call("edit_notebook", {"edits": [
                {"action": "insert", "source": "answer = 6 * 7"}]})]},
            {"calls": [call("run_cells", {"all": True})]},
            {"text": "It is **42**."},
        ]
    )  # fmt: skip
    env = {
        **os.environ,
        "OPENAI_BASE_URL": scripted_server.base_url,
        "OPENAI_API_KEY": KEY,
        "CODEXMAX_TOKENIZER": "estimate",
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ipython"), "--quick", "--no-banner", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "task: Compute 6 * 7 here" in out
    assert "no notebook found (use --notebook PATH): the agent works on a scratch notebook" in out
    assert "ok run_cells all" in out
    assert "jupyter-codexmax · turn 1 · done in 3 steps" in out and "It is **42**." in out
    assert "answer is 42" in out, "the code ran in this IPython"
    assert "widget" not in out.lower() and KEY not in out + done.stderr


# -- found by review ------------------------------------------------------------------------------


def test_undo_after_the_user_saved_does_not_revert_their_work(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """The user adds a cell and saves after a turn: the working copy is read again (the
    model is told its unapplied proposals went), and undo has nothing left to revert."""
    path = agent_notebook(tmp_path)
    scripted_server.load([*EDIT_AND_RUN, {"text": "ok"}])
    with Kernel(
        tmp_path, scripted_server, data_dir=tmp_path / "data", env={"JPY_SESSION_NAME": str(path)}
    ) as kernel:
        kernel.run("%load_ext jupyter_codexmax")
        kernel.run("x = 21")
        assert kernel.run("%%agent --approval auto\nDouble x and show it").ok
        nb = nbformat.read(path, as_version=4)
        cell = nbformat.v4.new_code_cell("mine = 'the user wrote this'")
        cell.id = "mine"
        nb.cells.insert(2, cell)
        nbformat.write(nb, path)  # the user saves
        undo = kernel.run("%agent undo")
        proposals = kernel.run("%agent proposals").stdout
        kernel.run("%%agent\nAnything?")
    assert "nothing to undo" in undo.markdown()
    assert proposals.strip() == "no proposed changes"
    last = json.dumps(scripted_server.requests_to("responses")[-1].body["input"])
    assert "your 1 proposed change(s) that the user did not apply are no longer" in last


def test_a_read_only_turn_is_kept_across_a_restart(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """Read-only means the notebook is not written; the kernel writes no notebook anyway:
    the turn's session goes into its output and this machine's index like any other."""
    path = agent_notebook(tmp_path)
    before = path.read_bytes()
    scripted_server.load([{"text": "first"}, {"text": "Noted: PELICAN-42."}])
    with Kernel(
        tmp_path, scripted_server, data_dir=tmp_path / "data", env={"JPY_SESSION_NAME": str(path)}
    ) as kernel:
        kernel.run("%load_ext jupyter_codexmax")
        kernel.run("%%agent\nSay first")
        two = kernel.run(
            "%%agent --approval read-only\nRemember that the launch code is PELICAN-42."
        )
        assert [r["turns"] for r in two.records()] == [2]
        kernel.restart()
        scripted_server.load([{"expect": {"contains": "PELICAN-42"}, "text": "PELICAN-42."}])
        kernel.run("%load_ext jupyter_codexmax")
        three = kernel.run("%%agent\nWhat is the launch code?")
    assert three.ok and scripted_server.failures == []
    assert path.read_bytes() == before, "the file is still not written"


def test_two_interrupts_at_an_approval_prompt_end_the_cell(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = agent_notebook(tmp_path)
    scripted_server.load([{"calls": [call("run_cells", {"cell_ids": ["calc"]})]}, {"text": "no"}])
    with Kernel(
        tmp_path, scripted_server, data_dir=tmp_path / "data", env={"JPY_SESSION_NAME": str(path)}
    ) as kernel:
        kernel.run("%load_ext jupyter_codexmax")
        msg_id = kernel.execute("%%agent\nRun calc", stdin=True)
        kernel.kc.get_stdin_msg(timeout=30)  # the approval prompt is up
        kernel.interrupt()
        time.sleep(0.01)
        kernel.interrupt()
        second = time.monotonic()
        while True:
            reply = kernel.kc.get_shell_msg(timeout=60)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        took = time.monotonic() - second
        status = kernel.run("%agent status").stdout
    assert took < 5, f"the cell kept waiting {took:.1f} s after the interrupts"
    assert "idle" in status.splitlines()[0]
    assert len(scripted_server.requests_to("responses")) == 1, "stopped: nothing more asked"


def test_the_panel_tells_wall_time(tmp_path: Path, scripted_server: ScriptedModelServer) -> None:
    """Through a slow answer (no event for seconds): the panel's clock keeps moving, and the
    summary says how long the turn took, from the cell's start."""
    import re

    agent_notebook(tmp_path)
    scripted_server.load([{"fault": "stall", "after": 2, "seconds": 3.5, "text": "slow answer"}])
    with Kernel(tmp_path, scripted_server, data_dir=tmp_path / "data") as kernel:
        kernel.run("%load_ext jupyter_codexmax")
        started = time.monotonic()
        turn = kernel.run("%%agent --notebook work.ipynb\nTake your time", stdin=True)
        took = time.monotonic() - started
    assert turn.ok, turn.stderr
    clocks = set()
    for kind, content in turn.messages:
        value = ((content.get("data") or {}).get("state") or {}).get("value", "")
        if kind == "comm_msg" and isinstance(value, str) and "jupyter-codexmax" in value:
            clocks.update(re.findall(r" · (\d+)s$", value))
    # Events come at 0 s and after the stall: the clock moved by itself in between.
    assert len(clocks) >= 4, f"the header's clock moved through {sorted(clocks)}"
    (final,) = turn.displays()
    (shown,) = re.findall(r"turn 1 · done in 1 step · (\d+\.\d)s", final["text/markdown"])
    assert took - 1.0 <= float(shown) <= took, (shown, took)
