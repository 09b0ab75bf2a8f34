"""The nbformat 4 file format, read leniently and written as Jupyter writes it, without
importing nbformat (whose import brings jsonschema with every format checker: seconds).

**Reading** (:func:`read_v4`) takes a notebook as JupyterLab would open it. The rule, for
the keys the nbformat v4 schema requires (of the notebook, of each kind of cell, of each
kind of output, and ``name``/``display_name`` of a kernelspec, ``name`` of language_info):

- a required key that is missing (or null where null is not allowed) is filled with its
  empty value (``{}``, ``[]``, ``""``, null; ``nbformat_minor`` 5 when the cells have ids,
  else 4; a cell id with a fresh one), and listed in :attr:`V4Read.filled`;
- a required key with a value of the wrong type, or a key without which nothing sensible
  can be shown (a cell's ``cell_type``, an output's ``output_type``), makes the notebook
  unreadable: :class:`NotebookError`, one line naming the file, the place and the reason;
- everything else is kept as found (unknown cell and output types, odd metadata): it is
  not the agent's to fix.

So a notebook that is read and then written is written with every required key, and one
whose only faults were missing keys comes back valid.

**Writing** (:func:`notebook_bytes`) is Jupyter's: sorted keys, one-space indent, text
split into lines, a final newline, non-ASCII kept. Unlike ``nbformat.writes`` it keeps the
metadata nbformat calls transient (``orig_nbformat``, ``signature``, a cell's ``trusted``).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .document import NotebookError

__all__ = ["Node", "V4Read", "new_cell", "new_notebook", "notebook_bytes", "read_v4", "to_node"]

#: The newest minor version of nbformat 4 this writes for new notebooks.
CURRENT_MINOR = 5
_ID = re.compile(r"^[a-zA-Z0-9-_]+$")


class Node(dict[str, Any]):
    """A dict with attribute access, as nbformat's ``NotebookNode`` (nbclient and our tools
    use both ``cell.outputs`` and ``cell["outputs"]``). Mappings stored in it become nodes."""

    __slots__ = ()

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, Mapping) and not isinstance(value, Node):
            value = to_node(value)
        super().__setitem__(key, value)

    def __deepcopy__(self, memo: dict[int, Any]) -> Node:
        new = Node()
        memo[id(self)] = new
        for key, value in self.items():
            dict.__setitem__(new, key, copy.deepcopy(value, memo))
        return new


def to_node(value: Any) -> Any:
    """``value`` with every mapping in it made a :class:`Node` (lists stay lists)."""
    if isinstance(value, Mapping):
        node = Node()
        for key, item in value.items():
            dict.__setitem__(node, key, to_node(item))
        return node
    if isinstance(value, list | tuple):
        return [to_node(item) for item in value]
    return value


def new_notebook() -> Node:
    return Node(nbformat=4, nbformat_minor=CURRENT_MINOR, metadata=Node(), cells=[])


def new_cell(cell_type: str, source: str, cell_id: str | None = None) -> Node:
    """A new cell as JupyterLab makes one (``id`` only where the format has ids)."""
    cell = Node(cell_type=cell_type, metadata=Node(), source=source)
    if cell_type == "code":
        cell["execution_count"] = None
        cell["outputs"] = []
    if cell_id is not None:
        cell["id"] = cell_id
    return cell


# -- reading -----------------------------------------------------------------------------------

_DICT, _LIST, _STR, _COUNT, _TEXT, _LINES = "object", "list", "text", "count", "text*", "lines"
_EMPTY: dict[str, Any] = {_DICT: {}, _LIST: [], _STR: "", _COUNT: None, _TEXT: "", _LINES: []}
_CELL = {"metadata": _DICT, "source": _TEXT}
_CELLS = {
    "markdown": _CELL,
    "raw": _CELL,
    "code": {**_CELL, "outputs": _LIST, "execution_count": _COUNT},
}
_OUTPUTS = {
    "execute_result": {"data": _DICT, "metadata": _DICT, "execution_count": _COUNT},
    "display_data": {"data": _DICT, "metadata": _DICT},
    "stream": {"name": _STR, "text": _TEXT},
    "error": {"ename": _STR, "evalue": _STR, "traceback": _LINES},
}


def _fits(value: Any, kind: str) -> bool:
    if kind == _DICT:
        return isinstance(value, dict)
    if kind == _LIST:
        return isinstance(value, list)
    if kind == _STR:
        return isinstance(value, str)
    if kind == _COUNT:
        return value is None or (isinstance(value, int) and not isinstance(value, bool))
    if kind == _TEXT:  # a string, or a list of lines
        return isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        )
    return isinstance(value, list) and all(isinstance(v, str) for v in value)  # _LINES


_WHAT = {_DICT: "an object", _LIST: "a list", _STR: "text", _COUNT: "a number or null"}
_WHAT.update({_TEXT: "text", _LINES: "a list of lines"})


def json_type(value: Any) -> str:
    """What ``value`` is, in JSON's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    return "an object" if isinstance(value, dict) else "a list"


