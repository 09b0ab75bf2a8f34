"""The notebook layer on real notebooks (``../shared/corpus``): reading, byte-exact saving, cell
ids, checkpoints, the view the model sees, and the edit_notebook tool."""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_codexmax.config import load_settings
from jupyter_codexmax.events import CellEdited
from jupyter_codexmax.notebook.document import CellNotFound, NotebookError, NotebookReadOnly
from jupyter_codexmax.notebook.file import FileNotebook
from jupyter_codexmax.notebook.view import merge_streams, notebook_heading, render_cells
from jupyter_codexmax.tools.notebook import EditNotebook, ReadNotebook
from jupyter_codexmax.tools.registry import ToolContext, ToolError
from jupyter_codexmax.workspace import Workspace

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def _manifest() -> list[dict[str, str]]:
    with (CORPUS / "MANIFEST.tsv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


ROWS = {row["file"]: row for row in _manifest()}
READABLE = [f for f, r in ROWS.items() if r["read_as_v4"].startswith("ok")]
OLD = [f for f in READABLE if ROWS[f]["nbformat"][0] in "23"]
WRITABLE = [f for f in READABLE if f not in OLD]
IDENTICAL = [f for f, r in ROWS.items() if r["roundtrip_bytes"] == "IDENTICAL"]
VALID = {f for f, r in ROWS.items() if r["read_as_v4"] == "ok" and r["validate"] == "ok"}
UNREADABLE = {
    "nbformat/test3_no_metadata.ipynb": "metadata",
    "nbformat/test3_no_worksheets.ipynb": "worksheets",
    "nbformat/test3_worksheet_with_no_cells.ipynb": "cells",
}
MARKER = re.compile(r"\[\.\.\. ([\d,]+) lines, ([\d,]+) characters cut \.\.\.\]")
FACTORIALS = "nbclient/Factorials.ipynb"  # c1 "i, j = 1, 1"; c2 a loop printing j
SKIP_EXCEPTIONS = "nbclient/Skip_Exceptions_with_Cell_Tags.ipynb"  # written with indent=4
HEADER = re.compile(r"^§(\d+) (.+?) (\S+)(?: \[(\d+)\])?(?: attachments=\S+)?$", re.M)


#: Corpus notebooks missing required keys, and what reading them fills (or renames).
FILLED = {
    "nbclient/Output.ipynb": "kernelspec name; kernelspec display_name",
    "nbformat/invalid.ipynb": "source of 1 cell",
    "nbformat/invalid_unique_cell_id.ipynb": "1 repeated cell id renamed",
    "nbformat/no_min_version.ipynb": "nbformat_minor",
    "nbformat/v4_5_no_cell_id.ipynb": "id of 1 cell",
}


def expected_version(row: dict[str, str]) -> tuple[int, int]:
    """The version the manifest gives; a v4 file without a minor is read as 4.4 (the last
    minor without cell ids)."""
    major, _, minor = row["nbformat"].split()[0].partition(".")
    return int(major), int(minor or (4 if major == "4" else 0))


def joined(value: Any) -> Any:
    """JSON with multi-line strings joined (nbformat stores them as lists of lines or not)."""
    if isinstance(value, dict):
        return {k: joined(v) for k, v in value.items()}
    if isinstance(value, list):
        if value and all(isinstance(v, str) for v in value):
            return "".join(value)
        return [joined(v) for v in value]
    return value


def image_data(node: Any) -> list[str]:
    """Every base64 image payload in a notebook's JSON (outputs and attachments)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("image/png", "image/jpeg", "image/gif") and isinstance(value, str | list):
                found.append("".join(value).replace("\n", ""))
            else:
                found.extend(image_data(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(image_data(value))
    return found


def aged(path: Path) -> int:
    """Set the file's mtime an hour back (so any rewrite shows) and return it."""
    stamp = path.stat().st_mtime_ns - 3600 * 10**9
    os.utime(path, ns=(stamp, stamp))
    return stamp


def write_nb(path: Path, cells: list[dict[str, Any]], minor: int = 4) -> Path:
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": minor}
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


def code(source: str, outputs: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": outputs or [],
        "source": source,
        **extra,
    }


def stream(text: str | list[str], name: str = "stdout") -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}


