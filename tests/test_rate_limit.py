"""``--max-concurrent-requests``: one limit on model requests for every notebook of a run,
and a 429 answer that slows them all (the local engine; the Dask one is in
test_dask_run.py). Real processes: ``jupyter codexmax run`` and the scripted server, which
notes when it began and finished answering each request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from nbhelpers import call, make_notebook

from jupyter_codexmax.testing import ScriptedModelServer
from jupyter_codexmax.testing.server import RecordedRequest

BIN = Path(sys.executable).parent


def _run(args: list[str], server: ScriptedModelServer) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-limit-0123"}
    return subprocess.run(
        [str(BIN / "jupyter-codexmax"), "run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def overlap(requests: list[RecordedRequest]) -> float:
    """The longest time two model requests were answered at once (seconds)."""
    spans = sorted(
        (r.extra["started"], r.extra["finished"]) for r in requests if r.endpoint == "responses"
    )
    longest = 0.0
    for i, (start, end) in enumerate(spans):
        for other_start, other_end in spans[i + 1 :]:
            longest = max(longest, min(end, other_end) - max(start, other_start))
    return longest


def _slow_script(names: list[str]) -> dict[str, Any]:
    slow = {"delay": 0.05, "chunk": 4}
    return {
        "conversations": [
            {
                "match": name,
                "steps": [
                    {"calls": [call("read_notebook", {})], "text": "Reading it first.", **slow},
                    {"text": f"{name} looks fine.", **slow},
                ],
            }
            for name in names
        ]
    }


def test_the_limit_holds_across_notebooks(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    names = ["a.ipynb", "b.ipynb", "c.ipynb"]
    paths = [str(make_notebook(tmp_path / n, [("x", "code", "x = 1")])) for n in names]
    overlaps = {}
    for limit in ("0", "1"):
        scripted_server.load(_slow_script(names))
        args = [*paths, "--task", "look", "--jobs", "3", "--max-concurrent-requests", limit]
        result = _run(args, scripted_server)
        assert result.returncode == 0, result.stderr[-3000:]
        assert scripted_server.failures == []
        assert len(scripted_server.requests_to("responses")) == 6
        overlaps[limit] = overlap(scripted_server.requests)
    assert overlaps["0"] > 0.2, "without a limit, the notebooks ask at once"
    assert overlaps["1"] < 0.05, overlaps


def _rate_limited_script() -> dict[str, Any]:
    return {
        "conversations": [
            {
                "match": "told.ipynb",
                "steps": [
                    {"fault": "http", "status": 429, "headers": {"retry-after": "2"}},
                    {"text": "done"},
                ],
            },
            {
                "match": "other.ipynb",
                "steps": [
                    {"calls": [call("read_notebook", {})], "delay": 0.1, "chunk": 4},
                    {"text": "done"},
                ],
            },
        ]
    }


def test_a_429_slows_every_notebook_down(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """One notebook is told "too many requests, retry after 2 s": with the shared limit,
    the other one's next request waits for that too; without it, it does not."""
    told = str(make_notebook(tmp_path / "told.ipynb", [("x", "code", "x = 1")]))
    other = str(make_notebook(tmp_path / "other.ipynb", [("x", "code", "x = 1")]))
    waits = {}
    for extra in ([], ["--max-concurrent-requests", "4"]):
        scripted_server.load(_rate_limited_script())
        result = _run([told, other, "--task", "look", "--jobs", "2", *extra], scripted_server)
        assert result.returncode == 0, result.stderr[-3000:]
        assert scripted_server.failures == []
        requests = scripted_server.requests_to("responses")
        mine = [r for r in requests if "told.ipynb" in json.dumps(r.body)]
        theirs = [r for r in requests if "other.ipynb" in json.dumps(r.body)]
        assert len(mine) == 2 and len(theirs) == 2
        refused_at = mine[0].extra["finished"]
        assert mine[1].extra["started"] - refused_at > 1.8, "the told one waits 2 s"
        waits[bool(extra)] = theirs[1].extra["started"] - refused_at
    assert waits[False] < 1.5, waits
    assert waits[True] > 1.8, waits


def test_the_markdown_report_tells_notebooks_of_one_name_apart() -> None:
    """Two notebooks named alike in different folders are two rows one can tell apart (a
    new user saw two identical rows); one notebook is one notebook."""
    from jupyter_codexmax.scale.report import markdown

    two = markdown(
        {
            "notebooks": [
                {"path": "/w/a/clean.ipynb", "status": "done", "wall_time": 1.0},
                {"path": "/w/b/clean.ipynb", "status": "done", "wall_time": 2.0},
            ]
        }
    )
    assert "| a/clean.ipynb |" in two and "| b/clean.ipynb |" in two
    assert "**2 notebooks**" in two and "3.0s (sum)" in two
    one = markdown({"notebooks": [{"path": "/w/a/clean.ipynb", "status": "done"}]})
    assert "| clean.ipynb |" in one and "**1 notebook**" in one
