"""The file backend: a notebook on disk, read leniently, written as Jupyter writes it.

- Reading: the bytes are parsed once. A file that is not JSON, not a notebook, in an
  unknown nbformat version, or with a required key of the wrong type is a
  :class:`NotebookError` (one line: the file and the reason). Missing required keys are
  filled with their empty values (:mod:`.nbjson` has the rule); :attr:`FileNotebook.filled`
  says which, and they reach the file only if the notebook is written. Anything else that
  does not validate is kept as it is: fixing it is not the agent's business unless asked.
- nbformat 4 is read and written by :mod:`.nbjson`, without importing nbformat (whose
  import costs seconds: jsonschema and every format checker). nbformat 1 to 3 files are
  converted in memory by nbformat, shown to the model, and never rewritten.
- Writing: Jupyter's own format (sorted keys, one-space indent, a final newline), so an
  unedited notebook that nbformat round-trips comes back byte for byte; atomically (a temp
  file in the same folder, fsync, rename, the original's permissions kept); only when
  something changed; never over a file that changed on disk since it was read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..fileio import NotRegularFile, read_regular
from ..limits import depth_of
from ..safefs import atomic_write
from ..workspace import absolute
from .document import NotebookDocument, NotebookError
from .nbjson import V4Read, notebook_bytes, read_v4

__all__ = ["MAX_DEPTH", "FileNotebook", "notebook_bytes", "read_notebook_bytes"]

#: How deep a notebook's JSON may nest. Real notebooks nest about 10 deep (plots, widget
#: state); much deeper ones would exhaust the stack when copied, written or shown.
MAX_DEPTH = 100


@contextlib.contextmanager
def quiet_nbformat() -> Iterator[None]:
    """Keep nbformat from logging complaints while it reads and converts an old format: it
    logs through the running Jupyter application's logger, which would print them."""
    from traitlets.log import get_logger

    found = get_logger()
    logger = found.logger if isinstance(found, logging.LoggerAdapter) else found
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(previous)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] if text else type(exc).__name__