def copy_nb(tmp_path: Path, name: str) -> Path:
    """A copy of a corpus notebook, alone in its own folder under tmp_path."""
    folder = tmp_path / name.replace("/", "__")
    folder.mkdir()
    return Path(shutil.copy(CORPUS / name, folder))


def tool_context(
    doc: FileNotebook, tmp_path: Path, *, propose_only: bool = False
) -> tuple[ToolContext, list[Any]]:
    """A context for the tools, and the list its events go to."""
    events: list[Any] = []
    ctx = ToolContext(
        settings=load_settings(),
        workspace=Workspace(tmp_path.resolve()),
        doc=doc,
        runner=None,
        emit=events.append,
        redact=lambda s: s,
        propose_only=propose_only,
        state={},
    )
    return ctx, events


async def edit(ctx: ToolContext, *edits: dict[str, Any]) -> str:
    return (await EditNotebook().run(ctx, {"edits": list(edits)})).output


# -- 1. reading ------------------------------------------------------------------------------


def test_manifest_lists_the_corpus(shared: Path) -> None:
    assert shared / "corpus" == CORPUS
    assert len(ROWS) == 46
    assert {f for f in ROWS if f not in READABLE} == set(UNREADABLE)
    assert sorted(OLD) == [
        f"nbformat/{n}.ipynb" for n in ("test2", "test3", "test3_no_min_version")
    ]


@pytest.mark.parametrize("name", READABLE)
def test_corpus_notebook_opens(name: str) -> None:
    doc = FileNotebook.open(CORPUS / name)
    assert doc.version == expected_version(ROWS[name])
    assert len(doc.ids) == len(doc.cells) == len(set(doc.ids))
    assert doc.writable == (name not in OLD)


