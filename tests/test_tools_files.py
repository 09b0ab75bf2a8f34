"""The file tools (read_file, list_files, search_files), apply_patch and shell, on real
files: workspace confinement, their outputs, the patch format, the shell's environment and
timeout, the destructive-command guard, and the registry's argument checks."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_codexmax.config import load_settings
from jupyter_codexmax.tools.files import ListFiles, ReadFile
from jupyter_codexmax.tools.patch import ApplyPatch
from jupyter_codexmax.tools.plan import UpdatePlan
from jupyter_codexmax.tools.registry import ToolContext, ToolError, ToolRegistry, ToolResult
from jupyter_codexmax.tools.search import SearchFiles
from jupyter_codexmax.tools.shell import Shell, check_command
from jupyter_codexmax.workspace import Workspace

REGISTRY = ToolRegistry(
    [ReadFile(), ListFiles(), SearchFiles(), ApplyPatch(), Shell(), UpdatePlan()]
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The workspace, beside a folder ``outside`` holding a secret file."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("TOPSECRET\n")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    return workspace.resolve()


@pytest.fixture
def ctx(root: Path) -> ToolContext:
    return ToolContext(
        settings=load_settings(),
        workspace=Workspace(root),
        doc=None,
        runner=None,
        emit=lambda event: None,
        redact=lambda s: s,
        state={},
    )


async def call(ctx: ToolContext, name: str, **args: Any) -> ToolResult:
    """Run a tool the way the agent does: arguments as JSON, checked, then run."""
    tool, checked = REGISTRY.prepare(name, json.dumps(args))
    return await tool.run(ctx, checked)


def patch(*lines: str) -> str:
    return "\n".join(["*** Begin Patch", *lines, "*** End Patch"])


async def apply(ctx: ToolContext, *lines: str) -> ToolResult:
    return await call(ctx, "apply_patch", patch=patch(*lines))


def write_notebook(path: Path) -> None:
    """A notebook of two cells: markdown ``intro``, code ``compute``."""
    nbf: Any = nbformat  # nbformat has no type hints
    nb = nbf.v4.new_notebook()
    nb.cells = [
        nbf.v4.new_markdown_cell("# Title", id="intro"),
        nbf.v4.new_code_cell("x = 1\nprint(x)", id="compute"),
    ]
    nbf.write(nb, str(path))


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- 1. paths stay inside the workspace ---------------------------------------------------

OUTSIDE_PATHS = ["../outside/secret.txt", "/etc/passwd", "file-link", "dir-link/secret.txt"]


@pytest.fixture
def links(root: Path) -> None:
    (root / "file-link").symlink_to(root.parent / "outside" / "secret.txt")
    (root / "dir-link").symlink_to(root.parent / "outside")


@pytest.mark.anyio
@pytest.mark.usefixtures("links")
@pytest.mark.parametrize("path", OUTSIDE_PATHS)
async def test_read_list_search_refuse_paths_outside(ctx: ToolContext, path: str) -> None:
    for name, args in [
        ("read_file", {"path": path}),
        ("list_files", {"path": path}),
        ("search_files", {"pattern": "TOPSECRET", "path": path}),
    ]:
        with pytest.raises(ToolError, match="outside the workspace") as info:
            await call(ctx, name, **args)
        assert "TOPSECRET" not in str(info.value)
    if "link" in path:
        with pytest.raises(ToolError, match="through a symlink"):
            await call(ctx, "read_file", path=path)


@pytest.mark.anyio
async def test_home_expansion_outside_is_refused(ctx: ToolContext, codexmax_isolated: Path) -> None:
    (codexmax_isolated / "notes.txt").write_text("private\n")
    with pytest.raises(ToolError, match="outside the workspace"):
        await call(ctx, "read_file", path="~/notes.txt")
    with pytest.raises(ToolError, match="outside the workspace"):
        await call(ctx, "shell", command="ls", cwd="~")


@pytest.mark.anyio
async def test_paths_inside_work_even_with_dotdot(ctx: ToolContext, root: Path) -> None:
    (root / "sub").mkdir()
    (root / "sub" / "a.txt").write_text("alpha\n")
    (root / "inner-link").symlink_to(root / "sub" / "a.txt")
    assert (await call(ctx, "read_file", path="sub/../sub/a.txt")).output == "1\talpha"
    assert (await call(ctx, "read_file", path=str(root / "sub" / "a.txt"))).output == "1\talpha"
    assert (await call(ctx, "read_file", path="inner-link")).output == "1\talpha"
    assert "sub/a.txt" in (await call(ctx, "list_files", path="sub")).output


@pytest.mark.anyio
@pytest.mark.usefixtures("links")
async def test_walking_the_root_does_not_follow_links_out(ctx: ToolContext) -> None:
    listed = await call(ctx, "list_files")
    assert "dir-link/secret.txt" not in listed.output
    found = await call(ctx, "search_files", pattern="TOPSECRET")
    # A symlinked file met while walking is read like any other file: its target is
    # outside, so its content must not come back (read_file refuses the same path).
    assert "TOPSECRET" not in found.output, found.output


@pytest.mark.anyio
@pytest.mark.usefixtures("links")
@pytest.mark.parametrize(
    "body",
    [
        ["*** Add File: ../outside/new.txt", "+x"],
        ["*** Add File: dir-link/new.txt", "+x"],
        ["*** Update File: /etc/passwd", "-root", "+evil"],
        ["*** Update File: file-link", "-TOPSECRET", "+changed"],
        ["*** Delete File: file-link"],
        ["*** Update File: a.txt", "*** Move to: ../outside/moved.txt"],
    ],
)
async def test_apply_patch_refuses_paths_outside(
    ctx: ToolContext, root: Path, body: list[str]
) -> None:
    (root / "a.txt").write_text("a\n")
    with pytest.raises(ToolError, match="outside the workspace"):
        await apply(ctx, *body)
    assert (root.parent / "outside" / "secret.txt").read_text() == "TOPSECRET\n"
    assert names(root.parent / "outside") == ["secret.txt"]
    assert (root / "a.txt").read_text() == "a\n"


@pytest.mark.anyio
@pytest.mark.usefixtures("links")
@pytest.mark.parametrize("cwd", ["..", "/etc", "dir-link"])
async def test_shell_cwd_outside_is_refused(ctx: ToolContext, cwd: str) -> None:
    with pytest.raises(ToolError, match="outside the workspace"):
        await call(ctx, "shell", command="pwd", cwd=cwd)


# -- 2. read_file -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_read_file_numbers_lines_and_reads_ranges(ctx: ToolContext, root: Path) -> None:
    (root / "f.txt").write_text("a\nb\nc\nd\ne\n")
    assert (await call(ctx, "read_file", path="f.txt")).output == "1\ta\n2\tb\n3\tc\n4\td\n5\te"
    part = await call(ctx, "read_file", path="f.txt", start_line=2, end_line=3)
    assert part.output == "2\tb\n3\tc\n(lines 2-3 of 5)"
    with pytest.raises(ToolError, match="has 5 lines"):
        await call(ctx, "read_file", path="f.txt", start_line=9)
    with pytest.raises(ToolError, match="is a folder"):
        await call(ctx, "read_file", path=".")
    with pytest.raises(ToolError, match="no such file"):
        await call(ctx, "read_file", path="missing.txt")


@pytest.mark.anyio
async def test_read_file_pages_long_files(ctx: ToolContext, root: Path) -> None:
    (root / "many.txt").write_text("".join(f"line {n}\n" for n in range(1, 2501)))
    # A page fits the tool output limit, so the model gets every line of it (and the note).
    ctx.settings.tool_output_limit = 100_000
    first = await call(ctx, "read_file", path="many.txt")
    assert first.output.splitlines()[-2] == "2000\tline 2000"
    assert first.output.endswith("(lines 1-2000 of 2500; read with start_line=2001 for more)")
    rest = await call(ctx, "read_file", path="many.txt", start_line=2001)
    assert rest.output.startswith("2001\tline 2001\n")
    assert "2500\tline 2500" in rest.output
    assert "for more" not in rest.output
    ctx.settings.tool_output_limit = 10_000
    page = await call(ctx, "read_file", path="many.txt")
    assert len(page.output) <= 10_000
    shown = page.output.splitlines()[-2].split("\t")[0]
    assert page.output.endswith(f"of 2500; read with start_line={int(shown) + 1} for more)")

    (root / "wide.txt").write_text(("x" * 1000 + "\n") * 100)
    wide = await call(ctx, "read_file", path="wide.txt")
    assert len(wide.output) < 62_000
    assert "read with start_line=" in wide.output


@pytest.mark.anyio
async def test_read_file_binary_notebook_and_redaction(ctx: ToolContext, root: Path) -> None:
    (root / "blob.bin").write_bytes(b"\x89PNG\x00\x01\x02" * 10)
    binary = await call(ctx, "read_file", path="blob.bin")
    assert binary.output == "blob.bin: binary file, 70 bytes"

    write_notebook(root / "nb.ipynb")
    shown = await call(ctx, "read_file", path="nb.ipynb")
    assert shown.summary == "2 cells"
    assert '"cell_type"' not in shown.output  # cells, not JSON
    assert "§1 md" in shown.output
    assert "§2 code" in shown.output
    assert "x = 1\nprint(x)" in shown.output

    (root / "cfg.txt").write_text("user=alice\npassword=hunter2\n")
    ctx.redact = lambda s: s.replace("hunter2", "[gone]")
    redacted = await call(ctx, "read_file", path="cfg.txt")
    assert redacted.output == "1\tuser=alice\n2\tpassword=[gone]"


# -- 3. list_files and search_files -----------------------------------------------------


@pytest.fixture
def tree(root: Path) -> Path:
    for rel in [
        ".git/config",
        "node_modules/pkg/index.js",
        "__pycache__/mod.cpython-311.pyc",
        ".venv/lib/site.py",
        "src/__pycache__/a.cpython-311.pyc",
        "src/a.py",
        "src/b.txt",
        "top.py",
    ]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("hello world\n")
    return root


@pytest.mark.anyio
@pytest.mark.usefixtures("tree")
async def test_list_files_skips_vcs_caches_envs_and_filters(ctx: ToolContext) -> None:
    listed = await call(ctx, "list_files")
    # os.walk order: a folder's own files, then its subfolders.
    assert listed.output.splitlines() == ["top.py  12", "src/a.py  12", "src/b.txt  12"]
    py = await call(ctx, "list_files", glob="*.py")
    assert py.output.splitlines() == ["top.py  12", "src/a.py  12"]
    assert (await call(ctx, "list_files", path="src", glob="*.txt")).output == "src/b.txt  12"
    assert (await call(ctx, "list_files", glob="*.csv")).output == "(no files)"
    assert (await call(ctx, "list_files", path="top.py")).output == "top.py (12 bytes)"


@pytest.mark.anyio
async def test_search_plain_regex_and_case(ctx: ToolContext, root: Path) -> None:
    (root / "s.txt").write_text("a.b\naxb\nHello there\n")
    plain = await call(ctx, "search_files", pattern="a.b")
    assert plain.output == "s.txt:1: a.b"
    regex = await call(ctx, "search_files", pattern="a.b", regex=True)
    assert regex.output == "s.txt:1: a.b\ns.txt:2: axb"
    assert (await call(ctx, "search_files", pattern="hello")).output == "s.txt:3: Hello there"
    strict = await call(ctx, "search_files", pattern="hello", case_sensitive=True)
    assert strict.output == "no matches"
    with pytest.raises(ToolError, match="not a valid regular expression"):
        await call(ctx, "search_files", pattern="(unclosed", regex=True)
    # The same text is fine when it is not a regex.
    assert (await call(ctx, "search_files", pattern="(unclosed")).output == "no matches"


@pytest.mark.anyio
@pytest.mark.usefixtures("tree")
async def test_search_skips_skipped_folders_and_reads_notebook_cells(
    ctx: ToolContext, root: Path
) -> None:
    write_notebook(root / "nb.ipynb")
    hits = await call(ctx, "search_files", pattern="hello world")
    assert hits.output.splitlines() == [
        "top.py:1: hello world",
        "src/a.py:1: hello world",
        "src/b.txt:1: hello world",
    ]
    assert (
        await call(ctx, "search_files", pattern="print(")
    ).output == "nb.ipynb#compute:2: print(x)"


@pytest.mark.anyio
async def test_search_caps_matches(ctx: ToolContext, root: Path) -> None:
    (root / "big.txt").write_text("needle\n" * 250)
    found = await call(ctx, "search_files", pattern="needle")
    lines = found.output.splitlines()
    assert len(lines) == 201
    assert lines[199] == "big.txt:200: needle"
    assert lines[-1] == "... 50 more matches"
    assert found.summary == "250 matches"


# -- 4. apply_patch ---------------------------------------------------------------------

THREE_FUNCS = "def f():\n    return 1\n\n\ndef g():\n    return 2\n\n\ndef h():\n    return 3\n"


@pytest.mark.anyio
async def test_patch_adds_updates_deletes_and_moves(ctx: ToolContext, root: Path) -> None:
    (root / "code.py").write_text(THREE_FUNCS)
    (root / "gone.txt").write_text("bye\n")
    (root / "old.txt").write_text("keep\nchange me\n")
    result = await apply(
        ctx,
        "*** Add File: pkg/new.py",
        "+print('hi')",
        "+",
        "*** Update File: code.py",
        "@@ def g():",
        "-    return 2",
        "+    return 20",
        "@@ def h():",
        "-    return 3",
        "+    return 30",
        "*** End of File",
        "*** Delete File: gone.txt",
        "*** Update File: old.txt",
        "*** Move to: moved/new.txt",
        " keep",
        "-change me",
        "+changed",
    )
    assert result.output.splitlines() == [
        "added pkg/new.py",
        "updated code.py (+2 -2)",
        "deleted gone.txt",
        "moved old.txt to moved/new.txt",
    ]
    assert (root / "pkg" / "new.py").read_text() == "print('hi')\n\n"
    assert (root / "code.py").read_text() == THREE_FUNCS.replace("2\n", "20\n").replace(
        "3\n", "30\n"
    )
    assert not (root / "gone.txt").exists()
    assert not (root / "old.txt").exists()
    assert (root / "moved" / "new.txt").read_text() == "keep\nchanged\n"


@pytest.mark.anyio
async def test_patch_header_seeks_and_end_of_file_pins(ctx: ToolContext, root: Path) -> None:
    # The same line in two places: the '@@' header picks the second one.
    (root / "twice.py").write_text("def a():\n    pass\n\n\ndef b():\n    pass\n")
    await apply(ctx, "*** Update File: twice.py", "@@ def b():", "-    pass", "+    return 1")
    assert (root / "twice.py").read_text() == "def a():\n    pass\n\n\ndef b():\n    return 1\n"
    # '*** End of File': the last 'x', not the first.
    (root / "ends.txt").write_text("x\ny\nx\n")
    await apply(ctx, "*** Update File: ends.txt", "-x", "+END", "*** End of File")
    assert (root / "ends.txt").read_text() == "x\ny\nEND\n"


@pytest.mark.anyio
async def test_patch_tolerates_whitespace_in_context(ctx: ToolContext, root: Path) -> None:
    (root / "w.py").write_text("if ready:   \n        total = 1\n        count = 2\n")
    await apply(
        ctx,
        "*** Update File: w.py",
        " if ready:",
        "     total = 1",
        "-    count = 2",
        "+    count = 3",
    )
    text = (root / "w.py").read_text()
    assert "count = 3" in text
    assert "count = 2" not in text


@pytest.mark.anyio
async def test_patch_loose_match_leaves_context_lines_as_they_were(
    ctx: ToolContext, root: Path
) -> None:
    # Context lines (' ') are unchanged by definition: when they only matched loosely,
    # the file's own text (here 8-space indentation) must stay, or the code breaks.
    (root / "w.py").write_text("def f():\n        total = 1\n        count = 2\n")
    await apply(
        ctx, "*** Update File: w.py", "     total = 1", "-        count = 2", "+        count = 3"
    )
    assert (root / "w.py").read_text() == "def f():\n        total = 1\n        count = 3\n"


@pytest.mark.anyio
async def test_patch_keeps_crlf(ctx: ToolContext, root: Path) -> None:
    (root / "win.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    await apply(ctx, "*** Update File: win.txt", " one", "-two", "+TWO", " three")
    assert (root / "win.txt").read_bytes() == b"one\r\nTWO\r\nthree\r\n"


@pytest.mark.anyio
async def test_patch_is_all_or_nothing(ctx: ToolContext, root: Path) -> None:
    (root / "a.py").write_text("alpha\n")
    (root / "b.py").write_text("beta\n")
    (root / "c.py").write_text("gamma\n")
    with pytest.raises(ToolError, match=r"b\.py, hunk 1: these lines are not in the file"):
        await apply(
            ctx,
            "*** Add File: d.py",
            "+delta",
            "*** Update File: a.py",
            "-alpha",
            "+ALPHA",
            "*** Delete File: c.py",
            "*** Update File: b.py",
            "-not there",
            "+x",
        )
    assert names(root) == ["a.py", "b.py", "c.py"]
    assert (root / "a.py").read_text() == "alpha\n"
    assert ctx.state == {}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (["*** Add File: exists.txt", "+x"], "already exists"),
        (["*** Update File: nb.ipynb", "-{", "+{"], "notebooks are changed with edit_notebook"),
        (["*** Add File: new.ipynb", "+{}"], "notebooks are changed with edit_notebook"),
        (["*** Update File: missing.txt", "-a", "+b"], "no such file"),
        (["*** Update File: exists.txt", "@@ nowhere", "-x", "+y"], "is not in the file"),
    ],
)
async def test_patch_refusals(ctx: ToolContext, root: Path, body: list[str], message: str) -> None:
    (root / "exists.txt").write_text("x\n")
    (root / "nb.ipynb").write_text("{\n}\n")
    with pytest.raises(ToolError, match=message):
        await apply(ctx, *body)
    assert (root / "exists.txt").read_text() == "x\n"
    assert (root / "nb.ipynb").read_text() == "{\n}\n"
    assert not (root / "new.ipynb").exists()


@pytest.mark.anyio
async def test_patch_cannot_move_a_file_onto_a_notebook(ctx: ToolContext, root: Path) -> None:
    # Notebooks are not patched as JSON; renaming a text file to .ipynb writes one anyway.
    (root / "notes.txt").write_text("not json\n")
    with pytest.raises(ToolError, match="edit_notebook"):
        await apply(ctx, "*** Update File: notes.txt", "*** Move to: notes.ipynb")
    assert not (root / "notes.ipynb").exists()


@pytest.mark.anyio
async def test_patch_propose_only_changes_nothing(ctx: ToolContext, root: Path) -> None:
    (root / "a.txt").write_text("old\n")
    seen: list[Any] = []
    ctx.propose_only = True
    ctx.before_file_change = seen.append
    result = await apply(ctx, "*** Update File: a.txt", "-old", "+new", "*** Add File: b.txt", "+b")
    assert result.output.startswith("PROPOSED")
    assert "-old\n+new" in result.output
    assert (root / "a.txt").read_text() == "old\n"
    assert not (root / "b.txt").exists()
    assert seen == []
    assert "file_diffs" not in ctx.state


@pytest.mark.anyio
async def test_patch_reports_each_file_before_change_and_keeps_diffs(
    ctx: ToolContext, root: Path
) -> None:
    (root / "a.txt").write_text("old\n")
    (root / "b.txt").write_text("b\n")
    (root / "c.txt").write_text("c\n")
    seen: list[Path] = []

    def before(path: Path) -> None:
        seen.append(path)
        if path == root / "a.txt":
            assert path.read_text() == "old\n"  # called before the change

    ctx.before_file_change = before
    await apply(
        ctx,
        "*** Update File: a.txt",
        "-old",
        "+new",
        "*** Delete File: b.txt",
        "*** Add File: n.txt",
        "+n",
        "*** Update File: c.txt",
        "*** Move to: d.txt",
    )
    assert seen == [root / "a.txt", root / "b.txt", root / "n.txt", root / "c.txt", root / "d.txt"]
    diffs = ctx.state["file_diffs"]
    assert "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-old\n+new\n" in diffs
    assert any(d.startswith("--- a/b.txt") and "-b\n" in d for d in diffs)
    assert any(d.startswith("--- a/n.txt") and "+n\n" in d for d in diffs)
    assert ctx.state["files_touched"] == {"a.txt", "b.txt", "n.txt", "d.txt"}


@pytest.mark.anyio
async def test_patch_diff_of_file_without_final_newline(ctx: ToolContext, root: Path) -> None:
    (root / "nt.txt").write_text("a\nb")
    result = await apply(ctx, "*** Update File: nt.txt", "-b", "+c")
    assert (root / "nt.txt").read_text() == "a\nc"
    assert result.output == "updated nt.txt (+1 -1)"
    diff = ctx.state["file_diffs"][0]
    assert "-b\n" in diff
    assert "+c" in diff.splitlines()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "*** Update File: a.txt\n-a\n+b\n*** End Patch",
            "must start with '\\*\\*\\* Begin Patch'",
        ),
        ("*** Begin Patch\n*** Update File: a.txt\n-a\n+b", "must end with '\\*\\*\\* End Patch'"),
        (patch("*** Update File: a.txt", "?a", "+b"), "starts with '\\?'; hunk lines start with"),
        (patch("*** Add File: b.txt", "no plus"), "every line must start with '\\+'"),
        (patch("*** Rename File: a.txt"), "expected '\\*\\*\\* Add File:'"),
        (patch("*** Update File: a.txt"), "no hunks"),
        (patch(), "changes no files"),
    ],
)
async def test_patch_parse_errors(ctx: ToolContext, root: Path, text: str, message: str) -> None:
    (root / "a.txt").write_text("a\n")
    with pytest.raises(ToolError, match=message):
        await call(ctx, "apply_patch", patch=text)
    assert (root / "a.txt").read_text() == "a\n"
    assert not (root / "b.txt").exists()


# -- 5. shell ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_shell_runs_in_cwd_and_reports_exit_and_output(ctx: ToolContext, root: Path) -> None:
    (root / "sub").mkdir()
    at_root = await call(ctx, "shell", command="pwd")
    assert at_root.output.splitlines()[1:] == [str(root)]
    assert at_root.ok
    assert at_root.output.startswith("exit 0 in ")
    in_sub = await call(ctx, "shell", command="pwd; touch made.txt", cwd="sub")
    assert in_sub.output.splitlines()[1:] == [str(root / "sub")]
    assert (root / "sub" / "made.txt").exists()
    failed = await call(ctx, "shell", command="echo out; echo err >&2; exit 3")
    assert not failed.ok
    assert failed.output.startswith("exit 3 in ")
    assert failed.output.splitlines()[1:] == ["out", "err"]


@pytest.mark.anyio
async def test_shell_timeout_kills_the_process_group(ctx: ToolContext, root: Path) -> None:
    started = time.monotonic()
    result = await call(ctx, "shell", command="sleep 30.25 & wait", timeout=1)
    assert time.monotonic() - started < 10
    assert not result.ok
    assert result.output.startswith("timed out after 1 s (killed, with every process it started")
    assert running("sleep 30.25") == []


def running(marker: str) -> list[int]:
    """Live processes whose command line holds ``marker`` (zombies do not count)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if marker in cmdline and stat.rsplit(")", 1)[1].split()[0] != "Z":
            found.append(int(entry.name))
    return found