@dataclass
class V4Read:
    """What :func:`read_v4` did besides parsing: the required keys it filled (``where:
    key`` each) and the repeated cell ids it renamed."""

    filled: list[str] = field(default_factory=list)
    renamed_ids: int = 0
    _counts: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)

    def note(self, unit: str, key: str, where: str) -> None:
        """``key`` was filled at ``where``, one of ``unit`` (cell, output; "" when unique)."""
        self.filled.append(f"{where}: {key}" if where else key)
        if not unit:
            key = f"{where.removeprefix('metadata ')} {key}".strip()
        self._counts[unit, key] = self._counts.get((unit, key), 0) + 1

    def summary(self) -> str:
        """One line: which required keys were missing (and are filled), and in how many
        places; empty when none were."""
        parts = [
            f"{key} of {n} {unit}{'' if n == 1 else 's'}" if unit else key
            for (unit, key), n in self._counts.items()
        ]
        if self.renamed_ids:
            n = self.renamed_ids
            parts.append(f"{n} repeated cell id{'' if n == 1 else 's'} renamed")
        return "; ".join(parts)


class _Checker:
    def __init__(self, name: str) -> None:
        self.name = name
        self.done = V4Read()

    def refuse(self, where: str, reason: str) -> NotebookError:
        return NotebookError(f"{self.name}: cannot be read: {where}{reason}")

    def keys(self, node: dict[str, Any], required: dict[str, str], where: str, unit: str) -> None:
        """Fill the missing required keys of ``node``; refuse those of the wrong type."""
        for key, kind in required.items():
            value = node.get(key)
            if key not in node or (value is None and kind != _COUNT):
                node[key] = copy.deepcopy(_EMPTY[kind])
                self.done.note(unit, key, where)
            elif not _fits(value, kind):
                place = f"{where}: " if where else ""
                raise self.refuse(place, f"{key!r} is {json_type(value)}, not {_WHAT[kind]}")


def read_v4(data: dict[str, Any], name: str, *, own_ids: bool | None = None) -> tuple[Node, V4Read]:
    """A v4 notebook (parsed JSON) as a :class:`Node`, multi-line texts joined, required keys
    filled; :class:`NotebookError` when it cannot be read (see the module's rule).

    ``own_ids``: whether the cells keep ids (nbformat 4.5 on); by default from the version."""
    check = _Checker(name)
    nb = to_node(data)
    minor = nb.get("nbformat_minor")
    if "nbformat_minor" not in nb or minor is None:
        cells = nb.get("cells")
        with_ids = isinstance(cells, list) and any(isinstance(c, dict) and "id" in c for c in cells)
        nb["nbformat_minor"] = CURRENT_MINOR if with_ids else 4
        check.done.note("", "nbformat_minor", "")
    elif not isinstance(minor, int) or isinstance(minor, bool):
        raise check.refuse("", f"nbformat_minor {minor!r} is not a number")
    check.keys(nb, {"metadata": _DICT, "cells": _LIST}, "", "")
    meta = nb["metadata"]
    for key, required in (("kernelspec", ("name", "display_name")), ("language_info", ("name",))):
        if isinstance(meta.get(key), dict):
            check.keys(meta[key], dict.fromkeys(required, _STR), f"metadata {key}", "")
    if own_ids is None:
        own_ids = nb["nbformat_minor"] >= 5
    for number, cell in enumerate(nb["cells"], 1):
        if not isinstance(cell, dict):
            raise check.refuse("", f"cell {number} is not an object")
        _read_cell(check, cell, number)
    if own_ids:
        _repair_ids(check, nb["cells"])
    return nb, check.done


