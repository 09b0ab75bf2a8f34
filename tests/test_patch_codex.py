"""apply_patch against the Codex CLI's own apply_patch tests (openai/codex, codex-rs/apply-patch).

Reproduced as our own test data: the end-to-end scenarios of tests/fixtures/scenarios (input
files, a patch, the expected files), the CLI cases of tests/suite/tool.rs, and the unit cases of
src/parser.rs, src/seek_sequence.rs and src/lib.rs. Where this tool deliberately differs from
Codex (docs/agent.md, "apply_patch"), the test is named ``test_deliberate_*``, says what Codex
does, and asserts what we do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from jupyter_codexmax.config import load_settings
from jupyter_codexmax.tools.patch import ApplyPatch
from jupyter_codexmax.tools.registry import ToolContext, ToolError, ToolRegistry, ToolResult
from jupyter_codexmax.workspace import Workspace

REGISTRY = ToolRegistry([ApplyPatch()])

pytestmark = pytest.mark.anyio


@pytest.fixture
def root(tmp_path: Path) -> Path:
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


async def run(ctx: ToolContext, text: str) -> ToolResult:
    """Call apply_patch as the agent does: JSON arguments, checked, then run."""
    tool, checked = REGISTRY.prepare("apply_patch", json.dumps({"patch": text}))
    return await tool.run(ctx, checked)


def wrap(*lines: str) -> str:
    return "\n".join(["*** Begin Patch", *lines, "*** End Patch"])


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under ``root``."""
    return {
        p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def expected_snapshot(files: dict[str, str]) -> dict[str, bytes | None]:
    entries: dict[str, bytes | None] = {}
    for name, content in files.items():
        for parent in Path(name).parents:
            if str(parent) != ".":
                entries[parent.as_posix()] = None
        entries[name] = content.encode()
    return dict(sorted(entries.items()))


# -- 1. the scenarios (tests/fixtures/scenarios) -----------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    files: dict[str, str]
    patch: str
    expected: dict[str, str]
    #: A regex the tool error must match, when the patch must fail.
    error: str | None = None


SCENARIOS = [
    Scenario(
        "001_add_file",
        {},
        "*** Begin Patch\n*** Add File: bar.md\n+This is a new file\n*** End Patch\n",
        {"bar.md": "This is a new file\n"},
    ),
    Scenario(
        "002_multiple_operations",
        {"modify.txt": "line1\nline2\n", "delete.txt": "obsolete\n"},
        "*** Begin Patch\n*** Add File: nested/new.txt\n+created\n*** Delete File: delete.txt\n"
        "*** Update File: modify.txt\n@@\n-line2\n+changed\n*** End Patch\n",
        {"modify.txt": "line1\nchanged\n", "nested/new.txt": "created\n"},
    ),
    Scenario(
        "003_multiple_chunks",
        {"multi.txt": "line1\nline2\nline3\nline4\n"},
        "*** Begin Patch\n*** Update File: multi.txt\n@@\n-line2\n+changed2\n@@\n-line4\n"
        "+changed4\n*** End Patch\n",
        {"multi.txt": "line1\nchanged2\nline3\nchanged4\n"},
    ),
    Scenario(
        "004_move_to_new_directory",
        {"old/name.txt": "old content\n", "old/other.txt": "unrelated file\n"},
        "*** Begin Patch\n*** Update File: old/name.txt\n*** Move to: renamed/dir/name.txt\n@@\n"
        "-old content\n+new content\n*** End Patch\n",
        {"old/other.txt": "unrelated file\n", "renamed/dir/name.txt": "new content\n"},
    ),
    Scenario(
        "005_rejects_empty_patch",
        {"foo.txt": "stable\n"},
        "*** Begin Patch\n*** End Patch\n",
        {"foo.txt": "stable\n"},
        error="the patch changes no files",
    ),
    Scenario(
        "006_rejects_missing_context",
        {"modify.txt": "line1\nline2\n"},
        "*** Begin Patch\n*** Update File: modify.txt\n@@\n-missing\n+changed\n*** End Patch\n",
        {"modify.txt": "line1\nline2\n"},
        error=r"^modify\.txt, hunk 1: these lines are not in the file .*:\nmissing$",
    ),
    Scenario(
        "007_rejects_missing_file_delete",
        {"foo.txt": "stable\n"},
        "*** Begin Patch\n*** Delete File: missing.txt\n*** End Patch\n",
        {"foo.txt": "stable\n"},
        error="missing.txt: no such file",
    ),
    Scenario(
        "008_rejects_empty_update_hunk",
        {"foo.txt": "stable\n"},
        "*** Begin Patch\n*** Update File: foo.txt\n*** End Patch\n",
        {"foo.txt": "stable\n"},
        error="Update File foo.txt: no hunks",
    ),
    Scenario(
        "009_requires_existing_file_for_update",
        {"foo.txt": "stable\n"},
        "*** Begin Patch\n*** Update File: missing.txt\n@@\n-old\n+new\n*** End Patch\n",
        {"foo.txt": "stable\n"},
        error="missing.txt: no such file",
    ),
    Scenario(
        "012_delete_directory_fails",
        {"dir/foo.txt": "stable\n"},
        "*** Begin Patch\n*** Delete File: dir\n*** End Patch\n",
        {"dir/foo.txt": "stable\n"},
        error="dir is a folder, not a file",
    ),
    Scenario(
        "013_rejects_invalid_hunk_header",
        {"foo.txt": "stable\n"},
        "*** Begin Patch\n*** Frobnicate File: foo\n*** End Patch\n",
        {"foo.txt": "stable\n"},
        error=r"line 2 of the patch: expected '\*\*\* Add File:'.*'\*\*\* Frobnicate File: foo'",
    ),
    Scenario(
        "016_pure_addition_update_chunk",
        {"input.txt": "line1\nline2\n"},
        "*** Begin Patch\n*** Update File: input.txt\n@@\n+added line 1\n+added line 2\n"
        "*** End Patch\n",
        {"input.txt": "line1\nline2\nadded line 1\nadded line 2\n"},
    ),
    Scenario(
        "017_whitespace_padded_hunk_header",
        {"foo.txt": "old\n"},
        "*** Begin Patch\n  *** Update File: foo.txt\n@@\n-old\n+new\n*** End Patch\n",
        {"foo.txt": "new\n"},
    ),
    Scenario(
        "018_whitespace_padded_patch_markers",
        {"file.txt": "one\n"},
        " *** Begin Patch\n*** Update File: file.txt\n@@\n-one\n+two\n*** End Patch \n",
        {"file.txt": "two\n"},
    ),
    Scenario(
        "019_unicode_simple",
        {"foo.txt": "line1\nnaïve café\nline3\n"},
        "*** Begin Patch\n*** Update File: foo.txt\n@@\n line1\n-naïve café\n+naïve café ✅\n"
        "*** End Patch \n",
        {"foo.txt": "line1\nnaïve café ✅\nline3\n"},
    ),
    Scenario(
        "020_delete_file_success",
        {"keep.txt": "keep\n", "obsolete.txt": "obsolete\n"},
        "*** Begin Patch\n*** Delete File: obsolete.txt\n*** End Patch\n",
        {"keep.txt": "keep\n"},
    ),
    Scenario(
        "020_whitespace_padded_patch_marker_lines",
        {"file.txt": "one\n"},
        "*** Begin Patch \n*** Update File: file.txt\n@@\n-one\n+two\n *** End Patch\n",
        {"file.txt": "two\n"},
    ),
    Scenario(
        "021_update_file_deletion_only",
        {"lines.txt": "line1\nline2\nline3\n"},
        "*** Begin Patch\n*** Update File: lines.txt\n@@\n line1\n-line2\n line3\n*** End Patch\n",
        {"lines.txt": "line1\nline3\n"},
    ),
    Scenario(
        "022_update_file_end_of_file_marker",
        {"tail.txt": "first\nsecond\n"},
        "*** Begin Patch\n*** Update File: tail.txt\n@@\n first\n-second\n+second updated\n"
        "*** End of File\n*** End Patch\n",
        {"tail.txt": "first\nsecond updated\n"},
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_codex_scenario(ctx: ToolContext, root: Path, scenario: Scenario) -> None:
    write(root, dict(scenario.files))
    if scenario.error is None:
        await run(ctx, scenario.patch)
    else:
        with pytest.raises(ToolError) as caught:
            await run(ctx, scenario.patch)
        assert caught.match(scenario.error)
    assert snapshot(root) == expected_snapshot(scenario.expected)


# Scenarios where we deliberately differ: Codex's expected state, then ours.


async def test_deliberate_010_move_refuses_an_existing_destination(
    ctx: ToolContext, root: Path
) -> None:
    # Codex: renamed/dir/name.txt is overwritten with "new\n" and old/name.txt removed.
    files = {
        "old/name.txt": "from\n",
        "old/other.txt": "unrelated file\n",
        "renamed/dir/name.txt": "existing\n",
    }
    write(root, dict(files))
    text = wrap(
        "*** Update File: old/name.txt", "*** Move to: renamed/dir/name.txt", "@@", "-from", "+new"
    )
    with pytest.raises(ToolError, match=r"^renamed/dir/name\.txt already exists$"):
        await run(ctx, text)
    assert snapshot(root) == expected_snapshot(files)


async def test_deliberate_011_add_refuses_an_existing_file(ctx: ToolContext, root: Path) -> None:
    # Codex: duplicate.txt is overwritten with "new content\n".
    write(root, {"duplicate.txt": "old content\n"})
    with pytest.raises(ToolError, match=r"duplicate\.txt already exists; use '\*\*\* Update"):
        await run(ctx, wrap("*** Add File: duplicate.txt", "+new content"))
    assert (root / "duplicate.txt").read_text() == "old content\n"


async def test_deliberate_014_update_keeps_a_missing_final_newline(
    ctx: ToolContext, root: Path
) -> None:
    # Codex: "first line\nsecond line\n" (an update always ends the file with a newline).
    write(root, {"no_newline.txt": "no newline at end"})
    await run(
        ctx,
        wrap(
            "*** Update File: no_newline.txt",
            "@@",
            "-no newline at end",
            "+first line",
            "+second line",
        ),
    )
    assert (root / "no_newline.txt").read_text() == "first line\nsecond line"


async def test_deliberate_015_a_failing_patch_changes_nothing(ctx: ToolContext, root: Path) -> None:
    # Codex: created.txt is written before the update of missing.txt fails, and stays.
    text = wrap(
        "*** Add File: created.txt", "+hello", "*** Update File: missing.txt", "@@", "-old", "+new"
    )
    with pytest.raises(ToolError, match=r"missing\.txt: no such file"):
        await run(ctx, text)
    assert snapshot(root) == {}


# -- 2. the CLI cases (tests/suite/tool.rs) not already scenarios --------------------------


async def test_crlf_file_stays_crlf(ctx: ToolContext, root: Path) -> None:
    write(root, {"crlf.txt": b"one\r\ntwo\r\nthree\r\n"})
    await run(
        ctx,
        wrap(
            "*** Update File: crlf.txt",
            "@@",
            "-one",
            "+uno",
            "@@",
            " two",
            "+",
            "+between",
            " three",
        ),
    )
    assert (root / "crlf.txt").read_bytes() == b"uno\r\ntwo\r\n\r\nbetween\r\nthree\r\n"


async def test_change_order_with_repeated_lines(ctx: ToolContext, root: Path) -> None:
    write(root, {"repeated.txt": "a\nb\n"})
    await run(ctx, wrap("*** Update File: repeated.txt", "@@", "-a", "-b", "+b", "+b", "+a"))
    assert (root / "repeated.txt").read_text() == "b\nb\na\n"


async def test_context_line_keeps_its_own_ending(ctx: ToolContext, root: Path) -> None:
    write(root, {"repeated_context.txt": b"same\r\nsame\n"})
    await run(ctx, wrap("*** Update File: repeated_context.txt", "@@", "-same", " same"))
    assert (root / "repeated_context.txt").read_bytes() == b"same\n"


async def test_untouched_lines_keep_mixed_endings(ctx: ToolContext, root: Path) -> None:
    write(root, {"mixed.txt": b"one\r\ntwo\nthree\r\nfour\n"})
    await run(
        ctx, wrap("*** Update File: mixed.txt", "@@", " one", " two", "-three", "+THREE", " four")
    )
    assert (root / "mixed.txt").read_bytes() == b"one\r\ntwo\nTHREE\r\nfour\n"


async def test_deliberate_crlf_file_without_final_newline_stays_so(
    ctx: ToolContext, root: Path
) -> None:
    # Codex: b"ONE\r\ntwo\r\n" (it adds the final newline, in the file's style).
    write(root, {"no_trailing_newline.txt": b"one\r\ntwo"})
    await run(ctx, wrap("*** Update File: no_trailing_newline.txt", "@@", "-one", "+ONE"))
    assert (root / "no_trailing_newline.txt").read_bytes() == b"ONE\r\ntwo"


# -- 3. the parser's unit cases (src/parser.rs) -----------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bad", r"must start with '\*\*\* Begin Patch'"),
        ("*** Begin Patch\nbad", r"must end with '\*\*\* End Patch'"),
        (wrap("*** Update File: test.py"), "Update File test.py: no hunks"),
        (wrap(), "the patch changes no files"),
        (wrap("bad"), r"line 2 of the patch: expected '\*\*\* Add File:'"),
        (wrap("*** Update File: a.txt", "bad"), r"line 3 of the patch starts with 'b'"),
        (wrap("*** Update File: a.txt", "@@"), "the hunk at line 3 of the patch has no lines"),
        (wrap("*** Update File: a.txt", "@@", "bad"), r"line 4 of the patch starts with 'b'"),
        (
            wrap("*** Update File: a.txt", "@@", "*** End of File"),
            "the hunk at line 3 of the patch has no lines",
        ),
        (
            "<<EOF\n*** Begin Patch\n*** Update File: a.txt\nEOF\n",
            r"must end with '\*\*\* End Patch'",
        ),
    ],
)
async def test_parse_errors(ctx: ToolContext, root: Path, text: str, message: str) -> None:
    write(root, {"a.txt": "a\n", "test.py": "x\n"})
    with pytest.raises(ToolError, match=message):
        await run(ctx, text)
    assert (root / "a.txt").read_text() == "a\n"


async def test_parse_every_kind_of_operation(ctx: ToolContext, root: Path) -> None:
    write(root, {"path/delete.py": "x\n", "path/update.py": "def f():\n    pass\n"})
    await run(
        ctx,
        wrap(
            "*** Add File: path/add.py",
            "+abc",
            "+def",
            "*** Delete File: path/delete.py",
            "*** Update File: path/update.py",
            "*** Move to: path/update2.py",
            "@@ def f():",
            "-    pass",
            "+    return 123",
        ),
    )
    assert snapshot(root) == expected_snapshot(
        {"path/add.py": "abc\ndef\n", "path/update2.py": "def f():\n    return 123\n"}
    )


async def test_update_hunk_followed_by_add_file(ctx: ToolContext, root: Path) -> None:
    write(root, {"file.py": "x = 1\n"})
    await run(
        ctx, wrap("*** Update File: file.py", "@@", "+line", "*** Add File: other.py", "+content")
    )
    assert (root / "file.py").read_text() == "x = 1\nline\n"
    assert (root / "other.py").read_text() == "content\n"


async def test_first_hunk_needs_no_at_at_line(ctx: ToolContext, root: Path) -> None:
    write(root, {"file2.py": "import foo\n"})
    await run(ctx, wrap("*** Update File: file2.py", " import foo", "+bar"))
    assert (root / "file2.py").read_text() == "import foo\nbar\n"


@pytest.mark.parametrize("opener", ["<<EOF", "<<'EOF'", '<<"EOF"'])
async def test_patch_in_a_heredoc(ctx: ToolContext, root: Path, opener: str) -> None:
    write(root, {"file2.py": "import foo\n"})
    body = wrap("*** Update File: file2.py", " import foo", "+bar")
    await run(ctx, f"{opener}\n{body}\nEOF\n")
    assert (root / "file2.py").read_text() == "import foo\nbar\n"


async def test_deliberate_heredoc_with_mismatched_quotes_is_accepted(
    ctx: ToolContext, root: Path
) -> None:
    # Codex refuses <<"EOF' ('The first line of the patch must be ...'); we skip whatever
    # comes before '*** Begin Patch' and after '*** End Patch'.
    write(root, {"file2.py": "import foo\n"})
    body = wrap("*** Update File: file2.py", " import foo", "+bar")
    await run(ctx, f"<<\"EOF'\n{body}\nEOF\n")
    assert (root / "file2.py").read_text() == "import foo\nbar\n"


async def test_hunk_with_blank_and_context_lines(ctx: ToolContext, root: Path) -> None:
    # parse_update_file_chunk: a blank line in a hunk is an empty context line.
    write(root, {"f.txt": "change_context\n\ncontext\nremove\ncontext2\n"})
    await run(
        ctx,
        wrap(
            "*** Update File: f.txt",
            "@@ change_context",
            "",
            " context",
            "-remove",
            "+add",
            " context2",
        ),
    )
    assert (root / "f.txt").read_text() == "change_context\n\ncontext\nadd\ncontext2\n"


async def test_addition_pinned_to_the_end(ctx: ToolContext, root: Path) -> None:
    write(root, {"f.txt": "a\nb\n"})
    await run(ctx, wrap("*** Update File: f.txt", "@@", "+line", "*** End of File"))
    assert (root / "f.txt").read_text() == "a\nb\nline\n"


async def test_several_at_at_lines_narrow_the_place(ctx: ToolContext, root: Path) -> None:
    code = (
        "class Other:\n    def method():\n        context\n        old\n"
        "class BaseClass:\n    def method():\n        context\n        old\n"
    )
    write(root, {"c.py": code})
    await run(
        ctx,
        wrap(
            "*** Update File: c.py",
            "@@ class BaseClass:",
            "@@     def method():",
            "         context",
            "-        old",
            "+        new",
        ),
    )
    assert (root / "c.py").read_text() == code[: code.rindex("old")] + "new\n"


# -- 4. seek_sequence's unit cases and its Unicode table (src/seek_sequence.rs) ------------


@pytest.mark.parametrize(
    "content",
    ["foo\nbar\nbaz\n", "foo   \nbar\t\t\nbaz\n", "    foo   \n   bar\t\nbaz\n"],
    ids=["exact", "trailing-whitespace", "surrounding-whitespace"],
)
async def test_lines_match_ever_more_loosely(ctx: ToolContext, root: Path, content: str) -> None:
    write(root, {"s.txt": content})
    await run(ctx, wrap("*** Update File: s.txt", "-foo", "-bar", "+X"))
    assert (root / "s.txt").read_text() == "X\nbaz\n"


async def test_more_lines_than_the_file_is_an_error(ctx: ToolContext, root: Path) -> None:
    write(root, {"s.txt": "just one line\n"})
    with pytest.raises(ToolError, match="these lines are not in the file"):
        await run(ctx, wrap("*** Update File: s.txt", "-too", "-many", "-lines", "+x"))
    assert (root / "s.txt").read_text() == "just one line\n"


#: Codex's normalisation table: each character and the ASCII one it stands for.
UNICODE = {
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
    **dict.fromkeys("\u2018\u2019\u201a\u201b", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f", '"'),
    **dict.fromkeys(
        "\u00a0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000", " "
    ),
}


@pytest.mark.parametrize(
    ("fancy", "plain"), list(UNICODE.items()), ids=[f"U+{ord(c):04X}" for c in UNICODE]
)
async def test_unicode_punctuation_matches_ascii(
    ctx: ToolContext, root: Path, fancy: str, plain: str
) -> None:
    write(root, {"u.py": f"x = 1  # top{fancy}level\ny = 2\n"})
    await run(ctx, wrap("*** Update File: u.py", f"-x = 1  # top{plain}level", "+x = 3"))
    assert (root / "u.py").read_text() == "x = 3\ny = 2\n"


async def test_unicode_in_the_patch_matches_ascii_in_the_file(ctx: ToolContext, root: Path) -> None:
    write(root, {"u.py": 'say("it\'s - fine")\n'})
    await run(ctx, wrap("*** Update File: u.py", "-say(\u201cit\u2019s \u2014 fine\u201d)", "+ok"))
    assert (root / "u.py").read_text() == "ok\n"


# -- 5. lib.rs's unit cases --------------------------------------------------------------


async def test_add_update_delete_and_move(ctx: ToolContext, root: Path) -> None:
    write(root, {"update.txt": "foo\nbar\n", "del.txt": "x", "src.txt": "line\n"})
    await run(
        ctx,
        wrap(
            "*** Add File: add.txt",
            "+ab",
            "+cd",
            "*** Delete File: del.txt",
            "*** Update File: update.txt",
            "@@",
            " foo",
            "-bar",
            "+baz",
            "*** Update File: src.txt",
            "*** Move to: dst.txt",
            "@@",
            "-line",
            "+line2",
        ),
    )
    assert snapshot(root) == expected_snapshot(
        {"add.txt": "ab\ncd\n", "update.txt": "foo\nbaz\n", "dst.txt": "line2\n"}
    )


async def test_multiple_hunks_in_one_file(ctx: ToolContext, root: Path) -> None:
    write(root, {"multi.txt": "foo\nbar\nbaz\nqux\n"})
    result = await run(
        ctx,
        wrap(
            "*** Update File: multi.txt",
            *["@@", " foo", "-bar", "+BAR", "@@", " baz", "-qux", "+QUX"],
        ),
    )
    assert (root / "multi.txt").read_text() == "foo\nBAR\nbaz\nQUX\n"
    assert result.output == "updated multi.txt (+2 -2)"


@pytest.mark.parametrize("middle", [[" c", " d"], [" d"]], ids=["c-d", "d"])
async def test_interleaved_changes(ctx: ToolContext, root: Path, middle: list[str]) -> None:
    write(root, {"interleaved.txt": "a\nb\nc\nd\ne\nf\n"})
    await run(
        ctx,
        wrap(
            "*** Update File: interleaved.txt",
            "@@",
            " a",
            "-b",
            "+B",
            "@@",
            *middle,
            "-e",
            "+E",
            "@@",
            " f",
            "+g",
            "*** End of File",
        ),
    )
    assert (root / "interleaved.txt").read_text() == "a\nB\nc\nd\nE\nf\ng\n"


async def test_pure_addition_hunk_then_a_removal(ctx: ToolContext, root: Path) -> None:
    # The addition goes to the end even though its hunk comes first.
    write(root, {"panic.txt": "line1\nline2\nline3\n"})
    await run(
        ctx,
        wrap(
            "*** Update File: panic.txt",
            "@@",
            "+after-context",
            "+second-line",
            "@@",
            " line1",
            "-line2",
            "-line3",
            "+line2-replacement",
        ),
    )
    expected = "line1\nline2-replacement\nafter-context\nsecond-line\n"
    assert (root / "panic.txt").read_text() == expected


async def test_unicode_dash_and_non_breaking_hyphen(ctx: ToolContext, root: Path) -> None:
    write(root, {"unicode.py": "import asyncio  # local import \u2013 avoids top\u2011level dep\n"})
    await run(
        ctx,
        wrap(
            "*** Update File: unicode.py",
            "@@",
            "-import asyncio  # local import - avoids top-level dep",
            "+import asyncio  # HELLO",
        ),
    )
    assert (root / "unicode.py").read_text() == "import asyncio  # HELLO\n"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (["-foo", "+FOO", " bar", ""], "FOO\nbar\nbaz\n"),  # first line, blank line after
        ([" foo", " bar", "-baz", "+BAZ", ""], "foo\nbar\nBAZ\n"),  # last line, blank after
        (["+quux", "*** End of File", ""], "foo\nbar\nbaz\nquux\n"),  # a line after the marker
    ],
    ids=["first-line", "last-line", "insert-at-eof"],
)
async def test_blank_line_before_end_patch(
    ctx: ToolContext, root: Path, body: list[str], expected: str
) -> None:
    # lib.rs's unified-diff cases end their hunk with "\n" before "*** End Patch".
    write(root, {"f.txt": "foo\nbar\nbaz\n"})
    await run(ctx, wrap("*** Update File: f.txt", "@@", *body))
    assert (root / "f.txt").read_text() == expected