@pytest.mark.anyio
async def test_shell_cuts_long_output_head_and_tail(ctx: ToolContext) -> None:
    result = await call(ctx, "shell", command="seq 1 30000")
    lines = result.output.splitlines()
    assert lines[1:4] == ["1", "2", "3"]
    assert lines[-1] == "30000"
    assert "characters cut" in result.output
    assert len(result.output) < 12_500


@pytest.mark.anyio
async def test_shell_environment_has_no_credentials(
    ctx: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = {
        "OPENAI_API_KEY": "sk-test-openai-0123456789abcdef",
        "GITHUB_TOKEN": "ghp_testtoken0123456789",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-0123456789",
        "CUSTOM_LLM": "custom-llm-credential-0123",
    }
    for name, value in credentials.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HARMLESS_SETTING", "visible-value")
    ctx.settings.api_key_env = "CUSTOM_LLM"
    result = await call(ctx, "shell", command="env")
    for name, value in credentials.items():
        assert name not in result.output
        assert value not in result.output
    env_names = {line.split("=", 1)[0] for line in result.output.splitlines()[1:]}
    assert {"PATH", "HARMLESS_SETTING"} <= env_names
    assert (await call(ctx, "shell", command="command -v ls")).ok


# -- 6. the destructive-command guard ---------------------------------------------------

REFUSED = [
    "rm -rf /",
    "rm -rf ~",
    "rm ../x",
    "mv a /tmp/x",
    "cp a /etc/x",
    "echo x > /etc/x",
    "echo x>/etc/x",
    "dd if=a of=/dev/sda",
    "find / -delete",
    "sudo ls",
    "chmod 777 /usr/bin/x",
    "git -C / clean -fdx",
    "rm $(cat list)",
    'eval "rm x"',
    "sed -i s/a/b/ /etc/hosts",
    "tar xf a.tar -C /",
    "ls && /bin/rm -rf /etc",
]
ALLOWED = [
    "rm build/x",
    "ls /",
    "cat /etc/hosts",
    "echo hi > out.txt",
    "python -m pytest -q",
    "find . -name '*.py'",
    "git status",
    "cp a b",
    "echo x > /dev/null",
    "mv a sub/b",
    "FOO=1 rm local.txt",
]


@pytest.mark.parametrize("command", REFUSED)
def test_guard_refuses(root: Path, command: str) -> None:
    assert check_command(command, root, Workspace(root))


@pytest.mark.parametrize("command", ALLOWED)
def test_guard_allows(root: Path, command: str) -> None:
    assert check_command(command, root, Workspace(root)) is None


def test_guard_refuses_a_glob_at_the_filesystem_root(root: Path) -> None:
    assert check_command("rm -rf /etc/*", root, Workspace(root))
    assert check_command("rm -rf /*", root, Workspace(root))


def test_guard_reads_through_shell_keywords_and_wrappers(root: Path) -> None:
    slipped = [
        command
        for command in [
            "time rm -rf /etc",
            "{ rm -rf /etc; }",
            "if true; then rm -rf /etc; fi",
            "for f in a; do rm -rf /etc; done",
            "exec rm -rf /etc",
            "command rm -rf /etc",
            "env rm -rf /etc",
            "nice rm -rf /etc",
            "cd / && rm -rf etc",
        ]
        if check_command(command, root, Workspace(root)) is None
    ]
    assert slipped == []


@pytest.fixture
def elsewhere() -> Iterator[Path]:
    """A folder outside the workspace and outside the temp folders commands may write."""
    folder = Path(tempfile.mkdtemp(prefix="cxguard-", dir="/var/tmp")).resolve()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.anyio
async def test_allow_destructive_outside_workspace_lets_shell_run_it(
    ctx: ToolContext, elsewhere: Path
) -> None:
    victim = elsewhere / "victim.txt"
    victim.write_text("x\n")
    with pytest.raises(ToolError, match="refused: rm would change"):
        await call(ctx, "shell", command=f"rm {victim}")
    assert victim.exists()
    ctx.settings.allow_destructive_outside_workspace = True
    ctx.settings.sandbox = False  # the guard off, and no sandbox: nothing stops it
    result = await call(ctx, "shell", command=f"rm {victim}")
    assert result.ok, result.output
    assert not victim.exists()


#: What the sandbox lets a command write besides the workspace (issue 10's probe): the
#: guard lets it through; the temp folders themselves (and what is outside) stay refused.
TEMP_ALLOWED = [
    "cp a.csv /tmp/a.csv",
    "touch /tmp/x",
    "echo a | tee /tmp/x",
    "dd if=a of=/dev/shm/x",
    "mv a /tmp/x",
    "rm -rf /tmp/cx-scratch",
    "echo x > /dev/shm/x",
]
TEMP_REFUSED = ["rm -rf /tmp/*", "rm -rf /tmp", "chmod 777 /dev/shm", "cp a /etc/x"]
#: Sources are read, not changed: only the destination of cp, ln, install, rsync counts.
SOURCES_ALLOWED = [
    "cp /etc/hosts .",
    "cp -r /usr/share/doc sub/",
    "ln -s /usr/share/dict words",
    "ln -s /usr/share/dict",
    "install -m 644 /etc/hosts local",
    "cp -t . /etc/hosts /etc/passwd",
    "cp --target-directory=sub /etc/hosts",
    "rsync -a /etc/hosts .",
]
SOURCES_REFUSED = [
    "mv /etc/hosts .",
    "cp a b /etc",
    "cp -t /etc a",
    "ln -s x /etc/evil",
    "install -m 4755 a /usr/local/bin/a",
    "rsync -a --remove-source-files /etc/hosts .",
]


@pytest.mark.parametrize("command", TEMP_ALLOWED + SOURCES_ALLOWED)
def test_guard_allows_what_the_sandbox_allows(root: Path, command: str) -> None:
    from jupyter_codexmax.sandbox.policy import temp_folders

    assert check_command(command, root, Workspace(root), writable=temp_folders()) is None


@pytest.mark.parametrize("command", TEMP_REFUSED + SOURCES_REFUSED)
def test_guard_still_refuses(root: Path, command: str) -> None:
    from jupyter_codexmax.sandbox.policy import temp_folders

    assert check_command(command, root, Workspace(root), writable=temp_folders())


@pytest.mark.anyio
async def test_shell_copies_to_temp_and_from_outside(ctx: ToolContext, root: Path) -> None:
    (root / "a.csv").write_text("1,2\n")
    target = Path(tempfile.gettempdir()) / f"cxguard-{time.time_ns()}.csv"
    try:
        result = await call(ctx, "shell", command=f"cp a.csv {target} && cp /etc/hosts .")
        assert result.ok, result.output
        assert target.read_text() == "1,2\n" and (root / "hosts").is_file()
    finally:
        target.unlink(missing_ok=True)


def test_guard_reads_a_command_as_shlex_does() -> None:
    """The guard's own lexer (linear) against POSIX shlex, on random command lines."""
    import random
    import shlex

    from jupyter_codexmax.tools._guard import _tokens

    def reference(command: str) -> list[str] | None:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        lexer.commenters = ""
        try:
            return list(lexer)
        except ValueError:
            return None

    def ours(command: str) -> list[str] | None:
        try:
            return _tokens(command)
        except ValueError:
            return None

    alphabet = [*"ab /.'\"\\;&|()<>$\t", "2>", ">>", "&&", "x y"]
    rng = random.Random(9)
    for _ in range(20_000):
        command = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        assert ours(command) == reference(command), command


def test_guard_is_linear(root: Path) -> None:
    """Probe p8: ``rm a/a/a/...`` of 1.2 MB took 165 s (quadratic, on the event loop)."""
    started = time.monotonic()
    for command in ("rm " + "a/" * 600_000, "rm " + "a " * 300_000, 'echo "' + "x" * 600_000):
        check_command(command, root, Workspace(root))
    assert time.monotonic() - started < 10


@pytest.mark.anyio
async def test_a_command_too_long_for_one_argument_is_refused_clearly(ctx: ToolContext) -> None:
    """Past 100,000 bytes (Linux takes at most 128 KiB in one argument): a clear error that
    says what to do, not "Argument list too long: .../python"."""
    with pytest.raises(ToolError, match="write the script to a file") as caught:
        await call(ctx, "shell", command="echo " + "é" * 60_000)
    assert "120,005 bytes long; at most 100,000" in str(caught.value)
    ok = await call(ctx, "shell", command="echo " + "x" * 99_000 + " | wc -c")
    assert ok.ok and "99001" in ok.output, ok.output


# -- 7. the registry's argument checks --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        (
            "delete_everything",
            "{}",
            "there is no tool 'delete_everything'; the tools are: read_file",
        ),
        ("read_file", '{"path": "a.txt"', "not valid JSON.*looks cut off"),
        ("read_file", "{path: a.txt}", "not valid JSON"),
        ("read_file", '["a.txt"]', "must be a JSON object"),
        ("read_file", '{"path": 3}', "'path' must be string, not integer"),
        (
            "read_file",
            '{"path": "a", "start_line": "2"}',
            "'start_line' must be integer, not string",
        ),
        (
            "read_file",
            '{"path": "a", "start_line": true}',
            "'start_line' must be integer, not boolean",
        ),
        ("read_file", '{"path": "a", "end_line": 2.5}', "'end_line' must be integer, not number"),
        ("read_file", '{"start_line": 1}', "missing 'path'"),
        ("read_file", '{"path": "a", "mode": "r"}', r"unknown key\(s\) \['mode'\]"),
        ("shell", '{"command": "ls", "timeout": "5"}', "'timeout' must be number, not string"),
        ("search_files", '{"pattern": "x", "regex": "yes"}', "'regex' must be boolean"),
        (
            "update_plan",
            '{"plan": [{"step": "a", "status": "done"}]}',
            r"'plan'\[0\]\.status must be one of 'pending', 'in_progress', 'completed', not 'done'",
        ),
        ("update_plan", '{"plan": [{"step": "a"}]}', r"'plan'\[0\] is missing 'status'"),
    ],
)
def test_registry_prepare_rejects_bad_calls(name: str, raw: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        REGISTRY.prepare(name, raw)


def test_registry_prepare_accepts_good_calls() -> None:
    tool, args = REGISTRY.prepare("shell", '{"command": "ls", "timeout": 5}')
    assert isinstance(tool, Shell)
    assert args == {"command": "ls", "timeout": 5}
    assert REGISTRY.prepare("list_files", "")[1] == {}
    assert REGISTRY.prepare("read_file", {"path": "a", "end_line": 3})[1]["end_line"] == 3