def _number(data: dict[str, Any], key: str, name: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise NotebookError(f"{name}: cannot be read: {key} {value!r} is not a number")
    return value


def read_notebook_bytes(path: Path, raw: bytes) -> tuple[Any, V4Read, tuple[int, int]]:
    """Parse ``raw`` into a v4 notebook node (an old format converted in memory), with what
    was filled and the file's own version. :class:`NotebookError` when it cannot be read."""
    name = str(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotebookError(
            f"{name}: not a notebook: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from exc
    if not text.strip():
        raise NotebookError(f"{name}: not a notebook: the file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(
            f"{name}: not a notebook: invalid JSON at line {exc.lineno} column {exc.colno} "
            f"({exc.msg})"
        ) from exc
    except RecursionError as exc:
        raise NotebookError(f"{name}: not a notebook: JSON nested too deeply") from exc
    except ValueError as exc:  # a number longer than Python converts (4,300 digits)
        reason = " ".join(str(exc).split(";")[0].split())
        raise NotebookError(f"{name}: cannot be read: {reason}") from exc
    depth = depth_of(data)
    if depth > MAX_DEPTH:
        raise NotebookError(
            f"{name}: cannot be read: its JSON nests {depth:,} levels deep (at most {MAX_DEPTH})"
        )
    if not isinstance(data, dict):
        raise NotebookError(f"{name}: not a notebook: the JSON is not an object")
    major = _number(data, "nbformat", name)
    if major is None:
        raise NotebookError(f"{name}: not a notebook: it has no nbformat version")
    minor = _number(data, "nbformat_minor", name)
    if major == 4:
        nb, done = read_v4(data, name)
        return nb, done, (4, int(nb["nbformat_minor"]))
    if major > 4:
        raise NotebookError(
            f"{name}: cannot be read: nbformat {major} is newer than the nbformat 4 that this "
            "version of jupyter-codexmax reads"
        )
    if major < 1:
        raise NotebookError(f"{name}: not a notebook: nbformat {major} is not a version")
    return (*_read_old(text, name, major), (major, minor or 0))


def _read_old(text: str, name: str, major: int) -> tuple[Any, V4Read]:
    """An nbformat 1-3 notebook, converted to v4 in memory by nbformat (never written)."""
    from nbformat import convert, reader

    with quiet_nbformat():
        try:
            old = reader.reads(text)
        except Exception as exc:
            raise NotebookError(
                f"{name}: cannot be read as nbformat {major}: {_reason(exc)}"
            ) from exc
        try:
            converted = convert(old, 4)
        except Exception as exc:
            raise NotebookError(
                f"{name}: cannot be read: nbformat {major} notebook does not convert: "
                f"{_reason(exc)}"
            ) from exc
    return read_v4(converted, name, own_ids=False)


def session_ids(cells: list[Any], own_ids: bool) -> list[str]:
    """Ids for the cells: their own where the format has them (:func:`.nbjson.read_v4` has
    made them unique), else ``cN`` by position, for the session only."""
    if own_ids:
        return [str(cell.get("id")) for cell in cells]
    return [f"c{number}" for number in range(1, len(cells) + 1)]


class FileNotebook(NotebookDocument):
    """A notebook file, owned by this process while it is open."""

    def __init__(
        self,
        path: Path,
        nb: Any,
        ids: list[str],
        *,
        raw: bytes,
        original_version: tuple[int, int],
        read: V4Read | None = None,
    ) -> None:
        super().__init__(path, nb, ids)
        self._disk_digest = hashlib.sha256(raw).hexdigest()
        # What the file on disk holds, in our writer's bytes: a notebook edited back to
        # this state is not rewritten (even if its original formatting differs).
        self._saved_digest = (
            hashlib.sha256(notebook_bytes(nb)).hexdigest() if original_version[0] == 4 else ""
        )
        self._original_version = original_version
        #: The required keys that were missing, filled with empty values (one line; empty
        #: when none were): written with the notebook, if it is written.
        self.filled = (read or V4Read()).summary()
        #: How many times :meth:`save` wrote the file.
        self.writes = 0
        self.dirty = False

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> FileNotebook:
        """Read ``path``; :class:`NotebookError` when it is not a readable notebook."""
        target = Path(path).expanduser()
        try:
            raw = read_regular(target)
        except FileNotFoundError as exc:
            raise NotebookError(f"{target}: no such file") from exc
        except NotRegularFile as exc:
            raise NotebookError(f"{target}: is {exc.kind}, not a notebook file") from exc
        except OSError as exc:
            raise NotebookError(f"{target}: cannot be read: {exc.strerror or exc}") from exc
        nb, read, version = read_notebook_bytes(target, raw)
        ids = session_ids(list(nb.cells), version >= (4, 5))
        doc = cls(target.resolve(), nb, ids, raw=raw, original_version=version, read=read)
        doc.location = absolute(target)
        return doc

    @property
    def version(self) -> tuple[int, int]:
        return self._original_version

    @property
    def writable(self) -> bool:
        return self._original_version[0] == 4

    async def _changed(self) -> None:
        self.dirty = True

    def changed_elsewhere(self) -> bool:
        try:
            on_disk = self.path.read_bytes()
        except FileNotFoundError:
            return True
        return hashlib.sha256(on_disk).hexdigest() != self._disk_digest

    def current_bytes(self) -> bytes:
        return notebook_bytes(self._nb)

    async def save(self) -> bool:
        """Write the notebook if it changed. Refuses to overwrite changes made on disk by
        someone else since it was read (or last written) here."""
        if not self.dirty:
            return False
        self._require_writable()
        data = self.current_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._saved_digest:
            self.dirty = False
            return False
        try:
            on_disk = self.path.read_bytes()
        except FileNotFoundError:
            on_disk = None
        if on_disk is not None and hashlib.sha256(on_disk).hexdigest() != self._disk_digest:
            raise NotebookError(
                f"{self.path}: changed on disk since the agent read it; not overwriting it "
                "(the agent's version was not saved)"
            )
        atomic_write(self.path, data)
        self._disk_digest = self._saved_digest = digest
        self.dirty = False
        self.writes += 1
        return True