async def test_crlf_kept_on_update_and_append(ctx: ToolContext, root: Path) -> None:
    write(root, {"crlf.txt": b"a\r\nb\r\nc\r\n"})
    await run(
        ctx,
        wrap(
            "*** Update File: crlf.txt", "@@", " a", "-b", "+B", "@@", " c", "+d", "*** End of File"
        ),
    )
    assert (root / "crlf.txt").read_bytes() == b"a\r\nB\r\nc\r\nd\r\n"


async def test_carriage_return_inside_a_crlf_file(ctx: ToolContext, root: Path) -> None:
    write(root, {"crlf_cr_content.txt": b"foo\r\r\nbar\r\n"})
    await run(ctx, wrap("*** Update File: crlf_cr_content.txt", "@@", "+BAZ", "*** End of File"))
    assert (root / "crlf_cr_content.txt").read_bytes() == b"foo\r\r\nbar\r\nBAZ\r\n"


# -- 6. the defects of issue 8 (each failed before its fix) -------------------------------


@pytest.mark.parametrize("body", [["@@", "+new"], ["+new"]], ids=["after-at-at", "no-at-at"])
async def test_hunk_of_only_added_lines_goes_to_the_end(
    ctx: ToolContext, root: Path, body: list[str]
) -> None:
    write(root, {"f.py": "import os\n\nprint(os.name)\n"})
    await run(ctx, wrap("*** Update File: f.py", *body))
    assert (root / "f.py").read_text() == "import os\n\nprint(os.name)\nnew\n"


