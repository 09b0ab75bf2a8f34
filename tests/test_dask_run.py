"""``jupyter codexmax run --executor dask`` on real Dask processes on loopback: a ``dask
scheduler`` and ``dask worker`` processes started here (or a LocalCluster), real kernels,
the scripted model server. The server only answers requests that carry the workers' key,
so a run that works proves the workers took the key from their own environment; the
scheduler writes down every task it is given, so a test can show the key was in none."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from daskhelpers import Cluster, can_hide, cluster_env
from nbhelpers import call, cells_by_id, make_notebook
from test_rate_limit import overlap

from jupyter_codexmax.testing import ScriptedModelServer

pytest.importorskip("distributed")

KEY = "sk-dask-worker-key-0123456789abcdef"
BIN = Path(sys.executable).parent
TASK = "Fix cell b (task-marker-5521)"


@pytest.fixture
def cluster(tmp_path: Path, codexmax_isolated: Path) -> Iterator[Cluster]:
    folder = tmp_path / "cluster"
    folder.mkdir()
    running = Cluster(folder, cluster_env(codexmax_isolated, "OPENAI_API_KEY", KEY))
    try:
        yield running.start()
    finally:
        running.stop()


def _conversation(name: str, first: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    steps = [
        *(first or []),
        {
            "calls": [
                call(
                    "edit_notebook",
                    {"edits": [{"action": "replace", "cell_id": "b", "source": "print(x)"}]},
                )
            ]
        },
        {"calls": [call("run_cells", {"all": True})]},
        {"text": f"fixed {name}"},
    ]
    return {"match": name, "steps": steps}


def _notebooks(folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(exist_ok=True)
    return [
        make_notebook(folder / f"{n}.ipynb", [("a", "code", f"x = {i}"), ("b", "code", "print(y)")])
        for i, n in enumerate(names)
    ]


def _run(
    args: list[str], server: ScriptedModelServer, *, key: bool, timeout: int = 150
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAI_BASE_URL": server.base_url}
    if key:
        env["OPENAI_API_KEY"] = KEY
    return subprocess.run(
        [str(BIN / "jupyter-codexmax"), "run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _check_entries(report: Path, paths: list[Path], workers: set[str] | None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(report.read_text())
    entries = {Path(e["path"]).name: e for e in data["notebooks"]}
    assert sorted(entries) == sorted(p.name for p in paths)
    for path in paths:
        entry = entries[path.name]
        assert entry["status"] == "done", entry
        assert entry["cells_edited"] == ["b"] and entry["steps"] == 3
        assert entry["usage"]["input_tokens"] > 0 and entry["wall_time"] > 0
        if workers is None:
            assert re.fullmatch(r"tcp://127\.0\.0\.1:\d+", entry["worker"]), entry["worker"]
        else:
            assert entry["worker"] in workers
        assert cells_by_id(path)["b"]["outputs"][0]["text"].strip().isdigit()
    totals = data["totals"]
    assert (totals["notebooks"], totals["done"], totals["failed"]) == (len(paths), len(paths), 0)
    assert totals["cells_changed"] == len(paths)
    return data


def test_four_notebooks_on_a_scheduler_and_two_workers(
    tmp_path: Path, scripted_server: ScriptedModelServer, cluster: Cluster
) -> None:
    names = ["alpha", "beta", "gamma", "delta"]
    paths = _notebooks(tmp_path / "nbs", names)
    scripted_server.load({"conversations": [_conversation(f"{n}.ipynb") for n in names]})
    scripted_server.api_key = KEY
    report, markdown = tmp_path / "report.json", tmp_path / "report.md"
    result = _run(
        [
            *map(str, paths),
            "--task",
            TASK,
            "--full-auto",
            "--scheduler",
            cluster.address,
            "--report",
            str(report),
            "--report-md",
            str(markdown),
        ],
        scripted_server,
        key=False,  # this machine has none: the workers use theirs
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert scripted_server.failures == []
    data = _check_entries(report, paths, set(cluster.workers))
    table = markdown.read_text()
    for entry in data["notebooks"]:
        assert f"| {Path(entry['path']).name} | done | {entry['worker']} | 3 | 1 |" in table
    assert "| **4 notebooks** | 4 done, 0 incomplete, 0 failed |" in table
    assert "progress: 4/4 done · 0 failed · 0 running" in result.stderr
    # What travelled: the tasks as the scheduler had them. The task text is there (so the
    # capture sees a task's arguments); the key is in no task, log or report.
    travelled = cluster.tasks.read_bytes()
    assert travelled.count(b"task-marker-5521") >= 4
    for where, text in [
        ("the tasks", travelled.decode("latin-1")),
        ("the cluster's logs", cluster.output()),
        ("the run's output", result.stdout + result.stderr),
        ("the report", report.read_text() + table),
    ]:
        assert KEY not in text and KEY[:20] not in text, where


def test_four_notebooks_on_a_local_cluster(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    names = ["one", "two", "three", "four"]
    paths = _notebooks(tmp_path / "nbs", names)
    scripted_server.load({"conversations": [_conversation(f"{n}.ipynb") for n in names]})
    scripted_server.api_key = KEY
    report = tmp_path / "report.json"
    args = [*map(str, paths), "--task", TASK, "--full-auto", "--executor", "dask", "--jobs", "2"]
    # One model request at a time across the two workers (a distributed.Semaphore).
    args += ["--max-concurrent-requests", "1", "--report", str(report)]
    result = _run(args, scripted_server, key=True)
    assert result.returncode == 0, result.stderr[-4000:]
    assert scripted_server.failures == []
    assert overlap(scripted_server.requests) < 0.05
    data = _check_entries(report, paths, None)
    assert len({e["worker"] for e in data["notebooks"]}) <= 2
    assert KEY not in result.stdout + result.stderr + report.read_text()


def _wait_for(predicate: Any, what: str, seconds: float = 90) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_worker_killed_mid_run(
    tmp_path: Path, scripted_server: ScriptedModelServer, cluster: Cluster
) -> None:
    """SIGKILL of the worker whose notebook waits on a slow answer: that notebook is run
    again by Dask elsewhere (or reported failed), never lost; the others finish; its file
    parses."""
    names = ["slow", "b1", "b2", "b3"]
    paths = _notebooks(tmp_path / "nbs", names)
    stall = {"fault": "stall", "after": 1, "seconds": 60, "text": "thinking..."}
    scripted_server.load(
        {
            "conversations": [
                _conversation("slow.ipynb", [{"calls": [call("run_cells", {"all": True})]}, stall]),
                *(_conversation(f"{n}.ipynb") for n in names[1:]),
            ]
        }
    )
    scripted_server.api_key = KEY
    report = tmp_path / "report.json"
    log = tmp_path / "run.log"
    env = {**os.environ, "OPENAI_BASE_URL": scripted_server.base_url}
    args = [*map(str, paths), "--task", TASK, "--full-auto", "--scheduler", cluster.address]
    orphans: list[int] = []
    with log.open("w") as err:
        run = subprocess.Popen(
            [str(BIN / "jupyter-codexmax"), "run", *args, "--report", str(report)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        try:
            started = _wait_for(
                lambda: re.search(r"\[slow\.ipynb\] started on (tcp://\S+)", log.read_text()),
                "the slow notebook to start",
            )
            _wait_for(
                lambda: (
                    sum("slow.ipynb" in json.dumps(r.body) for r in scripted_server.requests) >= 2
                ),
                "the slow answer to be asked for",
            )
            killed = started.group(1)
            orphans = cluster.kill(killed)
            stdout, _ = run.communicate(timeout=150)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
            cluster.stop(orphans)
    stderr = log.read_text()
    entries = {Path(e["path"]).name: e for e in json.loads(report.read_text())["notebooks"]}
    assert sorted(entries) == sorted(p.name for p in paths), "no notebook vanished"
    for name in names[1:]:
        assert entries[f"{name}.ipynb"]["status"] == "done", stderr[-3000:]
    slow = entries["slow.ipynb"]
    assert killed in slow["lost_workers"], slow
    if slow["status"] == "done":  # Dask ran it again on the other worker
        assert slow["worker"] != killed and "(again: its worker" in stderr
        assert run.returncode == 0
    else:
        assert slow["status"] == "failed" and "lost" in slow["error"]
        assert run.returncode == 1
    nbformat.validate(nbformat.read(str(paths[0]), as_version=4))
    assert "slow.ipynb" in stdout


def test_resume_skips_what_is_done_and_runs_the_rest(
    tmp_path: Path, scripted_server: ScriptedModelServer, cluster: Cluster
) -> None:
    names = ["ok1", "ok2", "bad"]
    paths = _notebooks(tmp_path / "nbs", names)
    refused = {"fault": "http", "status": 400, "code": "invalid_request", "message": "no"}
    scripted_server.load(
        {
            "conversations": [
                _conversation("ok1.ipynb"),
                _conversation("ok2.ipynb"),
                _conversation("bad.ipynb", [refused]),
            ]
        }
    )
    scripted_server.api_key = KEY
    report = tmp_path / "report.json"
    args = [*map(str, paths), "--task", TASK, "--full-auto", "--scheduler", cluster.address]
    first = _run([*args, "--report", str(report)], scripted_server, key=False)
    assert first.returncode == 1, first.stderr[-3000:]
    statuses = {
        Path(e["path"]).name: e["status"] for e in json.loads(report.read_text())["notebooks"]
    }
    assert statuses == {"ok1.ipynb": "done", "ok2.ipynb": "done", "bad.ipynb": "failed"}
    before = {p.name: p.read_bytes() for p in paths[:2]}
    asked = len(scripted_server.requests)
    second = _run([*args, "--resume", str(report)], scripted_server, key=False)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "2 notebook(s) done in" in second.stderr and "1 to run" in second.stderr
    again = scripted_server.requests[asked:]
    assert again and all("bad.ipynb" in json.dumps(r.body) for r in again)
    assert {p.name: p.read_bytes() for p in paths[:2]} == before, "done notebooks untouched"
    data = json.loads(report.read_text())
    entries = {Path(e["path"]).name: e for e in data["notebooks"]}
    assert {n: e["status"] for n, e in entries.items()} == dict.fromkeys(statuses, "done")
    assert entries["ok1.ipynb"]["resumed"] and not entries["bad.ipynb"].get("resumed")
    assert (data["totals"]["done"], data["totals"]["resumed"]) == (3, 2)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--scheduler", "tcp://127.0.0.1:9", "--executor", "local"], "--scheduler needs"),
        (["--executor", "spark"], "--executor must be local or dask"),
        (["--max-concurrent-requests", "-1"], "--max-concurrent-requests"),
        (["--resume", "missing.json"], "--resume missing.json: does not exist"),
        (["--scheduler", "tcp://127.0.0.1:9"], "--scheduler tcp://127.0.0.1:9: cannot connect"),
    ],
)
def test_cluster_usage_mistakes_exit_2_in_one_line(
    extra: list[str], needle: str, tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    path = make_notebook(tmp_path / "nb.ipynb", [("a", "code", "x = 1")])
    before = path.read_bytes()
    result = _run([str(path), "--task", "x", *extra], scripted_server, key=True, timeout=60)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert needle in line and line.startswith("jupyter-codexmax: error: "), line
    assert path.read_bytes() == before and scripted_server.requests == []


def test_a_worker_that_cannot_see_the_notebooks_is_named(
    tmp_path: Path, scripted_server: ScriptedModelServer, codexmax_isolated: Path
) -> None:
    """Two workers, one in a mount namespace where the notebooks' folder is an empty
    file system: the run stops before anything is touched and names that worker only."""
    if not can_hide():
        pytest.skip("needs root and unshare(1) to hide a folder from a worker")
    folder = tmp_path / "cluster"
    folder.mkdir()
    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    env = cluster_env(codexmax_isolated, "OPENAI_API_KEY", KEY)
    running = Cluster(folder, env, hide=notebooks)
    try:
        running.start()
        paths = _notebooks(notebooks, ["p", "q"])
        before = [p.read_bytes() for p in paths]
        result = _run(
            [*map(str, paths), "--task", "x", "--scheduler", running.address],
            scripted_server,
            key=False,
            timeout=90,
        )
    finally:
        running.stop()
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    (blind,) = [a for a, proc in running.workers.items() if proc is running.procs[2]]
    (seeing,) = set(running.workers) - {blind}
    assert f"worker {blind} cannot see {paths[0]} and 1 more" in line, line
    assert seeing not in line
    assert "shared file system" in line
    assert [p.read_bytes() for p in paths] == before and scripted_server.requests == []