def one_line_error(path: Path) -> str:
    with pytest.raises(NotebookError) as info:
        FileNotebook.open(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


@pytest.mark.parametrize(("name", "reason"), UNREADABLE.items())
def test_unreadable_corpus_notebook(name: str, reason: str) -> None:
    assert reason in one_line_error(CORPUS / name)


BAD_INPUTS: dict[str, tuple[bytes | None, str]] = {
    "not-json": (b'{\n "nbformat": 4,\n "cells": [,]\n}', "invalid JSON at line 3 column 12"),
    "array": (b"[1, 2]", "the JSON is not an object"),
    "no-version": (b'{"cells": [], "metadata": {}}', "no nbformat version"),
    "latin-1": ('{"nbformat": 4, "metadata": {"a": "é"}}'.encode("latin-1"), "not UTF-8"),
    "minor-not-a-number": (
        b'{"nbformat": 4, "nbformat_minor": "x", "cells": [], "metadata": {}}',
        "",
    ),
    "missing": (None, "no such file"),
    "folder": (b"", "is a folder"),
}


@pytest.mark.parametrize(("raw", "reason"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_a_one_line_error(tmp_path: Path, raw: bytes | None, reason: str) -> None:
    path = tmp_path / "bad.ipynb"
    if raw:
        path.write_bytes(raw)
    elif raw is not None:
        path.mkdir()
    assert reason in one_line_error(path)


# -- 2. byte-exact, writing what was read ----------------------------------------------------


@pytest.mark.parametrize("name", [n for n in IDENTICAL if n not in FILLED])
def test_unedited_notebook_is_byte_identical(name: str) -> None:
    path = CORPUS / name
    assert FileNotebook.open(path).current_bytes() == path.read_bytes()


@pytest.mark.anyio
@pytest.mark.parametrize("name", [n for n in WRITABLE if n not in FILLED])
async def test_edit_keeps_untouched_cells(tmp_path: Path, name: str) -> None:
    path = copy_nb(tmp_path, name)
    original = json.loads(path.read_text(encoding="utf-8"))
    doc = FileNotebook.open(path)
    at = min(1, len(doc.cells))
    new_id = await doc.insert_cell(1, "markdown", "A new cell.")
    assert await doc.save()

    saved = json.loads(path.read_text(encoding="utf-8"))
    new = saved["cells"].pop(at)
    assert joined(saved["cells"]) == joined(original["cells"])
    assert joined(new["source"]) == "A new cell."
    assert saved["nbformat"] == 4
    assert saved.get("nbformat_minor") == original.get("nbformat_minor")
    if doc.version >= (4, 5):  # new cells get an id of 8 hex digits, written to the file
        assert re.fullmatch(r"[0-9a-f]{8}", new_id)
        assert new["id"] == new_id
    else:  # a session id, never written
        assert re.fullmatch(r"c\d+", new_id)
        assert "id" not in new
    if name in VALID:
        nbformat.validate(saved)


def kept_in(original: Any, saved: Any, path: str = "") -> list[str]:
    """Where ``saved`` lacks or changed something of ``original`` (texts joined); keys only
    ``saved`` has are fine."""
    if isinstance(original, dict) and isinstance(saved, dict):
        return [
            problem
            for key, value in original.items()
            for problem in (
                kept_in(value, saved[key], f"{path}/{key}")
                if key in saved
                else [f"{path}/{key}: dropped"]
            )
        ]
    if (
        isinstance(original, list)
        and isinstance(saved, list)
        and len(original) == len(saved)
        and not all(isinstance(v, str) for v in original)
    ):
        return [
            p
            for i, pair in enumerate(zip(original, saved, strict=True))
            for p in kept_in(*pair, f"{path}/{i}")
        ]
    return [] if joined(original) == joined(saved) else [f"{path}: changed"]


@pytest.mark.anyio
@pytest.mark.parametrize(("name", "filled"), FILLED.items())
async def test_missing_keys_are_filled_and_reach_the_file_only_when_it_is_written(
    tmp_path: Path, name: str, filled: str
) -> None:
    path = copy_nb(tmp_path, name)
    before = path.read_bytes()
    stamp = aged(path)
    original = json.loads(before)
    doc = FileNotebook.open(path)
    assert doc.filled == filled
    assert not await doc.save()
    assert path.read_bytes() == before and path.stat().st_mtime_ns == stamp

    await doc.insert_cell(len(doc.cells), "markdown", "A new cell.")
    assert await doc.save() and doc.writes == 1
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert joined(saved["cells"].pop()["source"]) == "A new cell."
    if "renamed" in filled:  # nbformat renames a repeated id on reading too
        (renamed,) = [
            i
            for i, (a, b) in enumerate(zip(original["cells"], saved["cells"], strict=True))
            if a["id"] != b["id"]
        ]
        assert saved["cells"][renamed]["id"] == doc.ids[renamed]
        original["cells"][renamed]["id"] = doc.ids[renamed]
    assert kept_in(original, saved) == [], "everything that was there is kept"
    if name == "nbformat/invalid.ipynb":  # also a 'heading' cell and a bad output: kept
        assert [c["cell_type"] for c in saved["cells"]].count("heading") == 1
    else:  # missing keys were its only fault
        nbformat.validate(nbformat.from_dict(saved))


@pytest.mark.anyio
@pytest.mark.parametrize("name", OLD)
async def test_old_formats_are_read_only(tmp_path: Path, name: str) -> None:
    path = copy_nb(tmp_path, name)
    before = path.read_bytes()
    stamp = aged(path)
    doc = FileNotebook.open(path)
    assert not doc.writable
    assert "read-only" in notebook_heading(doc)
    with pytest.raises(NotebookReadOnly, match="nbconvert --to notebook"):
        await doc.insert_cell(0, "code", "x = 1")
    if doc.cells:
        first = doc.ids[0]
        for change in (doc.set_source(first, "x"), doc.delete_cell(first), doc.move_cell(first, 1)):
            with pytest.raises(NotebookReadOnly):
                await change
    with pytest.raises(NotebookReadOnly):
        await doc.restore(doc.checkpoint())
    ctx, events = tool_context(doc, tmp_path)
    with pytest.raises(ToolError, match="nbformat"):
        await EditNotebook().run(ctx, {"edits": [{"action": "insert", "source": "x"}]})
    assert not await doc.save()
    assert events == []
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == stamp


# -- 3. ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["nbformat/test4.5.ipynb", "nbclient/Error.ipynb", "nbconvert/exporters_rst_output.ipynb"],
)
def test_own_ids_in_45(name: str) -> None:
    doc = FileNotebook.open(CORPUS / name)
    assert doc.has_own_ids
    assert doc.ids == [c["id"] for c in json.loads((CORPUS / name).read_text())["cells"]]


@pytest.mark.anyio
async def test_session_ids_of_older_notebooks_are_never_written(tmp_path: Path) -> None:
    path = copy_nb(tmp_path, "nbformat/test4.ipynb")  # nbformat 4.0, 9 cells
    doc = FileNotebook.open(path)
    assert doc.ids == [f"c{n}" for n in range(1, 10)]
    assert await doc.insert_cell(0, "code", "x = 1") == "c10"
    await doc.set_source("c3", "changed", "raw")
    assert doc.ids[3] == "c3"
    assert await doc.save()
    assert '"id"' not in path.read_text(encoding="utf-8")


def test_short_ids_and_prefixes(tmp_path: Path) -> None:
    ids = [
        "abc",
        "0123456789ab",
        "d5202f0f-21b8-4509-a9e2-45caf1c7db7a",
        "d5202f0f-99b8-4509-a9e2-45caf1c7db7a",
        "5145b05f-3a07-4cff-8738-516a9c27cb58",
        "0123456789abcdef",
    ]
    path = write_nb(tmp_path / "ids.ipynb", [code(f"x = {n}", id=i) for n, i in enumerate(ids)], 5)
    doc = FileNotebook.open(path)
    assert doc.ids == ids
    shown = ["abc", "0123456789ab", "d5202f0f-2", "d5202f0f-9", "5145b05f", "0123456789abc"]
    assert [doc.short_id(i) for i in range(len(ids))] == shown
    assert [doc.index_of(s) for s in shown] == list(range(len(ids)))
    assert doc.index_of("5145") == 4
    assert doc.index_of(" d5202f0f-21b8 ") == 2
    with pytest.raises(CellNotFound, match="2 cells"):
        doc.index_of("d5202f0f")
    for unknown in ("zzz", "", "abcd"):
        with pytest.raises(CellNotFound, match="no cell"):
            doc.index_of(unknown)
    assert [h[2] for h in HEADER.findall(render_cells(doc).text)] == shown


# -- 4. saving ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_save_only_when_dirty_atomically_keeping_permissions(tmp_path: Path) -> None:
    path = copy_nb(tmp_path, FACTORIALS)
    path.chmod(0o600)
    stamp = aged(path)
    doc = FileNotebook.open(path)
    assert not await doc.save()
    assert path.stat().st_mtime_ns == stamp
    await doc.set_source("c1", "i, j = 0, 1")
    dirty = doc.dirty
    assert await doc.save()
    assert (dirty, doc.dirty) == (True, False)
    assert json.loads(path.read_text())["cells"][0]["source"] == ["i, j = 0, 1"]
    assert path.read_bytes() == doc.current_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    stamp = aged(path)
    assert not await doc.save()
    assert path.stat().st_mtime_ns == stamp


@pytest.mark.anyio
async def test_failed_write_leaves_the_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = copy_nb(tmp_path, FACTORIALS)
    before = path.read_bytes()
    doc = FileNotebook.open(path)
    await doc.set_source("c1", "changed")

    def disk_full(src: str, dst: str, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("jupyter_codexmax.safefs.os.rename", disk_full)
    with pytest.raises(OSError, match="No space"):
        await doc.save()
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


@pytest.mark.anyio
async def test_refuses_to_overwrite_a_file_changed_on_disk(tmp_path: Path) -> None:
    path = copy_nb(tmp_path, FACTORIALS)
    doc = FileNotebook.open(path)
    theirs = path.read_bytes().replace(b"1, 1", b"2, 2")
    path.write_bytes(theirs)
    await doc.set_source("c1", "mine")
    with pytest.raises(NotebookError, match="changed on disk") as info:
        await doc.save()
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)
    assert path.read_bytes() == theirs


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "via_tool"),
    [(SKIP_EXCEPTIONS, False), (SKIP_EXCEPTIONS, True), (FACTORIALS, False)],
)
async def test_reverted_edit_writes_nothing(tmp_path: Path, name: str, via_tool: bool) -> None:
    path = copy_nb(tmp_path, name)
    before = path.read_bytes()
    stamp = aged(path)
    doc = FileNotebook.open(path)
    # Skip_Exceptions is written with indent=4: our writer's bytes differ from the file's
    assert (doc.current_bytes() == before) == (ROWS[name]["roundtrip_bytes"] == "IDENTICAL")
    old = doc.cell("c1")["source"]
    if via_tool:
        ctx, _ = tool_context(doc, tmp_path)
        await edit(
            ctx,
            {"action": "replace", "cell_id": "c1", "source": "x = 1"},
            {"action": "replace", "cell_id": "c1", "source": old},
        )
    else:
        await doc.set_source("c1", "something else")
        await doc.set_source("c1", old)
        assert not await doc.save()
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == stamp