async def test_hunk_of_only_added_lines_before_a_final_blank_line(
    ctx: ToolContext, root: Path
) -> None:
    write(root, {"f.txt": "a\n\n"})
    await run(ctx, wrap("*** Update File: f.txt", "@@", "+b"))
    assert (root / "f.txt").read_text() == "a\nb\n\n"


async def test_blank_lines_after_end_of_file_and_before_end_patch(
    ctx: ToolContext, root: Path
) -> None:
    write(root, {"a.txt": "x\ny\n", "b.txt": "keep\n"})
    await run(
        ctx,
        "*** Begin Patch\n*** Update File: a.txt\n@@\n x\n-y\n+Y\n*** End of File\n\n"
        "*** Update File: b.txt\n@@\n-keep\n+kept\n\n\n*** Add File: c.txt\n+c\n\n*** End Patch",
    )
    assert snapshot(root) == expected_snapshot(
        {"a.txt": "x\nY\n", "b.txt": "kept\n", "c.txt": "c\n"}
    )


async def test_blank_line_ending_a_hunk_matches_when_the_file_has_it(
    ctx: ToolContext, root: Path
) -> None:
    # Tried with the blank line first (as Codex): the 'x' followed by a blank line is meant.
    write(root, {"f.txt": "x\ny\nx\n\nz\n"})
    await run(ctx, wrap("*** Update File: f.txt", "@@", "-x", "+X", ""))
    assert (root / "f.txt").read_text() == "x\ny\nX\n\nz\n"