def _read_cell(check: _Checker, cell: dict[str, Any], number: int) -> None:
    kind = cell.get("cell_type")
    where = f"cell {number}"
    if not isinstance(kind, str):
        reason = " has no cell_type" if kind is None else f": 'cell_type' is {json_type(kind)}"
        raise check.refuse("", where + reason)
    check.keys(cell, _CELLS.get(kind, {"metadata": _DICT}), f"cell {number} ({kind})", "cell")
    if isinstance(cell.get("source"), list):
        cell["source"] = "".join(cell["source"])
    attachments = cell.get("attachments")
    if attachments is not None:
        if not isinstance(attachments, dict) or not all(
            isinstance(v, dict) for v in attachments.values()
        ):
            raise check.refuse(f"{where}: ", "'attachments' is not an object of mime bundles")
        for bundle in attachments.values():
            _rejoin_bundle(bundle)
    if kind != "code":
        return
    for index, output in enumerate(cell["outputs"], 1):
        place = f"output {index} of cell {number}"
        if not isinstance(output, dict):
            raise check.refuse("", f"{place} is not an object")
        otype = output.get("output_type")
        if not isinstance(otype, str):
            reason = (
                " has no output_type" if otype is None else f": 'output_type' is {json_type(otype)}"
            )
            raise check.refuse("", place + reason)
        check.keys(output, _OUTPUTS.get(otype, {}), place, "output")
        if otype in ("execute_result", "display_data"):
            _rejoin_bundle(output["data"])
        elif isinstance(output.get("text"), list) and all(
            isinstance(t, str) for t in output["text"]
        ):
            output["text"] = "".join(output["text"])


def _is_json_mime(mime: str) -> bool:
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


def _rejoin_bundle(data: dict[str, Any]) -> None:
    for key, value in list(data.items()):
        if (
            not _is_json_mime(key)
            and isinstance(value, list)
            and all(isinstance(line, str) for line in value)
        ):
            data[key] = "".join(value)


def _repair_ids(check: _Checker, cells: list[Any]) -> None:
    """Cells of nbformat 4.5 on need unique ids: a missing one is filled, a repeated or
    empty one renamed (as nbformat does on reading); ids of the wrong type are refused."""
    taken: set[str] = set()
    for number, cell in enumerate(cells, 1):
        cid = cell.get("id")
        if cid is not None and not isinstance(cid, str):
            raise check.refuse("", f"cell {number}: 'id' is {json_type(cid)}, not text")
        if isinstance(cid, str) and cid:
            taken.add(cid)
    seen: set[str] = set()
    counter = 0
    for number, cell in enumerate(cells, 1):
        cid = cell.get("id")
        if isinstance(cid, str) and cid and cid not in seen:
            seen.add(cid)
            continue
        while True:
            counter += 1
            fresh = f"c{counter}"
            if fresh not in taken:
                break
        taken.add(fresh)
        seen.add(fresh)
        if cid is None:
            check.done.note("cell", "id", f"cell {number} ({cell.get('cell_type')})")
        else:
            check.done.renamed_ids += 1
        cell["id"] = fresh


# -- writing -----------------------------------------------------------------------------------

_SPLIT_MIMES = {"application/javascript", "image/svg+xml"}


def _split_bundle(data: Any) -> None:
    if not isinstance(data, dict):
        return
    for key, value in list(data.items()):
        if isinstance(value, str) and (key.startswith("text/") or key in _SPLIT_MIMES):
            data[key] = value.splitlines(True)


def _split_lines(nb: Any) -> Any:
    for cell in nb.get("cells") or []:
        source = cell.get("source")
        if isinstance(source, str):
            cell["source"] = source.splitlines(True)
        attachments = cell.get("attachments")
        if isinstance(attachments, dict):
            for bundle in attachments.values():
                _split_bundle(bundle)
        if cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs") or []:
            kind = output.get("output_type")
            if kind in ("execute_result", "display_data"):
                _split_bundle(output.get("data"))
            elif kind == "stream" and isinstance(output.get("text"), str):
                output["text"] = output["text"].splitlines(True)
    return nb


def _bytes_as_text(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return obj.decode("ascii")
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def notebook_bytes(nb: Any) -> bytes:
    """A v4 notebook in Jupyter's file format (sorted keys, one-space indent, multiline
    strings split into lines, a final newline)."""
    text = json.dumps(
        _split_lines(copy.deepcopy(nb)),
        default=_bytes_as_text,
        indent=1,
        sort_keys=True,
        separators=(",", ": "),
        ensure_ascii=False,
    )
    return (text + "\n").encode("utf-8")