# -- 5. checkpoints ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_checkpoint_restore(tmp_path: Path) -> None:
    path = copy_nb(tmp_path, "nbformat/test4.5.ipynb")
    before = path.read_bytes()
    doc = FileNotebook.open(path)
    cells, ids, metadata = copy.deepcopy(doc.cells), doc.ids, copy.deepcopy(doc.metadata)
    point = doc.checkpoint("before")
    await doc.insert_cell(0, "code", "new")
    await doc.delete_cell(ids[1])
    await doc.set_source(ids[3], "now markdown", "markdown")
    await doc.move_cell(ids[4], 0)
    doc.nb.cells[-1]["source"] = "changed in place"
    doc.metadata["codexmax"] = {"session": "x"}
    await doc.restore(point)
    assert doc.cells == cells
    assert doc.ids == ids
    assert doc.metadata == metadata
    assert doc.current_bytes() == before
    assert not await doc.save()
    assert path.read_bytes() == before


# -- 6. the view -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", READABLE)
def test_view_shows_every_source_line(name: str) -> None:
    doc = FileNotebook.open(CORPUS / name)
    view = render_cells(doc, budget=10**9)
    assert (view.first, view.last, view.total) == (1, len(doc.cells), len(doc.cells))
    assert "read_notebook start=" not in view.text
    for cell in doc.cells:
        for line in str(cell.get("source", "")).splitlines():
            assert line in view.text
    headers = HEADER.findall(view.text)
    assert [int(h[0]) for h in headers] == list(range(1, len(doc.cells) + 1))
    for index, (_, kind, handle, count) in enumerate(headers):
        cell = doc.cells[index]
        assert handle == doc.short_id(index)
        assert kind == {"markdown": "md"}.get(cell["cell_type"], cell["cell_type"])
        assert count == str(cell.get("execution_count") or "")
    assert "\x1b" not in view.text
    for data in image_data(json.loads((CORPUS / name).read_text(encoding="utf-8"))):
        assert data[:40] not in view.text