@pytest.mark.parametrize(
    "header",
    ["  *** Update File: f.txt", "\t*** Update File: f.txt", "*** Update File:   f.txt  "],
)
async def test_markers_with_spaces_around_them(ctx: ToolContext, root: Path, header: str) -> None:
    write(root, {"f.txt": "old\n", "g.txt": "gone\n"})
    await run(
        ctx,
        "  *** Begin Patch  \n"
        f"{header}\n@@\n-old\n+new\n*** End of File  \n"
        "  *** Delete File: g.txt\n   *** Add File: h.txt  \n+h\n  *** End Patch  ",
    )
    assert snapshot(root) == expected_snapshot({"f.txt": "new\n", "h.txt": "h\n"})


@pytest.mark.parametrize(
    "body",
    [
        ["@@"],
        ["@@ def f():"],
        ["@@", "*** End of File"],
        ["@@", "-x", "+y", "@@"],
        ["-x", "+y", "*** End of File", "*** End of File"],
        ["@@", ""],
    ],
    ids=["at-at", "at-at-line", "end-of-file", "trailing-at-at", "two-end-markers", "blank"],
)
async def test_empty_hunk_is_refused(ctx: ToolContext, root: Path, body: list[str]) -> None:
    write(root, {"f.py": "def f():\n    x\n"})
    with pytest.raises(ToolError, match=r"^Update File f\.py: .*(no lines|only blank lines)"):
        await run(ctx, wrap("*** Update File: f.py", *body))
    assert (root / "f.py").read_text() == "def f():\n    x\n"


