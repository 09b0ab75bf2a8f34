"""Damaged notebooks, generated from the nbformat v4 schema: every one is either read
(leniently, as JupyterLab opens it) and written back valid, or refused in one line and left
as it was. In process (the file, working-copy and live backends, the view) and through
``jupyter codexmax run``."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_codexmax.notebook.detached import DetachedNotebook
from jupyter_codexmax.notebook.document import NotebookError
from jupyter_codexmax.notebook.file import FileNotebook
from jupyter_codexmax.notebook.live import LiveNotebook
from jupyter_codexmax.notebook.view import notebook_heading, render_cells
from jupyter_codexmax.testing import ScriptedModelServer

BIN = Path(sys.executable).parent
SCHEMA = Path(nbformat.__file__).parent / "v4" / "nbformat.v4.5.schema.json"

#: A valid nbformat 4.5 notebook with every kind of cell and output.
BASE: dict[str, Any] = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    },
    "cells": [
        {"id": "md", "cell_type": "markdown", "metadata": {}, "source": ["# Title\n", "text"]},
        {"id": "raw", "cell_type": "raw", "metadata": {}, "source": "raw text"},
        {
            "id": "code",
            "cell_type": "code",
            "metadata": {},
            "source": ["print(1)\n", "1"],
            "execution_count": 1,
            "outputs": [
                {"output_type": "stream", "name": "stdout", "text": ["1\n"]},
                {
                    "output_type": "execute_result",
                    "execution_count": 1,
                    "data": {"text/plain": ["1"]},
                    "metadata": {},
                },
                {"output_type": "display_data", "data": {"text/plain": "<x>"}, "metadata": {}},
                {"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["tb"]},
            ],
        },
    ],
}

Place = Callable[[dict[str, Any]], dict[str, Any]]


def _cell(kind: str) -> Place:
    return lambda nb: next(c for c in nb["cells"] if c["cell_type"] == kind)


def _output(kind: str) -> Place:
    return lambda nb: next(o for o in _cell("code")(nb)["outputs"] if o["output_type"] == kind)


#: Where each object the schema requires keys of sits in BASE.
PLACES: dict[str, Place] = {
    "notebook": lambda nb: nb,
    "kernelspec": lambda nb: nb["metadata"]["kernelspec"],
    "language_info": lambda nb: nb["metadata"]["language_info"],
    **{f"{kind}_cell": _cell(kind) for kind in ("markdown", "raw", "code")},
    **{k: _output(k) for k in ("execute_result", "display_data", "stream", "error")},
}


def required_keys() -> list[tuple[str, str]]:
    """(place, key) for every key the v4.5 schema requires, where BASE has that object."""
    schema = json.loads(SCHEMA.read_text())
    found = [("notebook", key) for key in schema["required"]]
    meta = schema["properties"]["metadata"]["properties"]
    found += [
        (name, key) for name in ("kernelspec", "language_info") for key in meta[name]["required"]
    ]
    for name, definition in schema["definitions"].items():
        if name in PLACES:
            found += [(name, key) for key in definition["required"]]
    return found


def wrong(value: Any) -> Any:
    """A value of another JSON type."""
    if isinstance(value, bool | int):
        return "4"
    if isinstance(value, str):
        return 42
    if isinstance(value, dict):
        return ["x"]
    return {"x": 1}


def damaged(place: str, key: str, how: str) -> dict[str, Any]:
    nb = copy.deepcopy(BASE)
    target = PLACES[place](nb)
    if how == "missing":
        del target[key]
    elif how == "null":
        target[key] = None
    else:
        target[key] = wrong(target[key])
    return nb


def cases() -> dict[str, bytes]:
    """Every damage, as file contents, by name."""
    made: dict[str, bytes] = {}
    for place, key in required_keys():
        for how in ("missing", "null", "wrong-type"):
            made[f"{place}.{key}.{how}"] = json.dumps(damaged(place, key, how), indent=1).encode()
    whole = json.dumps(BASE, indent=1).encode()
    made["whole"] = whole
    for cut in (1, len(whole) // 3, len(whole) // 2, len(whole) - 2):
        made[f"truncated-at-{cut}"] = whole[:cut]
    made["empty-file"] = b""
    made["not-json"] = b"print('hello')\n"
    made["not-utf8"] = b'{"nbformat": 4, "x": "\xff"}'
    made["json-list"] = b"[1, 2, 3]"
    made["json-string"] = b'"notebook"'
    for version in (3, 5, 0, -1):
        made[f"nbformat-{version}"] = json.dumps({**BASE, "nbformat": version}).encode()
    made["minor-text"] = json.dumps({**BASE, "nbformat_minor": "x"}).encode()
    made["minor-float"] = json.dumps({**BASE, "nbformat_minor": 4.5}).encode()
    made["minor-bool"] = json.dumps({**BASE, "nbformat_minor": True}).encode()
    made["cell-not-object"] = json.dumps({**BASE, "cells": ["x"]}).encode()
    made["output-not-object"] = json.dumps(
        {**BASE, "cells": [{**BASE["cells"][2], "outputs": [7]}]}
    ).encode()
    made["source-list-of-numbers"] = json.dumps(
        {**BASE, "cells": [{**BASE["cells"][0], "source": [1, 2]}]}
    ).encode()
    made["attachments-not-object"] = json.dumps(
        {**BASE, "cells": [{**BASE["cells"][0], "attachments": "x"}]}
    ).encode()
    made["duplicate-ids"] = json.dumps(
        {**BASE, "cells": [BASE["cells"][0], BASE["cells"][0]]}
    ).encode()
    made["ids-in-4.4"] = json.dumps(
        {
            **BASE,
            "nbformat_minor": 4,
            "cells": [{k: v for k, v in c.items() if k != "id"} for c in BASE["cells"]],
        }
    ).encode()
    return made


CASES = cases()
#: Damage that must be refused (no sensible reading), and damage that must be read.
REFUSED = {"empty-file", "not-json", "not-utf8", "json-list", "json-string", "minor-text"}
REFUSED |= {n for n in CASES if n.startswith(("truncated", "nbformat-"))}
READ = {"whole", "duplicate-ids", "ids-in-4.4"} | {
    n
    for n in CASES
    if n.endswith((".missing", ".null"))
    and ".cell_type." not in n
    and ".output_type." not in n
    and not n.startswith("notebook.nbformat.")
}


def test_the_cases_cover_every_required_key() -> None:
    nbformat.validate(nbformat.from_dict(copy.deepcopy(BASE)))
    keys = required_keys()
    assert len(keys) == 35 and ("code_cell", "outputs") in keys and ("stream", "name") in keys
    assert len(CASES) > 3 * 35 + 20


def _open(path: Path) -> FileNotebook | str:
    try:
        return FileNotebook.open(path)
    except NotebookError as exc:
        return str(exc)


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(CASES))
async def test_read_and_written_valid_or_refused_untouched(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.ipynb"
    path.write_bytes(CASES[name])
    doc = _open(path)
    if isinstance(doc, str):
        assert name not in READ, doc
        assert doc.startswith(f"{path}: ") and "\n" not in doc and len(doc) < 300
        assert path.read_bytes() == CASES[name]
        with pytest.raises(NotebookError):
            DetachedNotebook.open(path)
        return
    assert name not in REFUSED
    # The kernel's working copy and the view read it as well.
    for reader in (doc, DetachedNotebook.open(path)):
        render_cells(reader)
        assert notebook_heading(reader).startswith(f"notebook {path.name}")
    if ".missing" in name or (".null" in name and ".execution_count." not in name):
        assert doc.filled, "the missing key is said"
    elif name == "whole":
        assert doc.filled == ""
    if not doc.writable:
        return
    await doc.set_metadata("test", 1)
    assert await doc.save()
    nbformat.validate(nbformat.reads(path.read_text(), as_version=nbformat.NO_CONVERT))


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(CASES))
async def test_the_live_notebook_reads_the_same_shapes(name: str) -> None:
    """What a frontend sends (``notebook.get``) in the same damaged shapes: read, or a
    :class:`NotebookError`, never another exception."""
    try:
        data = json.loads(CASES[name])
    except ValueError:
        return
    if not isinstance(data, dict):
        return

    async def call(method: str, **params: Any) -> Any:
        raise AssertionError(f"not called: {method}")

    refused = ""
    try:
        live = LiveNotebook(call, {**data, "path": "x.ipynb"}, Path("x.ipynb"))
    except NotebookError as exc:
        refused = str(exc)
    if refused:
        assert "\n" not in refused and refused.startswith("x.ipynb (open in the frontend): ")
        return
    render_cells(live)
    assert len(live.ids) == len(set(live.ids)) == len(live.cells)


# -- through `jupyter codexmax run` ------------------------------------------------------------


def codexmax_run(
    paths: list[Path], server: ScriptedModelServer, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "jupyter-codexmax"), "run", *map(str, paths), "--task", "Look", *extra],
        env={
            **os.environ,
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "sk-dmg-0123456789",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_run_reads_and_writes_valid_or_refuses_in_one_line(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    paths = {}
    for number, (name, content) in enumerate(sorted(CASES.items())):
        paths[name] = tmp_path / f"case{number:03d}.ipynb"
        paths[name].write_bytes(content)
    scripted_server.load({"steps": [{"text": "Looked."}], "after_last": "repeat"})

    # All at once: the unreadable ones stop the run, one line each, and nothing is touched.
    first = codexmax_run(list(paths.values()), scripted_server)
    assert first.returncode == 2 and "Traceback" not in first.stderr
    lines = first.stderr.splitlines()
    named = {}
    for line in lines:
        (name,) = [
            n
            for n, p in paths.items()
            if f" {p}: " in f" {line.removeprefix('jupyter-codexmax: error: ')}"
        ]
        named[name] = line
    assert len(named) == len(lines), "one line per notebook"
    assert set(named) >= REFUSED and not set(named) & READ
    assert all(p.read_bytes() == CASES[n] for n, p in paths.items())
    assert scripted_server.requests == []

    # A notebook alone: exactly one line.
    for name in (
        "truncated-at-1",
        "not-json",
        "json-list",
        "nbformat-3",
        "nbformat-5",
        "minor-text",
    ):
        alone = codexmax_run([paths[name]], scripted_server)
        assert alone.returncode == 2 and alone.stderr.splitlines() == [named[name]], alone.stderr

    # The others run, and are written back valid; the run says what it filled.
    readable = [n for n in paths if n not in named]
    report = tmp_path / "report.json"
    second = codexmax_run(
        [paths[n] for n in readable], scripted_server, "--jobs", "4", "--report", str(report)
    )
    assert second.returncode == 0, second.stderr[-3000:]
    entries = {Path(e["path"]).name: e for e in json.loads(report.read_text())["notebooks"]}
    for name in readable:
        path = paths[name]
        nbformat.validate(nbformat.reads(path.read_text(), as_version=nbformat.NO_CONVERT))
        assert json.loads(path.read_text())["metadata"]["codexmax"]["turns"] == 1
        filled = entries[path.name]["filled"]
        said = name not in ("whole", "ids-in-4.4") and not name.endswith("execution_count.null")
        assert bool(filled) == said, (name, filled)
        if filled:
            assert f"  written with missing required keys filled: {filled}\n" in second.stdout