def test_view_removes_ansi_codes() -> None:
    path = CORPUS / "nbformat/many_tracebacks.ipynb"
    assert "\\u001b[" in path.read_text()
    text = render_cells(FileNotebook.open(path)).text
    assert "\x1b" not in text
    assert "» error NameError: name 'iAmNotDefined' is not defined" in text
    assert "\n----> 1 iAmNotDefined\n" in text


@pytest.mark.parametrize(
    ("name", "mime", "size"),
    [
        ("nbclient/Inline_Image.ipynb", "image/png", "200x80"),
        ("nbconvert/notebook2.ipynb", "image/png", "152x86"),
        ("nbconvert/notebook4_jpeg.ipynb", "image/jpeg", "500x373"),
    ],
)
def test_view_images(name: str, mime: str, size: str) -> None:
    doc = FileNotebook.open(CORPUS / name)
    payloads = image_data(json.loads((CORPUS / name).read_text(encoding="utf-8")))
    sent = render_cells(doc)
    assert re.search(rf"\[image 1: {mime} {size}, [\d,]+ KB; attached\]", sent.text)
    assert [image.mime for image in sent.images] == [mime]
    assert sent.images[0].data in payloads
    assert sent.images[0].data_url.startswith(f"data:{mime};base64,")
    withheld = render_cells(doc, image_ok=False)
    assert withheld.images == []
    assert re.search(rf"\[image: {mime} {size}, [\d,]+ KB; not sent\]", withheld.text)
    for text in (sent.text, withheld.text):
        assert all(data[:40] not in text for data in payloads)
        assert "base64" not in text


def test_view_summarises_widgets() -> None:
    doc = FileNotebook.open(CORPUS / "nbconvert/Widget_List.ipynb")
    text = render_cells(doc, budget=10**9).text
    assert text.count("[widget ") == 41  # every widget output, named from the saved state
    assert "[widget IntSliderModel] IntSlider(value=7" in text
    assert "[widget widget]" not in text
    assert "model_id" not in text