async def test_lone_carriage_return_is_a_line_break(ctx: ToolContext, root: Path) -> None:
    write(root, {"mac.txt": b"one\rtwo\rthree\r"})
    await run(ctx, wrap("*** Update File: mac.txt", " one", "-two", "+TWO", " three"))
    assert (root / "mac.txt").read_bytes() == b"one\rTWO\rthree\r"


async def test_new_lines_take_the_first_newline_style(ctx: ToolContext, root: Path) -> None:
    write(root, {"m.txt": b"a\nb\r\nc\n"})
    await run(ctx, wrap("*** Update File: m.txt", " b", "+new", " c"))
    assert (root / "m.txt").read_bytes() == b"a\nb\r\nnew\nc\n"


async def test_form_feed_in_a_line_is_not_a_line_break(ctx: ToolContext, root: Path) -> None:
    write(root, {"ff.py": "a = 1\n\x0c\nb = 2\n"})
    await run(ctx, wrap("*** Update File: ff.py", " a = 1", " \x0c", "-b = 2", "+b = 3"))
    assert (root / "ff.py").read_text() == "a = 1\n\x0c\nb = 3\n"


# -- 7. more of Codex's behaviour ---------------------------------------------------------


async def test_operations_apply_in_order_to_the_same_file(ctx: ToolContext, root: Path) -> None:
    write(root, {"a.txt": "one\ntwo\n", "b.txt": "old b\n"})
    result = await run(
        ctx,
        wrap(
            "*** Update File: a.txt",
            "-one",
            "+ONE",
            "*** Update File: a.txt",
            "*** Move to: c.txt",
            "-two",
            "+TWO",
            "*** Delete File: b.txt",
            "*** Add File: b.txt",
            "+new b",
            "*** Update File: c.txt",
            "+three",
        ),
    )
    assert snapshot(root) == expected_snapshot({"c.txt": "ONE\nTWO\nthree\n", "b.txt": "new b\n"})
    assert result.output.splitlines() == [
        "updated a.txt (+1 -1)",
        "moved a.txt to c.txt",
        "deleted b.txt",
        "added b.txt",
        "updated c.txt (+1 -0)",
    ]


