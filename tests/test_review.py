"""``jupyter codexmax review``: real processes, the scripted model server, real git."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from nbhelpers import call, make_notebook

from jupyter_codexmax.testing import ScriptedModelServer

BIN = Path(sys.executable).parent
DATA = Path(__file__).resolve().parent / "data"
KEY = "sk-review-test-0123456789abcdef"

CELLS = [
    ("load", "code", "import pandas as pd\ndf = pd.read_csv('sales.csv')"),
    (
        "clean",
        "code",
        "df = df.dropna()\ndf['price'] = df['price'].astype(int)\ntotal = df.price.sum()",
    ),
    ("notes", "markdown", "# Notes\nNothing here."),
    ("report", "code", "print(totla)"),
]


def review(
    args: list[str], server: ScriptedModelServer, *, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": KEY}
    return subprocess.run(
        [str(BIN / "jupyter"), "codexmax", "review", "--quiet", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def finding(**args: Any) -> dict[str, Any]:
    base = {"body": "It breaks.", "confidence": 0.8}
    return call("report_finding", {**base, **args})


def verdict(kind: str = "needs_changes") -> dict[str, Any]:
    return call("submit_verdict", {"verdict": kind, "explanation": "Two bugs.", "confidence": 0.7})


TWO_FINDINGS = [
    {
        "calls": [
            finding(
                severity="high",
                title="Typo in name",
                cell_id="report",
                line=1,
                suggestion="print(total)",
            ),
            finding(severity="medium", title="Lossy cast", cell_id="clean", line=2),
        ]
    },
    {"calls": [verdict()]},
    "Reviewed: two findings.",
]


def tool_names(request: Any) -> list[str]:
    return [t.get("name") for t in request.body.get("tools", [])]


def request_text(request: Any) -> str:
    return json.dumps(request.body.get("input", []))


def sarif_validator() -> Any:
    from jsonschema import Draft7Validator

    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    return Draft7Validator(schema)


def test_a_scripted_review_reports_two_findings_by_cell(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """JSON and SARIF carry both findings with their cell ids; the SARIF validates against
    the official schema; --fail-on high exits 3; the notebook's bytes are unchanged; the
    model was offered report_finding and no tool that edits."""
    nb = make_notebook(tmp_path / "sales.ipynb", CELLS)
    before = nb.read_bytes()
    scripted_server.load({"steps": TWO_FINDINGS})
    out = tmp_path / "review.json"
    done = review([str(nb), "--format", "json", "--output", str(out)], scripted_server)
    assert done.returncode == 0, done.stderr
    assert scripted_server.failures == []
    data = json.loads(out.read_text())
    assert [(f["cell_id"], f["severity"], f["line"]) for f in data["findings"]] == [
        ("report", "high", 1),
        ("clean", "medium", 2),
    ]
    assert data["findings"][0]["suggestion"] == "print(total)"
    assert data["findings"][0]["path"] == "sales.ipynb"
    assert data["verdict"]["verdict"] == "needs_changes"
    assert data["usage"]["input_tokens"] > 0
    assert nb.read_bytes() == before

    requests = scripted_server.requests_to("responses")
    assert len(requests) == 3
    for request in requests:
        names = tool_names(request)
        assert "report_finding" in names and "submit_verdict" in names
        assert not {"edit_notebook", "apply_patch", "run_cells", "restart_kernel"} & set(names)
    # Every cell was presented, with line numbers.
    first = request_text(requests[0])
    assert "print(totla)" in first and "astype(int)" in first

    scripted_server.load({"steps": TWO_FINDINGS})
    sarif_path = tmp_path / "review.sarif"
    done = review(
        [str(nb), "--format", "sarif", "--output", str(sarif_path), "--fail-on", "high"],
        scripted_server,
    )
    assert done.returncode == 3, done.stderr
    sarif = json.loads(sarif_path.read_text())
    errors = [e.message for e in sarif_validator().iter_errors(sarif)]
    assert errors == []
    results = sarif["runs"][0]["results"]
    assert [r["properties"]["cellId"] for r in results] == ["report", "clean"]
    assert [r["ruleId"] for r in results] == ["codexmax-review/high", "codexmax-review/medium"]
    for result in results:
        location = result["locations"][0]
        assert location["physicalLocation"]["artifactLocation"]["uri"] == "sales.ipynb"
        cell = result["properties"]["cellId"]
        assert f"cell {cell}" in result["message"]["text"]
        assert location["logicalLocations"][0]["fullyQualifiedName"] == f"sales.ipynb#cell={cell}"
        # The line within the .ipynb file holds the cell's line.
        row = location["physicalLocation"]["region"]["startLine"]
        text = nb.read_text().splitlines()[row - 1]
        source = dict((c[0], c[2]) for c in CELLS)[cell].splitlines()
        assert (
            json.loads(text.strip().rstrip(",")).rstrip("\n")
            == source[result["properties"]["cellLine"] - 1]
        )
    assert nb.read_bytes() == before
    assert KEY not in sarif_path.read_text() and KEY not in out.read_text()

    # --fail-on critical: no finding reaches it.
    scripted_server.load({"steps": TWO_FINDINGS})
    done = review([str(nb), "--format", "markdown", "--fail-on", "critical"], scripted_server)
    assert done.returncode == 0, done.stderr
    assert "## Code review: needs changes" in done.stdout
    assert "#### Cell `report`" in done.stdout and "print(total)" in done.stdout


def test_the_text_report_groups_by_cell_with_the_code(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    nb = make_notebook(tmp_path / "sales.ipynb", CELLS)
    scripted_server.load({"steps": TWO_FINDINGS})
    done = review([str(nb)], scripted_server)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.index("cell clean (#2)") < text.index("cell report (#4)")
    assert ">   2| df['price'] = df['price'].astype(int)" in text
    assert ">   1| print(totla)" in text
    assert "Verdict: needs changes (confidence 0.70): Two bugs." in text


def test_a_finding_at_a_cell_that_does_not_exist_is_refused(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """Refused back to the model (the next request carries the refusal), not reported; so
    are a line past the cell's end and a path that is not under review."""
    nb = make_notebook(tmp_path / "sales.ipynb", CELLS)
    steps = [
        {
            "calls": [
                finding(severity="critical", title="Ghost", cell_id="nosuchcell", line=1),
                finding(severity="high", title="Too far", cell_id="report", line=7),
                finding(severity="high", title="Elsewhere", path="/etc/passwd", line=1),
            ]
        },
        {
            "expect": {
                "contains": [
                    "no cell has id 'nosuchcell'",
                    "has 1 line(s); there is no line 7",
                    "is not among the files under review",
                ]
            },
            "calls": [finding(severity="low", title="Real one", cell_id="report")],
        },
        {"calls": [verdict("correct")]},
        "Done.",
    ]
    scripted_server.load({"steps": steps})
    done = review([str(nb), "--format", "json", "--fail-on", "low"], scripted_server)
    assert scripted_server.failures == []
    assert done.returncode == 3, done.stderr
    data = json.loads(done.stdout)
    assert [f["title"] for f in data["findings"]] == ["Real one"]
    second = request_text(scripted_server.requests_to("responses")[1])
    assert "no cell has id 'nosuchcell'" in second