def test_view_cuts_long_outputs_and_summarises_html(tmp_path: Path) -> None:
    lines = [f"line {n:05d} " + "x" * 38 + "\n" for n in range(2000)]  # 100,000 characters
    html = "<table><tr><td>a</td></tr><tr><td>b &amp; c</td></tr></table><script>go()</script>"
    outputs = [
        stream("".join(lines[:1000])),
        stream("".join(lines[1000:])),
        {"output_type": "display_data", "data": {"text/html": html}, "metadata": {}},
    ]
    path = write_nb(tmp_path / "long.ipynb", [code("print(big)", outputs)])
    text = render_cells(FileNotebook.open(path)).text
    assert text.count("» stdout") == 1  # the two streams are shown as one
    section = text.split("» stdout\n", 1)[1].split("\n» display", 1)[0]
    assert len(section) < 1000
    match = MARKER.search(section)
    assert match
    head, tail = section.split(match.group(0) + "\n")
    cut_lines, cut_chars = (int(g.replace(",", "")) for g in match.groups())
    assert head.startswith(lines[0])
    assert tail.endswith(lines[-1].rstrip("\n"))
    assert len(head) + cut_chars + len(tail) + 1 == 100_000
    assert head.count("\n") + cut_lines + tail.count("\n") + 1 == 2000
    assert "» display\n[HTML table, 2 rows] a b & c" in text
    assert "<td>" not in text
    assert "go()" not in text


def test_merge_streams_joins_consecutive_same_name() -> None:
    display = {"output_type": "display_data", "data": {"text/plain": "x"}, "metadata": {}}
    outputs = [
        *(stream("a\n"), stream(["b", "\n"]), stream("c\n", "stderr"), stream("d\n")),
        *(display, stream("e"), stream("f")),
    ]
    before = copy.deepcopy(outputs)
    assert [(o["output_type"], o.get("name"), o.get("text")) for o in merge_streams(outputs)] == [
        ("stream", "stdout", "a\nb\n"),
        ("stream", "stderr", "c\n"),
        ("stream", "stdout", "d\n"),
        ("display_data", None, None),
        ("stream", "stdout", "ef"),
    ]
    assert outputs == before


def test_view_pages_hold_whole_cells() -> None:
    doc = FileNotebook.open(CORPUS / "nbconvert/Widget_List.ipynb")
    total = len(doc.cells)
    seen: list[int] = []
    start = 1
    while start <= total:
        view = render_cells(doc, start=start, budget=3000)
        numbers = [int(h[0]) for h in HEADER.findall(view.text)]
        assert numbers == list(range(start, view.last + 1))
        assert len(view.text) <= 3000 + 200 or len(numbers) == 1
        for number in numbers:
            for line in str(doc.cells[number - 1]["source"]).splitlines():
                assert line in view.text
        if view.last < total:
            assert view.text.endswith(
                f"\n§ (cells {start}-{view.last} of {total} shown; "
                f"read_notebook start={view.last + 1} for more)"
            )
        else:
            assert "read_notebook start=" not in view.text
        seen.extend(numbers)
        start = view.last + 1
    assert seen == list(range(1, total + 1))
    assert render_cells(doc, budget=1).last == 1  # a cell is never split, even when too big


# -- 7. the edit_notebook tool -----------------------------------------------------------------


def edited(events: list[Any]) -> list[tuple[str, str, bool]]:
    assert all(isinstance(e, CellEdited) for e in events)
    return [(e.cell_id, e.action, e.applied) for e in events]


def saved_sources(path: Path) -> list[str]:
    return [joined(c["source"]) or "" for c in json.loads(path.read_text())["cells"]]


@pytest.mark.anyio
@pytest.mark.parametrize(("after", "position"), [("", 0), ("c1", 1), (None, 2)])
async def test_insert(tmp_path: Path, after: str | None, position: int) -> None:
    path = copy_nb(tmp_path, FACTORIALS)
    doc = FileNotebook.open(path)
    ctx, events = tool_context(doc, tmp_path)
    where = {} if after is None else {"after": after}
    output = await edit(
        ctx, {"action": "insert", "cell_type": "markdown", "source": "# T", **where}
    )
    assert doc.ids[position] == "c3"
    assert doc.cells[position]["cell_type"] == "markdown"
    assert saved_sources(path)[position] == "# T"
    assert output.startswith("insert c3:\n")
    assert "\n+# T" in output
    assert edited(events) == [("c3", "insert", True)]
    assert events[0].diff in output


