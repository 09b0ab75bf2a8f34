"""Writing files without being led astray: by a symlink swapped in after a path was checked,
or past a permission the user does not have.

A path is checked once (:meth:`~jupyter_codexmax.workspace.Workspace.resolve`: inside the
workspace, links resolved), but the file system can change before it is used. So writes
inside the workspace walk down from the workspace's own folder, one component at a time,
each opened relative to the one before and never through a symlink (``O_NOFOLLOW``); the
file is written to a new temporary file in that very folder and renamed over the old one
there. A link put in place of a folder after the check makes the write fail; it can never
land outside.

Permissions are checked as the user's own process would be allowed (``faccessat`` with the
effective ids and capabilities), not by trying: a rename would replace a file its owner made
read-only. Errors are :class:`OSError` with the path and a reason a person can act on.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

__all__ = ["atomic_write", "check_writable", "open_folder", "remove_inside", "write_inside"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def check_writable(path: Path) -> None:
    """:class:`PermissionError` when the user may not change ``path`` (an existing file:
    itself; a new one: its folder)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        folder = path.parent
        if not os.access(folder, os.W_OK, effective_ids=_EFFECTIVE):
            raise PermissionError(
                errno.EACCES, f"you cannot create files in {folder}", str(path)
            ) from None
        return
    if not os.access(path, os.W_OK, effective_ids=_EFFECTIVE):
        raise PermissionError(
            errno.EACCES,
            f"you cannot write it (mode {stat.filemode(st.st_mode)[1:]})",
            str(path),
        )


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old or the new file, whole; in
    ``path``'s folder as it was opened (a folder swapped for a link meanwhile is not
    followed); refused where the user may not write."""
    fd = os.open(path.parent, _DIR_FLAGS)
    try:
        _write_at(fd, path.name, data, str(path))
    finally:
        os.close(fd)


def write_inside(root: Path, path: Path, data: bytes) -> None:
    """Write ``path`` (a resolved path under ``root``) as :func:`atomic_write` does,
    reaching its folder from ``root`` without following any link; missing folders are
    made."""
    fd, name = open_folder(root, path, create=True)
    try:
        _write_at(fd, name, data, str(path))
    finally:
        os.close(fd)


def remove_inside(root: Path, path: Path, *, missing_ok: bool = False) -> None:
    """Remove the file ``path`` under ``root``, reached without following any link."""
    try:
        fd, name = open_folder(root, path, create=False)
    except FileNotFoundError:
        if missing_ok:
            return
        raise
    try:
        try:
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            if not missing_ok:
                raise
    finally:
        os.close(fd)


def open_folder(root: Path, path: Path, *, create: bool) -> tuple[int, str]:
    """A descriptor of ``path``'s folder, opened from ``root`` one component at a time and
    never through a link, and the file's name in it. The caller closes the descriptor."""
    relative = path.relative_to(root)
    if not relative.parts:
        raise IsADirectoryError(errno.EISDIR, "is the workspace itself", str(path))
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in relative.parts[:-1]:
            try:
                child = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o777, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise OSError(
                        exc.errno,
                        f"{part} is a link or not a folder (changed since it was checked); "
                        "not written",
                        str(path),
                    ) from None
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd, relative.parts[-1]


def _write_at(folder: int, name: str, data: bytes, shown: str) -> None:
    try:
        st: os.stat_result | None = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise OSError(errno.ELOOP, "is a link (changed since it was checked)", shown)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "is not a regular file", shown)
        if not os.access(name, os.W_OK, dir_fd=folder, effective_ids=_EFFECTIVE):
            raise PermissionError(
                errno.EACCES, f"you cannot write it (mode {stat.filemode(st.st_mode)[1:]})", shown
            )
        mode = stat.S_IMODE(st.st_mode)
    else:
        if not os.access(".", os.W_OK, dir_fd=folder, effective_ids=_EFFECTIVE):
            raise PermissionError(errno.EACCES, "you cannot create files in its folder", shown)
        mode = 0o666 & ~_UMASK
    tmp = f".{name[:64]}.{secrets.token_hex(4)}.codexmax-tmp"
    fd = os.open(
        tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
        dir_fd=folder,
    )  # fmt: skip
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=folder)
        raise
    with contextlib.suppress(OSError):
        os.fsync(folder)


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` sets it process-wide,
    racing other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)  # at import: one thread, set back at once
    os.umask(current)
    return current


_UMASK = _umask()

#: Whether ``os.access`` can check with the effective ids (and so the capabilities the
#: process really has), as the system call that writes would.
_EFFECTIVE = os.access in os.supports_effective_ids