async def test_a_file_removed_earlier_in_the_patch_is_gone(ctx: ToolContext, root: Path) -> None:
    write(root, {"a.txt": "a\n"})
    with pytest.raises(ToolError, match=r"a\.txt: no such file \(an earlier part of the patch"):
        await run(ctx, wrap("*** Delete File: a.txt", "*** Update File: a.txt", "-a", "+b"))
    assert (root / "a.txt").read_text() == "a\n"


async def test_add_file_without_lines_is_empty(ctx: ToolContext, root: Path) -> None:
    await run(ctx, wrap("*** Add File: empty.txt"))
    assert (root / "empty.txt").read_bytes() == b""


async def test_blank_line_inside_add_file_is_an_empty_line(ctx: ToolContext, root: Path) -> None:
    await run(ctx, wrap("*** Add File: a.py", "+x = 1", "", "+y = 2", ""))
    assert (root / "a.py").read_text() == "x = 1\n\ny = 2\n"


async def test_end_of_file_pins_the_hunk_to_the_end(ctx: ToolContext, root: Path) -> None:
    write(root, {"f.txt": "x\ny\n"})
    with pytest.raises(ToolError, match=r"f\.txt, hunk 1: these lines are in the file but not at"):
        await run(ctx, wrap("*** Update File: f.txt", "-x", "+X", "*** End of File"))
    assert (root / "f.txt").read_text() == "x\ny\n"


