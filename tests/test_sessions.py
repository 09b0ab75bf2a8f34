"""Long sessions: compaction, the ledger, sessions stored in the notebook, resume."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from nbhelpers import call, make_notebook, without_session

from jupyter_codexmax import events as ev
from jupyter_codexmax.agent.compaction import LEDGER_MARK
from jupyter_codexmax.agent.core import Agent
from jupyter_codexmax.config import CodexMax
from jupyter_codexmax.notebook.file import FileNotebook
from jupyter_codexmax.session.store import METADATA_KEY, read_record, validate_record
from jupyter_codexmax.testing import ScriptedModelServer, decode_scripted
from jupyter_codexmax.workspace import Workspace

pytestmark = pytest.mark.anyio
BIN = Path(sys.executable).parent


def vm_rss(pid: int) -> float | None:
    """A process's resident memory in MiB (None once it is exiting)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    return next((int(ln.split()[1]) / 1024 for ln in lines if ln.startswith("VmRSS:")), None)


def big_file(folder: Path, name: str = "big.txt", lines: int = 4_000) -> None:
    (folder / name).write_text(
        "".join(f"{n:05d} the quick brown fox jumps over the lazy dog\n" for n in range(lines))
    )


def agent_for(settings: CodexMax, path: Path, events: list[ev.Event], **kwargs: Any) -> Agent:
    doc = FileNotebook.open(path)
    return Agent(
        settings,
        workspace=Workspace(path.parent.resolve()),
        notebook=doc,
        approval="auto",
        on_event=events.append,
        **kwargs,
    )