@pytest.mark.anyio
async def test_replace_changes_type_and_keeps_metadata(tmp_path: Path) -> None:
    path = copy_nb(tmp_path, "nbconvert/notebook_tags.ipynb")
    ctx, events = tool_context(FileNotebook.open(path), tmp_path)
    output = await edit(
        ctx, {"action": "replace", "cell_id": "c1", "cell_type": "markdown", "source": "Prose."}
    )
    saved = json.loads(path.read_text())["cells"][0]
    assert saved["cell_type"] == "markdown"
    assert saved["metadata"] == {"tags": ["mycelltag", "mysecondcelltag"]}
    assert "outputs" not in saved
    assert "id" not in saved
    assert '\n-print("this cell should have tags in html output")\n+Prose.' in output
    assert edited(events) == [("c1", "replace", True)]


@pytest.mark.anyio
async def test_delete(tmp_path: Path) -> None:
    path = copy_nb(tmp_path, FACTORIALS)
    doc = FileNotebook.open(path)
    ctx, events = tool_context(doc, tmp_path)
    output = await edit(ctx, {"action": "delete", "cell_id": "c1"})
    assert doc.ids == ["c2"]
    assert len(saved_sources(path)) == 1
    assert "\n-i, j = 1, 1" in output
    assert edited(events) == [("c1", "delete", True)]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "move", "order"),
    [
        (FACTORIALS, {"cell_id": "c2", "after": ""}, ["c2", "c1"]),
        (FACTORIALS, {"cell_id": "c2", "after": "top"}, ["c2", "c1"]),
        (FACTORIALS, {"cell_id": "c1", "after": "c2"}, ["c2", "c1"]),
        (
            "nbformat/test4.5.ipynb",
            {"cell_id": "0bc8", "after": "38f3"},
            ["2fcdfa53", "bb687f78", "38f37a24", "0bc81532"],
        ),
    ],
    ids=["to-top", "to-top-alias", "after-id", "by-prefix"],
)
async def test_move(tmp_path: Path, name: str, move: dict[str, str], order: list[str]) -> None:
    path = copy_nb(tmp_path, name)
    doc = FileNotebook.open(path)
    sources = {cid: doc.cell(cid)["source"] for cid in doc.ids}
    ctx, events = tool_context(doc, tmp_path)
    short = doc.short_id(doc.index_of(move["cell_id"]))
    output = await edit(ctx, {"action": "move", **move})
    assert doc.ids[: len(order)] == order
    assert saved_sources(path) == [sources[cid] for cid in doc.ids]
    assert output.startswith(f"move {short}:\nmoved from position")
    assert edited(events) == [(short, "move", True)]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("find", "replace", "expected"),
    [
        ("i + j", "i * j", "for m in range(10):\n    i, j = j, i * j\n    print(j)"),
        (  # different indentation: matched line by line, re-indented like the cell
            "  i, j = j, i + j\n  print(j)",
            "j = i + j\nprint(j, end=' ')",
            "for m in range(10):\n    j = i + j\n    print(j, end=' ')",
        ),
    ],
    ids=["exact", "whitespace"],
)
async def test_find_replace(tmp_path: Path, find: str, replace: str, expected: str) -> None:
    path = copy_nb(tmp_path, FACTORIALS)
    doc = FileNotebook.open(path)
    ctx, events = tool_context(doc, tmp_path)
    output = await edit(
        ctx, {"action": "find_replace", "cell_id": "c2", "find": find, "replace": replace}
    )
    assert doc.cell("c2")["source"] == expected
    assert saved_sources(path)[1] == expected
    assert output.startswith("replace c2:\n--- cell c2\n+++ cell c2\n")
    assert edited(events) == [("c2", "replace", True)]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("edits", "error"),
    [
        ([{"action": "find_replace", "cell_id": "c2", "find": "j", "replace": "k"}], "4 times"),
        ([{"action": "find_replace", "cell_id": "c2", "find": "k", "replace": "j"}], "not occur"),
        ([{"action": "replace", "cell_id": "c9", "source": "x"}], "no cell has id 'c9'"),
        (  # the last edit fails: the ones before it are undone too
            [
                {"action": "insert", "after": "", "source": "first"},
                {"action": "delete", "cell_id": "c1"},
                {"action": "find_replace", "cell_id": "c2", "find": "nowhere", "replace": "x"},
            ],
            "edit 3: 'find' does not occur",
        ),
    ],
    ids=["ambiguous", "missing", "unknown-cell", "all-or-none"],
)
async def test_failed_edits_change_nothing(
    tmp_path: Path, edits: list[dict[str, Any]], error: str
) -> None:
    path = copy_nb(tmp_path, FACTORIALS)
    before = path.read_bytes()
    stamp = aged(path)
    doc = FileNotebook.open(path)
    cells = copy.deepcopy(doc.cells)
    ctx, events = tool_context(doc, tmp_path)
    with pytest.raises(ToolError, match=re.escape(error)):
        await edit(ctx, *edits)
    assert doc.cells == cells
    assert doc.ids == ["c1", "c2"]
    assert not doc.dirty
    assert events == []
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == stamp