def git(folder: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    done = subprocess.run(
        ["git", *args], cwd=folder, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_base_reviews_only_the_changed_cells(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """In a real git repository: the changed and the new cell are presented, the unchanged
    ones are not; a finding on an unchanged cell is refused and not reported."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    nb = make_notebook(repo / "sales.ipynb", CELLS)
    (repo / "util.py").write_text("def f():\n    return 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    changed = [
        CELLS[0],
        (
            "clean",
            "code",
            "df = df.dropna()\ndf['price'] = df['price'].round()\ntotal = df.price.sum()",
        ),
        CELLS[2],
        ("extra", "code", "df.to_csv('/tmp/out.csv')"),
        CELLS[3],
    ]
    make_notebook(nb, changed)
    steps = [
        {
            "calls": [
                finding(severity="high", title="Old typo", cell_id="report", line=1),
                finding(severity="medium", title="Rounding", cell_id="clean", line=2),
            ]
        },
        {"expect": {"contains": "did not change since main"}, "calls": [verdict()]},
        "Done.",
    ]
    scripted_server.load({"steps": steps})
    done = review(
        ["sales.ipynb", "util.py", "--base", "main", "--format", "json"], scripted_server, cwd=repo
    )
    assert scripted_server.failures == []
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [f["cell_id"] for f in data["findings"]] == ["clean"]
    # util.py did not change: it was not reviewed at all (one unit, three requests).
    assert [u["unit"] for u in data["reviewed"]] == ["sales.ipynb"]
    first = request_text(scripted_server.requests_to("responses")[0])
    assert "round()" in first and "to_csv" in first
    assert "print(totla)" not in first and "read_csv" not in first and "Nothing here" not in first
    assert "cell clean (code, changed)" in first and "cell extra (code, new)" in first


def test_a_notebook_new_since_the_base_is_reviewed_whole(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """A notebook added since the base: every cell is under review, and the model is not
    told of "other cells" that did not change (there are none)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("data\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    make_notebook(repo / "sales.ipynb", CELLS)
    scripted_server.load({"steps": [{"calls": [verdict()]}, "Done."]})
    done = review(["sales.ipynb", "--base", "main", "--format", "json"], scripted_server, cwd=repo)
    assert done.returncode == 0, done.stderr
    first = request_text(scripted_server.requests_to("responses")[0])
    assert f"({len(CELLS)} cells), all of them new since main" in first
    assert "did not change" not in first and "of its" not in first


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["folder"], "folder: is a folder; give notebooks or files to review"),
        (["missing.ipynb"], "missing.ipynb: no such file"),
        (["blob.bin"], "blob.bin: is a binary file, not a notebook or text file"),
        (["broken.ipynb"], "broken.ipynb"),
        (["sales.ipynb", "--base", "nosuchref"], "--base nosuchref: no such commit in"),
        (
            ["sales.ipynb", "--format", "xml"],
            "--format xml: give one of text, json, markdown, sarif",
        ),
        (["sales.ipynb", "--fail-on", "info"], "--fail-on info: give one of critical, high"),
        ([], "give notebooks or files"),
        (
            ["sales.ipynb", "--run", "--CodexMax.sandbox=False"],
            "--run needs the OS sandbox to keep the kernel from writing files, which is off",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, scripted_server: ScriptedModelServer, args: list[str], message: str
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    make_notebook(repo / "sales.ipynb", CELLS)
    (repo / "folder").mkdir()
    (repo / "blob.bin").write_bytes(b"\0\1\2binary")
    (repo / "broken.ipynb").write_text("{not json")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    done = review(args, scripted_server, cwd=repo)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("jupyter-codexmax: error: ") and message in lines[0]
    assert scripted_server.requests_to("responses") == []


def test_base_outside_a_git_repository_is_one_line(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    make_notebook(tmp_path / "sales.ipynb", CELLS)
    done = review(["sales.ipynb", "--base", "HEAD"], scripted_server, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"jupyter-codexmax: error: --base HEAD: {tmp_path.resolve() / 'sales.ipynb'} is not "
        "in a git repository"
    )


def test_agent_review_in_a_real_kernel_shows_the_findings(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """``%agent review`` in a real kernel (jupyter_client, as nbclient drives it): the
    kernel finds its notebook, the agent's steps show as lines, then the findings by cell
    (each a link to its cell) in Markdown that stays in the notebook, and as JSON; the
    notebook's bytes are unchanged; a mistake is one line."""
    from kernelhelpers import Kernel

    from jupyter_codexmax.kernel.review import REVIEW_MIME

    nb = make_notebook(
        tmp_path / "sales.ipynb",
        [("ext", "code", "%load_ext jupyter_codexmax"), *CELLS, ("rev", "code", "%agent review")],
    )
    before = nb.read_bytes()
    scripted_server.load({"steps": TWO_FINDINGS})
    with Kernel(tmp_path, scripted_server, data_dir=tmp_path / "data") as kernel:
        assert kernel.run("%load_ext jupyter_codexmax").ok
        done = kernel.run("%agent review", cell_id="rev")
        assert done.ok, done.stderr
        assert scripted_server.failures == []
        assert "finding high at report: Typo in name" in done.stdout
        assert "verdict: needs_changes" in done.stdout
        markdown = done.markdown()
        assert "## Code review: needs changes" in markdown
        assert "#### [Cell `report`](#cell-id=report) (#5)" in markdown
        assert "#### [Cell `clean`](#cell-id=clean) (#3)" in markdown
        assert "print(total)" in markdown  # the suggestion
        (data,) = [d[REVIEW_MIME] for d in done.displays() if REVIEW_MIME in d]
        assert [f["cell_id"] for f in data["findings"]] == ["report", "clean"]
        for request in scripted_server.requests_to("responses"):
            names = tool_names(request)
            assert "report_finding" in names
            assert not {"edit_notebook", "apply_patch", "run_cells"} & set(names)

        wrong = kernel.run("%agent review --notebook sales.ipynb --base nosuchref")
        assert not wrong.ok
        (line,) = wrong.stderr.strip().splitlines()
        assert line.startswith("UsageError: %agent review: --base nosuchref:"), line
        assert line.endswith("is not in a git repository"), line
    assert nb.read_bytes() == before
    assert KEY not in json.dumps(data)


def test_files_are_reviewed_by_line_and_secrets_never_reach_a_report(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """A file's findings are located by path and line (past the end: refused); the SARIF
    puts them at that line; a credential the model repeats is masked in every format."""
    code = tmp_path / "util.py"
    code.write_text("def mean(xs):\n    return sum(xs) / len(xs)\n")
    steps = [
        {
            "calls": [
                finding(severity="medium", title="Past the end", path="util.py", line=9),
                finding(
                    severity="medium",
                    title="Empty list",
                    path="util.py",
                    line=2,
                    body=f"Divides by zero; the key {KEY} is not needed.",
                ),
            ]
        },
        {"expect": {"contains": "util.py has 2 lines; there is no line 9"}, "calls": [verdict()]},
        "Done.",
    ]
    outputs = {}
    for fmt in ("json", "sarif", "text", "markdown"):
        scripted_server.load({"steps": steps})
        done = review([str(code), "--format", fmt], scripted_server)
        assert done.returncode == 0, done.stderr
        assert scripted_server.failures == []
        assert KEY not in done.stdout and "Divides by zero" in done.stdout
        outputs[fmt] = done.stdout
    data = json.loads(outputs["json"])
    assert [(f["path"], f["line"], f["title"]) for f in data["findings"]] == [
        ("util.py", 2, "Empty list")
    ]
    sarif = json.loads(outputs["sarif"])
    assert [e.message for e in sarif_validator().iter_errors(sarif)] == []
    (result,) = sarif["runs"][0]["results"]
    location = result["locations"][0]["physicalLocation"]
    assert location == {
        "artifactLocation": {"uri": "util.py", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 2},
    }
    assert ">   2|     return sum(xs) / len(xs)" in outputs["text"]


def sandboxed() -> str:
    from jupyter_codexmax.config import CodexMax
    from jupyter_codexmax.sandbox import sandbox_status

    status = sandbox_status(CodexMax())
    return "" if status.active else status.describe()


@pytest.mark.skipif(bool(sandboxed()), reason=f"no OS sandbox here: {sandboxed()}")
def test_commands_and_run_cells_cannot_write(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """The review's shell reads but cannot write the workspace; with --run, cells run in a
    throwaway kernel that cannot write it either, and the notebook is never saved."""
    nb = make_notebook(
        tmp_path / "w.ipynb",
        [("write", "code", "open('from_cell.txt', 'w').write('x')"), ("ok", "code", "1 + 1")],
    )
    before = nb.read_bytes()
    steps = [
        {
            "calls": [
                call("shell", {"command": "cat w.ipynb | head -c 20; echo hi > from_shell.txt"})
            ]
        },
        {
            "expect": {"contains": ["exit 1", "Read-only file system"]},
            "calls": [call("run_cells", {"all": True})],
        },
        {
            "expect": {"contains": ["from_cell.txt"]},
            "calls": [
                finding(
                    severity="high", title="Writes into the workspace", cell_id="write", line=1
                ),
                verdict(),
            ],
        },
        "Done.",
    ]
    scripted_server.load({"steps": steps})
    done = review([str(nb), "--run", "--format", "json", "--fail-on", "high"], scripted_server)
    assert scripted_server.failures == []
    assert done.returncode == 3, done.stderr
    requests = scripted_server.requests_to("responses")
    assert "run_cells" in tool_names(requests[0]) and "edit_notebook" not in tool_names(requests[0])
    assert not (tmp_path / "from_shell.txt").exists()
    assert not (tmp_path / "from_cell.txt").exists()
    assert nb.read_bytes() == before


def test_the_documented_offline_review_runs(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """docs/review.md's offline recipe: the demo notebook and examples/scripts/review_sales.json."""
    import shutil

    root = Path(__file__).resolve().parents[1]
    work = tmp_path / "sales"
    shutil.copytree(root / "examples" / "sales", work)
    scripted_server.load(str(root / "examples" / "scripts" / "review_sales.json"))
    out = tmp_path / "review.sarif"
    done = review(
        [str(work / "clean_sales.ipynb"), "--format", "sarif", "--output", str(out),
         "--fail-on", "high"],
        scripted_server,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert scripted_server.failures == []
    sarif = json.loads(out.read_text())
    assert [e.message for e in sarif_validator().iter_errors(sarif)] == []
    results = sarif["runs"][0]["results"]
    assert [r["properties"]["cellId"] for r in results] == ["revenue", "clean"]
    assert all("region" in r["locations"][0]["physicalLocation"] for r in results)
    assert "review.sarif" in (root / "docs" / "review.md").read_text()


def test_base_reviews_only_the_changed_lines_of_a_file(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    code = repo / "util.py"
    code.write_text("def mean(xs):\n    return sum(xs)\n\n\ndef other():\n    return 2\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    code.write_text("def mean(xs):\n    return sum(xs) / len(xs)\n\n\ndef other():\n    return 2\n")
    steps = [
        {
            "expect": {"contains": "+    return sum(xs) / len(xs)"},
            "calls": [
                finding(severity="low", title="Unchanged", path="util.py", line=6),
                finding(severity="medium", title="Empty list", path="util.py", line=2),
            ],
        },
        {
            "expect": {"contains": "line 6 of util.py did not change since main"},
            "calls": [verdict()],
        },
        "Done.",
    ]
    scripted_server.load({"steps": steps})
    done = review(["util.py", "--base", "main", "--format", "json"], scripted_server, cwd=repo)
    assert scripted_server.failures == []
    assert done.returncode == 0, done.stderr
    assert [f["title"] for f in json.loads(done.stdout)["findings"]] == ["Empty list"]