async def test_move_to_after_a_blank_line(ctx: ToolContext, root: Path) -> None:
    write(root, {"a.txt": "a\n"})
    await run(ctx, wrap("*** Update File: a.txt", "", "*** Move to: b.txt", "@@", "-a", "+b"))
    assert snapshot(root) == expected_snapshot({"b.txt": "b\n"})


async def test_line_numbers_after_at_at_get_a_hint(ctx: ToolContext, root: Path) -> None:
    write(root, {"a.txt": "a\n"})
    with pytest.raises(ToolError, match="'@@' takes a line of the file to find, not line numbers"):
        await run(ctx, wrap("*** Update File: a.txt", "@@ -1,2 +1,2 @@", "-a", "+b"))
    assert (root / "a.txt").read_text() == "a\n"


async def test_error_names_the_file_and_the_lines(ctx: ToolContext, root: Path) -> None:
    write(root, {"m.py": "a\nb\n"})
    with pytest.raises(ToolError) as caught:
        await run(ctx, wrap("*** Update File: m.py", "@@", " a", "-c", "+d"))
    assert str(caught.value) == (
        "m.py, hunk 1: these lines are not in the file (read it again and copy them exactly):\na\nc"
    )


# -- 8. where we deliberately differ, beyond the scenarios --------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            ["@@", "-b", "+B", "@@", "-a", "+A"],
            r"hunk 2: these lines are not in the file after the previous hunk \(hunks must",
        ),
        (
            ["@@ b", "@@ a", "-c", "+C"],
            r"hunk 1: the line after '@@' \('a'\) is not in the file after the '@@' line before",
        ),
        (["@@ b", "-a", "+A"], r"hunk 1: these lines are not in the file after the '@@' line"),
    ],
    ids=["hunks-out-of-order", "at-at-lines-out-of-order", "lines-before-their-at-at"],
)
async def test_error_says_when_lines_come_too_early(
    ctx: ToolContext, root: Path, body: list[str], message: str
) -> None:
    write(root, {"o.txt": "a\nb\nc\n"})
    with pytest.raises(ToolError, match=message):
        await run(ctx, wrap("*** Update File: o.txt", *body))
    assert (root / "o.txt").read_text() == "a\nb\nc\n"