@pytest.mark.anyio
async def test_propose_only_changes_nothing(tmp_path: Path) -> None:
    path = copy_nb(tmp_path, FACTORIALS)
    before = path.read_bytes()
    doc = FileNotebook.open(path)
    ctx, events = tool_context(doc, tmp_path, propose_only=True)
    edits = [
        {"action": "insert", "source": "print('done')"},
        {"action": "find_replace", "cell_id": "c1", "find": "1, 1", "replace": "0, 1"},
    ]
    result = await EditNotebook().run(ctx, {"edits": edits})
    assert result.output.startswith("PROPOSED")
    assert "\n+i, j = 0, 1" in result.output
    assert result.summary == "proposed insert c3, replace c1"
    assert doc.ids == ["c1", "c2"]
    assert doc.cell("c1")["source"] == "i, j = 1, 1"
    assert not doc.dirty
    assert path.read_bytes() == before
    assert edited(events) == [("c3", "insert", False), ("c1", "replace", False)]


@pytest.mark.anyio
@pytest.mark.parametrize("name", [FACTORIALS, "nbconvert/exporters_rst_output.ipynb"])
async def test_read_notebook_marks_cells_edited_since_run(tmp_path: Path, name: str) -> None:
    doc = FileNotebook.open(copy_nb(tmp_path, name))
    ctx, _ = tool_context(doc, tmp_path)
    first = doc.short_id(0)  # "c1"; "d5202f0f" for a 36-character JupyterLab id
    await edit(ctx, {"action": "replace", "cell_id": first, "source": "x = 1"})
    result = await ReadNotebook().run(ctx, {})
    assert result.output.endswith(f"\n§ (edited since last run: {first})")


# -- 6. what reading costs ---------------------------------------------------------------------

IMPORTS = """
import asyncio, json, sys
from pathlib import Path
from jupyter_codexmax.notebook.file import FileNotebook
from jupyter_codexmax.notebook.detached import DetachedNotebook
from jupyter_codexmax.session.store import latest_record

path = Path(sys.argv[1])
doc = FileNotebook.open(path)
asyncio.run(doc.insert_cell(0, "code", "x = 1"))
asyncio.run(doc.set_metadata("codexmax", json.loads(sys.argv[2])))
assert asyncio.run(doc.save())
again = FileNotebook.open(path)
assert latest_record(again.nb) is not None
DetachedNotebook.open(path)
print(",".join(m for m in ("lark", "rfc3987_syntax", "jsonschema", "nbformat") if m in sys.modules))
"""


def test_reading_and_writing_a_notebook_imports_no_schema_machinery(tmp_path: Path) -> None:
    """nbformat's import brings jsonschema and every format checker installed (``lark`` and
    ``rfc3987_syntax`` took 2.4 s): reading, writing and the session record need none."""
    from jupyter_codexmax.agent.session import build_record

    path = Path(shutil.copy(CORPUS / "nbformat" / "test4.5.ipynb", tmp_path / "nb.ipynb"))
    record = build_record(
        session_id="abc",
        created="2026-01-01T00:00:00+00:00",
        settings=load_settings(),
        turns=1,
        compactions=0,
        context_tokens=10,
        usage=dict.fromkeys(
            ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens"), 1
        )
        | {"total_tokens": 2},
        summary=None,
        messages=[],
        ledger={},
    ).to_json()
    result = subprocess.run(
        [sys.executable, "-c", IMPORTS, str(path), json.dumps(record)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
    nbformat.validate(nbformat.read(path, as_version=nbformat.NO_CONVERT))
