"""Opening files for reading without ever blocking on one that is not a file.

A named pipe (FIFO) blocks ``open`` until a writer comes, and its reads until it writes; a
device such as ``/dev/zero`` never ends; a socket cannot be opened at all. The file tools
and the notebook reader only read *regular* files: :func:`open_regular` opens without
blocking (``O_NONBLOCK``), then checks what it opened (``fstat``, so a file swapped for a
pipe between a check and the open is still caught), and refuses anything else with
:class:`NotRegularFile`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import CodexmaxError

__all__ = ["NotRegularFile", "describe_mode", "open_regular", "read_regular"]

_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


class NotRegularFile(CodexmaxError):
    """A path that is a pipe, a device, a socket or a folder, where a file was expected."""

    def __init__(self, path: str | os.PathLike[str], kind: str) -> None:
        super().__init__(f"{os.fspath(path)}: is {kind}, not a regular file; it is not opened")
        self.path = os.fspath(path)
        self.kind = kind


def describe_mode(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words ("a named pipe (FIFO)")."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "not a regular file"


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for reading in binary, if it is a regular file (symlinks followed).

    :class:`NotRegularFile` for anything else; ``OSError`` as ``open`` raises it."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        if exc.errno == 6:  # ENXIO: a socket (or a pipe with no reader, for writing)
            raise NotRegularFile(path, "a socket") from exc
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, describe_mode(mode))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str] | Path) -> bytes:
    """The bytes of a regular file (:class:`NotRegularFile` for anything else)."""
    with open_regular(path) as f:
        return f.read()