def test_a_long_session_stays_inside_the_window(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """More than 300 steps and 2,000,000 tokens of reported usage on a 272k window, run by
    ``jupyter codexmax run`` in its own process: every request fits; compactions happen at the
    threshold; after each, every request carries the ledger and the compaction item; the
    metadata stays under its cap; the process's memory stays flat."""
    big_file(tmp_path)
    path = make_notebook(tmp_path / "long.ipynb", [("a", "code", "x = 1")])
    steps = 320
    plan = "Read the whole file many times"
    scripted_server.load(
        {
            "steps": [
                {
                    "calls": [
                        call("update_plan", {"plan": [{"step": plan, "status": "in_progress"}]})
                    ]
                },
                {"calls": [call("read_file", {"path": "big.txt"})], "repeat": steps},
                {"calls": [call("update_plan", {"plan": [{"step": plan, "status": "completed"}]})]},
                {"text": "Read it all."},
            ]
        }
    )
    report = tmp_path / "report.json"
    log = tmp_path / "log.txt"
    samples: list[tuple[int, float]] = []  # (requests answered so far, RSS in MiB)
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [str(BIN / "jupyter-codexmax"), "run", str(path), "--task",
             "Read big.txt again and again; it never changes.", "--full-auto",
             f"--max-steps={steps + 10}", "--report", str(report)],
            env={**os.environ, "OPENAI_BASE_URL": scripted_server.base_url,
                 "OPENAI_API_KEY": "sk-long-session-0123456789"},
            stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
        try:
            while process.poll() is None:
                rss = vm_rss(process.pid)
                if rss is not None:
                    samples.append((len(scripted_server.requests), rss))
                time.sleep(0.05)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=60)
    err = log.read_text()
    assert process.returncode == 0, err[-3000:]
    assert scripted_server.failures == []

    window, limit = 272_000, int(272_000 * 0.9)
    responses = scripted_server.requests_to("responses")
    compacts = scripted_server.requests_to("compact")
    data = json.loads(report.read_text())
    entry = data["notebooks"][0]
    assert entry["steps"] >= 300
    reported = entry["usage"]["input_tokens"] + entry["usage"]["output_tokens"]
    assert reported >= 2_000_000, reported
    sizes = [(r.raw_size + 3) // 4 for r in responses]
    assert max(sizes) <= window, "no request over the window"
    # Compactions at the threshold, each bringing the context well under it.
    lines = re.findall(r"compacted the context \((\w+)\): ([\d,]+) -> ([\d,]+) tokens", err)
    assert len(lines) == len(compacts) == entry["session"]["compactions"] >= 5
    for method, before, after in lines:
        assert method == "remote"
        assert limit < int(before.replace(",", "")) < window
        assert int(after.replace(",", "")) < limit / 2
    # Every request after the first compaction carries the ledger and the compaction item.
    after_first = [r for r in responses if r.number > compacts[0].number]
    assert len(after_first) > 250
    for request in after_first:
        assert LEDGER_MARK in json.dumps(request.body["input"])
        items = [i for i in request.body["input"] if i.get("type") == "compaction"]
        assert len(items) == 1
        assert decode_scripted(items[0]["encrypted_content"])["summary"].startswith(
            "Scripted compaction of"
        )
    record = read_record(FileNotebook.open(path).metadata)
    assert record is not None and record.size() <= CodexMax().session_cap
    assert record.compactions == len(compacts)
    assert "Read big.txt again" in record.ledger["task"]
    # Memory: flat from the first compaction on (what the process holds does not grow with
    # the session), measured from outside the process.
    steady = [rss for answered, rss in samples if answered > compacts[0].number]
    half = len(steady) // 2
    assert half > 5, samples
    first, second = max(steady[:half]), max(steady[half:])
    assert second - first < 25, f"memory grew: {first:.0f} -> {second:.0f} MiB"
    assert max(rss for _, rss in samples) - 1 <= data["peak_memory_mb"] < 400, "reported peak"
    print(
        f"\nlong session: {entry['steps']} steps, {reported:,} tokens reported, "
        f"{len(compacts)} compactions, largest request {max(sizes):,} tokens; RSS "
        f"{first:.0f} MiB (first half) -> {second:.0f} MiB (second half); "
        f"peak {data['peak_memory_mb']} MiB; {entry['wall_time']} s"
    )


async def test_remote_compaction_request_and_local_fallback(
    tmp_path: Path,
    scripted_settings: CodexMax,
    scripted_server: ScriptedModelServer,
    spec_validator: Any,
) -> None:
    big_file(tmp_path)
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_settings.models = {"gpt-5.1-codex-max": {"context_window": 40_000}}
    scripted_server.load(
        {
            "steps": [
                {"calls": [call("read_file", {"path": "big.txt"})], "repeat": 6},
                {
                    "expect": {"contains": "hand-off summary"},
                    "text": "SUMMARY: read big.txt six times; nothing changes.",
                },
                {"calls": [call("read_file", {"path": "big.txt"})], "repeat": 2},
                {"text": "done"},
            ],
            "compactions": [{"fault": "http", "status": 500, "repeat": 1}],
        }
    )
    scripted_settings.max_retries = 0
    events: list[ev.Event] = []
    agent = agent_for(scripted_settings, path, events)
    try:
        result = await agent.run_turn("Read big.txt a few times.")
    finally:
        await agent.aclose()
    assert scripted_server.failures == []
    assert result.status == "done", result.error
    compact = scripted_server.requests_to("compact")[0]
    assert spec_validator("CompactResponseMethodPublicBody", compact.body) == []
    assert "Read big.txt a few times." in json.dumps(compact.body["input"])
    (finished,) = [e for e in events if isinstance(e, ev.CompactionFinished)]
    assert finished.method == "local"
    later = scripted_server.requests_to("responses")[-1].body
    text = json.dumps(later["input"])
    assert "SUMMARY: read big.txt six times" in text and LEDGER_MARK in text
    assert spec_validator("CreateResponse", later) == []


async def test_the_compaction_item_is_sent_back_verbatim(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load(
        {
            "steps": [{"text": "one"}, {"text": "two"}],
            "compactions": [{"summary": "the user likes tidy cells"}],
        }
    )
    events: list[ev.Event] = []
    agent = agent_for(scripted_settings, path, events)
    try:
        await agent.run_turn("first")
        assert "compacted" in await agent.compact()
        await agent.run_turn("second")
    finally:
        await agent.aclose()
    returned = [i for i in agent.history if i.get("type") == "compaction"]
    sent = [
        i
        for i in scripted_server.requests_to("responses")[-1].body["input"]
        if i.get("type") == "compaction"
    ]
    assert sent == returned and len(sent) == 1
    assert decode_scripted(sent[0]["encrypted_content"])["summary"] == "the user likes tidy cells"


async def test_context_length_exceeded_mid_task_compacts_and_retries(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load(
        {
            "steps": [
                {"calls": [call("read_notebook", {})]},
                {
                    "fault": "stream_error",
                    "shape": "failed",
                    "code": "context_length_exceeded",
                    "message": "Your input exceeds the context window of this model.",
                },
                {"expect": {"contains": LEDGER_MARK}, "calls": [call("read_notebook", {})]},
                {"text": "finished after the compaction"},
            ]
        }
    )
    events: list[ev.Event] = []
    agent = agent_for(scripted_settings, path, events)
    try:
        result = await agent.run_turn("go")
    finally:
        await agent.aclose()
    assert scripted_server.failures == []
    assert (result.status, result.final_text) == ("done", "finished after the compaction")
    started = [e for e in events if isinstance(e, ev.CompactionStarted)]
    assert [e.reason for e in started] == ["overflow"]
    assert len(scripted_server.requests_to("compact")) == 1


async def test_compaction_that_cannot_get_under_the_threshold_stops_clearly(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    big_file(tmp_path)
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_settings.models = {"gpt-5.1-codex-max": {"context_window": 12_000}}
    huge = "x" * 80_000
    scripted_server.load(
        {
            "steps": [
                {"calls": [call("read_file", {"path": "big.txt"})], "repeat": 2},
                {"text": huge, "repeat": 5},
            ],
            "compactions": [{"summary": huge}],
        }
    )
    events: list[ev.Event] = []
    agent = agent_for(scripted_settings, path, events)
    try:
        result = await agent.run_turn("go")
    finally:
        await agent.aclose()
    assert (result.status, result.steps) == ("failed", 2)
    assert "compaction could not bring the context under the threshold" in (result.error or "")
    assert "after 3 attempts" in (result.error or "")
    assert len([e for e in events if isinstance(e, ev.CompactionFailed)]) == 1
    compacts = scripted_server.requests_to("compact")
    summaries = [
        r
        for r in scripted_server.requests_to("responses")
        if "hand-off summary" in json.dumps(r.body["input"])
    ]
    assert (len(compacts), len(summaries)) == (1, 2), "remote once, then local: no loop"
    assert scripted_server.remaining_steps > 0


def test_damaged_and_newer_records_are_left_untouched(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    for name, record, needle in [
        ("damaged", {"schema": 1, "session_id": "abc", "turns": "three"}, "is damaged"),
        ("newer", {"schema": 7, "session_id": "abc"}, "newer jupyter-codexmax (schema 7"),
        ("not-an-object", [1, 2, 3], "is not an object"),
    ]:
        path = make_notebook(tmp_path / f"{name}.ipynb", [("a", "code", "x = 1")])
        data = json.loads(path.read_text())
        data["metadata"][METADATA_KEY] = record
        path.write_text(json.dumps(data, indent=1))
        before = path.read_bytes()
        for command in (
            ["run", str(path), "--task", "go"],
            ["session", str(path)],
            ["compact", str(path)],
        ):
            result = codexmax(command, scripted_server, check=False)
            assert result.returncode == 2, result.stderr
            assert needle in result.stderr and "left as it is" in result.stderr
            assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
            assert path.read_bytes() == before
    assert scripted_server.requests == []


async def test_the_record_matches_its_schema_and_its_cap(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_settings.session_cap = 9_000
    scripted_server.load({"steps": [{"text": "answer " * 200}], "after_last": "repeat"})
    agent = agent_for(scripted_settings, path, [])
    try:
        for number in range(12):
            await agent.run_turn(f"message {number}: " + "words " * 150)
    finally:
        await agent.aclose()
    data = json.loads(path.read_text())["metadata"][METADATA_KEY]
    validate_record(data)
    size = len(json.dumps(data, ensure_ascii=False).encode())
    assert size <= 9_000
    assert data["dropped"]["messages"] > 0, "the oldest messages went first"
    assert "message 11" in json.dumps(data["messages"][-2:]), "the newest stayed"
    assert data["turns"] == 12


async def test_secrets_stay_out_of_the_notebook_journal_events_and_report(
    tmp_path: Path,
    scripted_settings: CodexMax,
    scripted_server: ScriptedModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jupyter_codexmax.session.journal import journal_path
    from jupyter_codexmax.testing.pytest_plugin import TEST_API_KEY

    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    (tmp_path / "key.txt").write_text(TEST_API_KEY)
    scripted_server.load(
        [
            {"calls": [call("read_file", {"path": "key.txt"})]},
            {"text": f"I will not repeat {TEST_API_KEY}"},
        ]
    )
    events: list[ev.Event] = []
    agent = agent_for(scripted_settings, path, events)
    try:
        await agent.run_turn(f"my key is {TEST_API_KEY}, keep it safe")
    finally:
        await agent.aclose()
    assert TEST_API_KEY not in path.read_text()
    assert TEST_API_KEY not in journal_path(agent.session_id).read_text()
    assert TEST_API_KEY not in repr(events)
    headers = [r.headers for r in scripted_server.requests]
    assert all(h.get("authorization") == "********" for h in headers)


async def test_the_journal_replays_the_exact_history(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    from jupyter_codexmax.session.journal import history_at

    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load(
        {
            "steps": [{"calls": [call("read_notebook", {})]}, {"text": "one"}, {"text": "two"}],
            "compactions": [{"summary": "s"}],
        }
    )
    agent = agent_for(scripted_settings, path, [])
    try:
        await agent.run_turn("first")
        await agent.compact()
        await agent.run_turn("second")
    finally:
        await agent.aclose()
    assert history_at(agent.session_id, agent.turns) == agent.history
    assert history_at(agent.session_id, 99) is None


async def test_read_only_writes_nothing_to_the_notebook(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    before = path.read_bytes()
    scripted_server.load([{"text": "looked"}])
    doc = FileNotebook.open(path)
    agent = Agent(
        scripted_settings,
        workspace=Workspace(tmp_path.resolve()),
        notebook=doc,
        approval="read-only",
    )
    try:
        await agent.run_turn("look")
    finally:
        await agent.aclose()
    assert path.read_bytes() == before
    assert without_session(path) == before


# -- across processes --------------------------------------------------------------------------

RESUMED = "This session is being resumed in a new process"


def codexmax(
    args: list[str], server: ScriptedModelServer, *extra: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(BIN / "jupyter-codexmax"), *args, *extra],
        env={
            **os.environ,
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "sk-across-processes-0123456789",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
        assert server.failures == []
    return result


@pytest.mark.parametrize("journal", [True, False], ids=["journal", "record-only"])
def test_a_new_process_carries_on_the_session(
    tmp_path: Path, scripted_server: ScriptedModelServer, journal: bool
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    extra = [] if journal else ["--CodexMax.journal=False"]
    scripted_server.load([{"text": "Noted: the launch code is PELICAN-42."}])
    codexmax(
        ["run", str(path), "--task", "Remember that the launch code is PELICAN-42."],
        scripted_server,
        *extra,
    )
    first = read_record(FileNotebook.open(path).metadata)
    assert first is not None and first.turns == 1

    scripted_server.load(
        [{"expect": {"contains": "PELICAN-42"}, "text": "The launch code is PELICAN-42."}]
    )
    result = codexmax(
        ["run", str(path), "--task", "What is the launch code?"], scripted_server, *extra
    )
    assert "continuing session" in result.stderr
    (request,) = scripted_server.requests_to("responses")
    text = json.dumps(request.body["input"])
    assert "Remember that the launch code is PELICAN-42." in text
    # From the record alone the history is rebuilt around the ledger; the journal has the
    # very history (no ledger at a session's start: it would only repeat the task).
    assert RESUMED in text and (LEDGER_MARK in text) is not journal
    assert text.index("PELICAN-42") < text.index(RESUMED) < text.index("What is the launch code")
    second = read_record(FileNotebook.open(path).metadata)
    assert second is not None
    assert (second.session_id, second.turns) == (first.session_id, 2)
    assert second.usage["input_tokens"] > first.usage["input_tokens"]

    # --new-session starts afresh: nothing of the old session reaches the model.
    scripted_server.load([{"text": "fresh"}])
    codexmax(["run", str(path), "--task", "Hello", "--new-session"], scripted_server, *extra)
    (request,) = scripted_server.requests_to("responses")
    assert "PELICAN-42" not in json.dumps(request.body["input"])
    third = read_record(FileNotebook.open(path).metadata)
    assert third is not None and third.session_id != first.session_id and third.turns == 1


def test_a_read_only_run_is_continued_by_the_next(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """A read-only run writes nothing to the notebook, and still its session is where the
    next run finds it (this machine's journal); ``session`` shows it."""
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    before, stamp = path.read_bytes(), path.stat().st_mtime_ns
    read_only = ["--approval", "read-only"]
    scripted_server.load([{"text": "Noted: the launch code is HERON-7."}])
    first = codexmax(
        ["run", str(path), "--task", "Remember that the launch code is HERON-7.", *read_only],
        scripted_server,
    )
    assert "kept nowhere" not in first.stderr
    assert (path.read_bytes(), path.stat().st_mtime_ns) == (before, stamp)
    shown = codexmax(["session", str(path)], scripted_server).stdout
    assert "turns: 1;" in shown and "kept: on this machine only" in shown
    assert "Remember that the launch code is HERON-7." in shown, "the ledger's task"

    scripted_server.load(
        [{"expect": {"contains": "HERON-7"}, "text": "The launch code is HERON-7."}]
    )
    second = codexmax(
        ["run", str(path), "--task", "What is the launch code?", *read_only], scripted_server
    )
    assert "continuing session" in second.stderr and "kept on this machine" in second.stderr
    (request,) = scripted_server.requests_to("responses")
    text = json.dumps(request.body["input"])
    assert "Remember that the launch code is HERON-7." in text
    assert "Noted: the launch code is HERON-7." in text, "the first run's answer"
    assert text.index("HERON-7") < text.index(RESUMED) < text.index("What is the launch code")
    assert (path.read_bytes(), path.stat().st_mtime_ns) == (before, stamp)
    shown = codexmax(["session", str(path)], scripted_server).stdout
    assert "turns: 2;" in shown and "kept: on this machine only" in shown
    session_id = re.search(r"session (\w+)", shown)

    # A run that may write carries on the same session and stores it in the notebook.
    scripted_server.load([{"expect": {"contains": "HERON-7"}, "text": "Noted."}])
    codexmax(["run", str(path), "--task", "Thanks."], scripted_server)
    record = read_record(FileNotebook.open(path).metadata)
    assert session_id is not None and record is not None
    assert (record.session_id, record.turns) == (session_id.group(1), 3)
    shown = codexmax(["session", str(path)], scripted_server).stdout
    assert "turns: 3;" in shown and "kept: in the notebook's metadata" in shown


def test_a_read_only_run_without_the_journal_says_it_keeps_nothing(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    before = path.read_bytes()
    scripted_server.load({"steps": [{"text": "Looked."}], "after_last": "repeat"})
    args = ["run", str(path), "--task", "Look", "--approval", "read-only"]
    first = codexmax(args, scripted_server, "--CodexMax.journal=False")
    assert "read-only with the journal off: this session is kept nowhere" in first.stderr
    second = codexmax(args, scripted_server, "--CodexMax.journal=False")
    assert "continuing session" not in second.stderr
    assert path.read_bytes() == before


def test_a_full_stored_context_is_compacted_before_the_first_request(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load(
        [
            {
                "text": "Noted: the launch code is PELICAN-42.",
                "usage": {"input_tokens": 250_000, "output_tokens": 20},
            }
        ]
    )
    codexmax(
        ["run", str(path), "--task", "Remember that the launch code is PELICAN-42."],
        scripted_server,
    )
    record = read_record(FileNotebook.open(path).metadata)
    assert record is not None and record.context_tokens >= 250_000

    scripted_server.load(
        {
            "steps": [{"expect": {"contains": LEDGER_MARK}, "text": "carried on"}],
            "compactions": [{"summary": "the launch code is PELICAN-42"}],
        }
    )
    result = codexmax(["run", str(path), "--task", "Carry on."], scripted_server)
    assert [r.endpoint for r in scripted_server.requests] == ["compact", "responses"]
    compact, request = scripted_server.requests
    assert "Remember that the launch code is PELICAN-42." in json.dumps(compact.body["input"])
    items = [i for i in request.body["input"] if i.get("type") == "compaction"]
    assert decode_scripted(items[0]["encrypted_content"])["summary"] == (
        "the launch code is PELICAN-42"
    )
    assert re.search(
        r"compacted the context \(remote\): 250,\d{3} -> [\d,]+ tokens", result.stderr
    ), result.stderr
    after = read_record(FileNotebook.open(path).metadata)
    assert after is not None and after.compactions == 1 and after.context_tokens < 100_000


def test_a_killed_run_leaves_a_readable_notebook_and_resumes_from_the_last_turn(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    import signal

    import nbformat

    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1"), ("b", "code", "y = 2")])
    scripted_server.load([{"text": "Noted: the launch code is PELICAN-42."}])
    codexmax(
        ["run", str(path), "--task", "Remember that the launch code is PELICAN-42."],
        scripted_server,
    )
    session = read_record(FileNotebook.open(path).metadata)
    assert session is not None

    # The second run edits a cell, then the model goes silent and the process is killed.
    scripted_server.load(
        [
            {
                "calls": [
                    call(
                        "edit_notebook",
                        {"edits": [{"action": "replace", "cell_id": "b", "source": "y = 3"}]},
                    )
                ]
            },
            {"fault": "stall", "seconds": 60},
        ]
    )
    process = subprocess.Popen(
        [
            str(BIN / "jupyter-codexmax"),
            "run",
            str(path),
            "--task",
            "Set y to 3, then wait.",
            "--full-auto",
        ],
        env={
            **os.environ,
            "OPENAI_BASE_URL": scripted_server.base_url,
            "OPENAI_API_KEY": "sk-across-processes-0123456789",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while len(scripted_server.requests_to("responses")) < 2:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert [c.source for c in nb.cells] == ["x = 1", "y = 3"], "the finished edit was saved"
    killed = read_record(FileNotebook.open(path).metadata)
    assert killed is not None and killed.to_json() == session.to_json(), (
        "the record is the last completed turn's"
    )

    scripted_server.load([{"expect": {"contains": "PELICAN-42"}, "text": "PELICAN-42, y is 3"}])
    codexmax(["run", str(path), "--task", "What is the launch code?"], scripted_server)
    (request,) = scripted_server.requests_to("responses")
    text = json.dumps(request.body["input"])
    assert RESUMED in text and "y = 3" in text, "the fresh view shows the notebook as it is"
    assert "Set y to 3" not in text, "the killed turn is not part of the session"
    resumed = read_record(FileNotebook.open(path).metadata)
    assert resumed is not None and (resumed.session_id, resumed.turns) == (session.session_id, 2)
    # And the run after that replays the journal without the killed turn either.
    scripted_server.load([{"text": "still here"}])
    codexmax(["run", str(path), "--task", "Anything else?"], scripted_server)
    (request,) = scripted_server.requests_to("responses")
    text = json.dumps(request.body["input"])
    assert "What is the launch code?" in text and "Set y to 3" not in text


# -- the session commands ----------------------------------------------------------------------


def test_session_shows_the_stored_session(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    shown = codexmax(["session", str(path)], scripted_server)
    assert shown.stdout.strip() == f"{path}: no jupyter-codexmax session"
    scripted_server.load(
        [
            {
                "calls": [
                    call("update_plan", {"plan": [{"step": "Look at x", "status": "completed"}]})
                ]
            },
            {"text": "x is one."},
        ]
    )
    codexmax(["run", str(path), "--task", "What is x?", "--full-auto"], scripted_server)
    record = read_record(FileNotebook.open(path).metadata)
    assert record is not None
    shown = codexmax(["session", str(path)], scripted_server)
    out = shown.stdout
    assert f"session {record.session_id}" in out
    assert "turns: 1; compactions: 0" in out
    assert f"context: {record.context_tokens:,} tokens" in out
    assert "summary: none yet" in out
    assert "Look at x" in out and "What is x?" in out, "the ledger: plan and task"
    assert re.search(r"size: [\d,]+ bytes of 65,536", out)
    as_json = codexmax(["session", str(path), "--json"], scripted_server)
    data = json.loads(as_json.stdout)
    validate_record(data)
    assert data == record.to_json()
    assert "sk-across" not in out + as_json.stdout


def test_strip_removes_sessions_idempotently(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    with_session = make_notebook(tmp_path / "one.ipynb", [("a", "code", "x = 1")])
    original = with_session.read_bytes()
    plain = make_notebook(tmp_path / "two.ipynb", [("a", "code", "y = 1")])
    plain_bytes, plain_mtime = plain.read_bytes(), plain.stat().st_mtime_ns
    scripted_server.load([{"text": "ok"}])
    codexmax(["run", str(with_session), "--task", "hi"], scripted_server)
    assert METADATA_KEY in json.loads(with_session.read_text())["metadata"]

    missing = tmp_path / "missing.ipynb"
    result = codexmax(
        ["strip", str(with_session), str(missing), str(plain)], scripted_server, check=False
    )
    assert result.returncode == 2
    assert result.stdout.strip() == f"stripped {with_session}"
    (error,) = result.stderr.splitlines()
    assert "missing.ipynb" in error and "Traceback" not in error
    assert with_session.read_bytes() == original, "back to the notebook before the session"
    assert (plain.read_bytes(), plain.stat().st_mtime_ns) == (plain_bytes, plain_mtime)
    mtime = with_session.stat().st_mtime_ns
    again = codexmax(["strip", str(with_session), str(plain)], scripted_server)
    assert again.stdout == "" and with_session.stat().st_mtime_ns == mtime, "idempotent"


def test_compact_compacts_the_stored_session(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    nothing = codexmax(["compact", str(path)], scripted_server, check=False)
    assert nothing.returncode == 2
    assert nothing.stderr.strip().endswith("no jupyter-codexmax session to compact")
    scripted_server.load([{"text": "one"}, {"text": "two"}])
    codexmax(["run", str(path), "--task", "first"], scripted_server)
    codexmax(["run", str(path), "--task", "second"], scripted_server)
    before = read_record(FileNotebook.open(path).metadata)
    assert before is not None and before.compactions == 0

    scripted_server.load({"steps": [], "compactions": [{"summary": "two turns, nothing else"}]})
    result = codexmax(["compact", str(path)], scripted_server)
    assert re.fullmatch(
        rf"{re.escape(str(path))}: compacted: [\d,]+ -> [\d,]+ tokens\n", result.stdout
    )
    (compact,) = scripted_server.requests_to("compact")
    sent = json.dumps(compact.body["input"])
    assert '"text": "first"' in sent and '"text": "two"' in sent
    after = read_record(FileNotebook.open(path).metadata)
    assert after is not None
    assert (after.session_id, after.turns, after.compactions) == (before.session_id, 2, 1)
    assert after.summary is not None and after.summary.get("type") == "compaction"
    assert decode_scripted(after.summary["encrypted_content"])["summary"] == (
        "two turns, nothing else"
    )


def test_a_run_writes_no_secret_anywhere(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """The API key given to a run, pasted into the task, read from a file and repeated by the
    model, reaches none of: the notebook, the journal, the report, the log, the summary, the
    requests' recorded headers, the model."""
    key = "sk-across-processes-0123456789"
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    (tmp_path / "env.txt").write_text(f"OPENAI_API_KEY={key}\n")
    scripted_server.load(
        [
            {"calls": [call("read_file", {"path": "env.txt"})]},
            {
                "calls": [
                    call(
                        "edit_notebook",
                        {
                            "edits": [
                                {"action": "insert", "after": "a", "source": f"# {key}\nprint(1)"}
                            ]
                        },
                    )
                ]
            },
            {"text": f"The key is {key}."},
        ]
    )
    report = tmp_path / "report.json"
    result = codexmax(
        [
            "run",
            str(path),
            "--task",
            f"Use my key {key} and Bearer {key}",
            "--full-auto",
            "--report",
            str(report),
        ],
        scripted_server,
    )
    journals = list((Path(os.environ["JUPYTER_DATA_DIR"]) / "codexmax").rglob("*.jsonl"))
    assert journals
    written = {
        "notebook": path.read_text(),
        "report": report.read_text(),
        "log": result.stderr,
        "summary": result.stdout,
        "journal": "".join(p.read_text() for p in journals),
        "headers": json.dumps([r.headers for r in scripted_server.requests]),
        # What we send (the model's own items go back verbatim: a real model cannot know
        # the key, the scripted one was told it).
        "the model": json.dumps(
            [
                [r.body.get("instructions"), r.body.get("tools")]
                + [
                    i
                    for i in r.body["input"]
                    if i.get("role") in ("user", "developer")
                    or i.get("type") == "function_call_output"
                ]
                for r in scripted_server.requests
            ]
        ),
    }
    for name, text in written.items():
        assert key not in text, name
        assert key[-12:] not in text, name
    assert "********" in written["notebook"], "the cell the model wrote is masked"
    assert "a credential in the message was masked before the model saw it" in result.stderr


async def test_the_local_summary_request_keeps_the_newest_items_that_fit(
    scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    """A history bigger than the window: the summary request holds the newest items that fit,
    whole call and output pairs; when the server still says it is too long, fewer."""
    from jupyter_codexmax.agent.compaction import compact_history
    from jupyter_codexmax.agent.tokens import TokenCounter
    from jupyter_codexmax.providers import open_provider
    from jupyter_codexmax.providers.items import function_call_output, user_message

    scripted_settings.provider = "chat"
    history: list[dict[str, Any]] = [user_message("Read every chapter.")]
    for number in range(60):
        history.append(
            {
                "type": "function_call",
                "call_id": f"c{number}",
                "name": "read_file",
                "arguments": json.dumps({"path": f"chapter{number}.txt"}),
            }
        )
        history.append(function_call_output(f"c{number}", f"chapter {number}: " + "word " * 900))
    scripted_server.load(
        [
            {
                "fault": "http",
                "status": 400,
                "code": "context_length_exceeded",
                "message": "This model's maximum context length is 30000 tokens.",
            },
            {"expect": {"contains": "hand-off summary"}, "text": "SUMMARY: chapters read."},
        ]
    )
    counter = TokenCounter(mode="estimate")
    provider = open_provider(scripted_settings)
    try:
        result = await compact_history(
            provider,
            history,
            instructions="Be brief.",
            head=[],
            counter=counter,
            window=30_000,
            user_budget=2_000,
            pending_limit=2_000,
            allow_remote=False,
            cache_key=None,
        )
    finally:
        await provider.aclose()
    assert scripted_server.failures == []
    first, second = (r.body["messages"] for r in scripted_server.requests_to("chat"))
    assert len(json.dumps(first)) // 4 < 30_000, "the first try fits the window by our count"
    assert len(second) < len(first), "fewer items after the server said too long"
    for messages in (first, second):
        calls = {c["id"] for m in messages for c in m.get("tool_calls") or []}
        answers = {m["tool_call_id"] for m in messages if m["role"] == "tool"}
        assert answers <= calls, "no output without its call"
        assert "chapter 58" in json.dumps(messages), "the newest items are kept"
        assert "chapter 0:" not in json.dumps(messages), "the oldest went"
    assert result.method == "local"
    assert "SUMMARY: chapters read." in json.dumps(result.items)
    assert [i.get("call_id") for i in result.items][-2:] == ["c59", "c59"], "the step pending"


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


async def test_the_journal_survives_a_line_cut_by_a_crash(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    from jupyter_codexmax.session.journal import history_at, journal_path

    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load({"steps": [{"text": "one"}, {"text": "two"}, {"text": "three"}]})
    agent = agent_for(scripted_settings, path, [])
    try:
        await agent.run_turn("first")
    finally:
        await agent.aclose()
    first = list(agent.history)
    journal = journal_path(agent.session_id)
    append(journal, '{"t":1.0,"kind":"items","items":[{"type":"message","role":"us')
    assert history_at(agent.session_id, 1) == first, "what was complete before it stands"

    record = read_record(FileNotebook.open(path).metadata)
    resumed = agent_for(scripted_settings, path, [], resume=record)
    try:
        assert resumed.history[: len(first)] == first, "exact resume from the journal"
        await resumed.run_turn("second")
    finally:
        await resumed.aclose()
    assert history_at(agent.session_id, 2) == resumed.history
    lines = journal.read_text().splitlines()
    assert sum(1 for line in lines if line.startswith('{"t":1.0,')) == 1, "cut line kept alone"

    # A cut line after the last full history makes the turns after it unknown (the record
    # is used then), never wrong.
    append(
        journal,
        '{"t":2.0,"kind":"items","items":[{"type":"mess\n'
        '{"t":2.1,"kind":"turn","turn":3,"status":"done"}\n',
    )
    assert history_at(agent.session_id, 3) is None
    assert history_at(agent.session_id, 2) == resumed.history


async def test_a_stop_while_the_turn_is_saving_is_too_late(
    tmp_path: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    """The answer is complete and the session is being saved: a stop then says it stopped
    nothing (a frontend must not show "stopped" above an answer that goes on arriving),
    and the turn ends done."""
    import asyncio

    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    scripted_server.load([{"text": "The whole answer."}])
    saving, release = asyncio.Event(), asyncio.Event()

    async def save(record: dict[str, Any]) -> None:
        saving.set()
        await release.wait()

    events: list[ev.Event] = []
    agent = agent_for(scripted_settings, path, events, save_session=save)
    try:
        turn = asyncio.ensure_future(agent.run_turn("answer"))
        await asyncio.wait_for(saving.wait(), 30)
        assert agent.busy
        stopped = agent.stop()
        release.set()
        result = await turn
    finally:
        release.set()
        await agent.aclose()
    assert stopped is False, "too late: the answer is complete"
    assert result.status == "done"
    finished = [e for e in events if isinstance(e, ev.TurnFinished)]
    assert [e.status for e in finished] == ["done"]