async def test_deliberate_added_lines_follow_their_at_at_line(ctx: ToolContext, root: Path) -> None:
    # Codex: a hunk of only added lines goes to the end of the file even with an '@@' line
    # (here that would put the method outside its class).
    write(root, {"k.py": "class K:\n    a = 1\n\n\nprint(K)\n"})
    await run(ctx, wrap("*** Update File: k.py", "@@ class K:", "+    b = 2"))
    assert (root / "k.py").read_text() == "class K:\n    b = 2\n    a = 1\n\n\nprint(K)\n"


async def test_deliberate_added_lines_then_a_blank_line_go_to_the_end(
    ctx: ToolContext, root: Path
) -> None:
    # Codex: the hunk's old lines are [""], so "new" goes before the file's first blank line
    # (here after "import os"), or at the top of a file without one.
    write(root, {"f.py": "import os\n\nprint(os.name)\n", "g.py": "x = 1\n"})
    await run(
        ctx, wrap("*** Update File: f.py", "@@", "+new", "", "*** Update File: g.py", "+y = 2", "")
    )
    assert (root / "f.py").read_text() == "import os\n\nprint(os.name)\nnew\n"
    assert (root / "g.py").read_text() == "x = 1\ny = 2\n"


async def test_deliberate_text_after_end_patch_is_ignored(ctx: ToolContext, root: Path) -> None:
    # Codex: "The last line of the patch must be '*** End Patch'".
    write(root, {"a.txt": "a\n"})
    await run(ctx, wrap("*** Update File: a.txt", "-a", "+b") + "\nThat is the patch.\n")
    assert (root / "a.txt").read_text() == "b\n"


async def test_deliberate_move_without_hunks(ctx: ToolContext, root: Path) -> None:
    # Codex: "Update file hunk for path 'a.txt' is empty". A plain rename is allowed here.
    write(root, {"a.txt": "a\n"})
    await run(ctx, wrap("*** Update File: a.txt", "*** Move to: b.txt"))
    assert snapshot(root) == expected_snapshot({"b.txt": "a\n"})


async def test_deliberate_hunk_may_start_with_its_at_at_line(ctx: ToolContext, root: Path) -> None:
    # Codex looks for the hunk after the '@@' line and fails; we try at the line as well.
    write(root, {"f.py": "def f():\n    pass\n"})
    await run(ctx, wrap("*** Update File: f.py", "@@ def f():", " def f():", "-    pass", "+    1"))
    assert (root / "f.py").read_text() == "def f():\n    1\n"


async def test_deliberate_loose_match_keeps_context_as_in_the_file(
    ctx: ToolContext, root: Path
) -> None:
    # Codex writes the hunk's context lines as the patch has them; we keep the file's.
    write(root, {"w.py": "if a:\n        b = 1\n        c = 2\n"})
    await run(
        ctx, wrap("*** Update File: w.py", " if a:", "     b = 1", "-    c = 2", "+    c = 3")
    )
    assert (root / "w.py").read_text() == "if a:\n        b = 1\n    c = 3\n"
