"""The file backend: a notebook on disk, read and written with nbformat.

- Reading: the bytes are parsed once; a file that is not JSON, has no ``nbformat``
  version, or that nbformat cannot read is a :class:`NotebookError` (one line: the file
  and the reason). A notebook that reads but does not validate is accepted, with its
  problems noted, and left as it is: fixing it is not the agent's business unless asked.
- The version is kept: nbformat 4 files are written back as the same 4.x; nbformat 2 and 3
  files are shown to the model (converted in memory) but never rewritten.
- Writing: Jupyter's own writer (sorted keys, one-space indent, a final newline), so an
  unedited notebook that nbformat round-trips comes back byte for byte; atomically (a temp
  file in the same folder, fsync, rename, the original's permissions kept); only when
  something changed; never over a file that changed on disk since it was read.
- nbformat's validator repairs ids as a side effect (adds missing ones, renames
  duplicates); it only ever sees a copy here, so untouched cells stay untouched.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import stat
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .document import NotebookDocument, NotebookError

__all__ = ["FileNotebook", "notebook_bytes"]


def notebook_bytes(nb: Any) -> bytes:
    """A v4 notebook in Jupyter's file format (sorted keys, one-space indent, multiline
    strings split into lines, a final newline). Unlike ``nbformat.writes`` it keeps the
    metadata nbformat calls transient (``orig_nbformat``, ``signature``, a cell's
    ``trusted``): the agent does not drop what it did not touch."""
    from nbformat.v4.nbjson import BytesEncoder
    from nbformat.v4.rwbase import split_lines

    text = json.dumps(
        split_lines(copy.deepcopy(nb)),
        cls=BytesEncoder,
        indent=1,
        sort_keys=True,
        separators=(",", ": "),
        ensure_ascii=False,
    )
    return (text + "\n").encode("utf-8")


def _from_v4_dict(data: dict[str, Any]) -> Any:
    """A v4 notebook node as nbformat reads it, minus the stripping of transient keys."""
    from nbformat import from_dict
    from nbformat.v4.rwbase import rejoin_lines

    return rejoin_lines(from_dict(data))


@contextlib.contextmanager
def quiet_nbformat() -> Iterator[None]:
    """Keep nbformat from logging validation complaints while we read and convert: it logs
    through the running Jupyter application's logger, which would print them; the
    problems are collected (and reported once) by :func:`read_notebook_bytes` instead."""
    from traitlets.log import get_logger

    found = get_logger()
    logger = found.logger if isinstance(found, logging.LoggerAdapter) else found
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] if text else type(exc).__name__


def read_notebook_bytes(path: Path, raw: bytes) -> tuple[Any, list[str]]:
    """Parse ``raw`` into a NotebookNode in the file's own version, and list its problems.
    Raises :class:`NotebookError` when it cannot be read at all."""
    from nbformat import reader

    name = str(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotebookError(
            f"{name}: not a notebook: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(
            f"{name}: not a notebook: invalid JSON at line {exc.lineno} column {exc.colno} "
            f"({exc.msg})"
        ) from exc
    if not isinstance(data, dict):
        raise NotebookError(f"{name}: not a notebook: the JSON is not an object")
    if "nbformat" not in data:
        raise NotebookError(f"{name}: not a notebook: it has no nbformat version")
    for key in ("nbformat", "nbformat_minor"):
        value = data.get(key)
        if (
            key in data
            and value is not None
            and (not isinstance(value, int) or isinstance(value, bool))
        ):
            raise NotebookError(f"{name}: cannot be read: {key} {value!r} is not a number")
    if data.get("nbformat") == 4:
        cells = data.get("cells")
        if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
            raise NotebookError(f"{name}: cannot be read: 'cells' is not a list of cells")
        if not isinstance(data.get("metadata", {}), dict):
            raise NotebookError(f"{name}: cannot be read: 'metadata' is not an object")
    problems: list[str] = []
    with warnings.catch_warnings(record=True) as caught, quiet_nbformat():
        warnings.simplefilter("always")
        try:
            nb = _from_v4_dict(data) if data.get("nbformat") == 4 else reader.reads(text)
        except Exception as exc:
            raise NotebookError(f"{name}: cannot be read: {_reason(exc)}") from exc
        major = int(nb.get("nbformat", 0))
        if major == 4:
            cells = nb.get("cells")
            if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
                raise NotebookError(f"{name}: cannot be read: 'cells' is not a list of cells")
            if not isinstance(nb.get("metadata", {}), dict):
                raise NotebookError(f"{name}: cannot be read: 'metadata' is not an object")
        else:
            from nbformat import convert

            try:
                convert(copy.deepcopy(nb), 4)
            except Exception as exc:
                raise NotebookError(
                    f"{name}: cannot be read: nbformat {major} notebook does not convert: "
                    f"{_reason(exc)}"
                ) from exc
        try:
            from nbformat import validator

            validator.validate(copy.deepcopy(nb))
        except Exception as exc:
            problems.append(f"does not validate: {_reason(exc)}")
    problems.extend(_reason(w.message) for w in caught)  # type: ignore[arg-type]
    return nb, problems


def session_ids(cells: list[Any], own_ids: bool) -> list[str]:
    """Ids for the cells: their own where the format has them (repaired for the session
    where missing or repeated, without touching the cells), else ``cN``."""
    ids: list[str] = []
    seen: set[str] = set()
    for number, cell in enumerate(cells, 1):
        cid = str(cell.get("id") or "") if own_ids else ""
        if not cid or cid in seen:
            cid = f"c{number}"
            while cid in seen:
                cid += "x"
        seen.add(cid)
        ids.append(cid)
    return ids


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
        problems: list[str],
    ) -> None:
        super().__init__(path, nb, ids)
        self._disk_digest = hashlib.sha256(raw).hexdigest()
        # What the file on disk holds, in our writer's bytes: a notebook edited back to
        # this state is not rewritten (even if its original formatting differs).
        self._saved_digest = (
            hashlib.sha256(notebook_bytes(nb)).hexdigest() if original_version[0] == 4 else ""
        )
        self._original_version = original_version
        self.problems = problems
        self.dirty = False

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> FileNotebook:
        """Read ``path``; :class:`NotebookError` when it is not a readable notebook."""
        target = Path(path).expanduser()
        try:
            raw = target.read_bytes()
        except FileNotFoundError as exc:
            raise NotebookError(f"{target}: no such file") from exc
        except IsADirectoryError as exc:
            raise NotebookError(f"{target}: is a folder, not a notebook") from exc
        except OSError as exc:
            raise NotebookError(f"{target}: cannot be read: {exc.strerror or exc}") from exc
        nb, problems = read_notebook_bytes(target, raw)
        version = (int(nb.get("nbformat", 0)), int(nb.get("nbformat_minor", 0) or 0))
        if version[0] != 4:
            from nbformat import convert

            with warnings.catch_warnings(), quiet_nbformat():
                warnings.simplefilter("ignore")
                nb = convert(copy.deepcopy(nb), 4)
        ids = session_ids(list(nb.cells), version >= (4, 5))
        return cls(target.resolve(), nb, ids, raw=raw, original_version=version, problems=problems)

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
        return True


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old or the new file, whole."""
    folder = path.parent
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".codexmax-tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
