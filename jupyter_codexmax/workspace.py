"""The workspace: the folder the agent may read and change, and the paths inside it.

The root is the nearest folder holding ``.git`` above the notebook, else the notebook's own
folder, unless set explicitly. Every path a tool is given is resolved (``..``, symlinks,
``~``) and must stay inside the root: ``../secrets``, ``/etc/passwd`` and a symlink that
points out are all refused with a message the model can act on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import CodexmaxError

__all__ = ["MAX_PATH", "PathError", "Workspace", "absolute", "check_length", "find_root"]

#: Folders the file tools skip when listing and searching (they can still be read by path).
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "__pycache__",
        ".ipynb_checkpoints",
        ".venv",
        "venv",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".tox",
        ".nox",
        "dist",
        "build",
        ".eggs",
        ".cache",
    }
)


class PathError(CodexmaxError):
    """A path outside the workspace, or one that does not exist. Told to the model."""


def absolute(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute with its folder resolved, but not its last part: a notebook
    that is a link is where the link is (its workspace is there), not where it points."""
    plain = Path(os.path.abspath(Path(path).expanduser()))
    return plain.parent.resolve() / plain.name


#: The longest path a tool accepts, and the longest name in it (Linux's PATH_MAX and
#: NAME_MAX): longer ones cannot be opened anyway, and would cost time to resolve.
MAX_PATH = 4096
MAX_NAME = 255


def check_length(raw: str) -> None:
    """:class:`PathError` for a path or a part of it longer than the system allows."""
    if len(raw) > MAX_PATH:
        raise PathError(
            f"{raw[:60]}...: the path is {len(raw):,} characters long; at most {MAX_PATH:,}"
        )
    longest = max(raw.split("/"), key=len)
    if len(longest.encode("utf-8", "surrogateescape")) > MAX_NAME:
        raise PathError(
            f"{longest[:60]}...: a name in the path is {len(longest):,} characters long; "
            f"at most {MAX_NAME} bytes"
        )


def find_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` that holds ``.git``; else ``start``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


@dataclass(frozen=True)
class Workspace:
    """A resolved root folder, and the rules for paths inside it."""

    root: Path

    @classmethod
    def for_notebook(cls, notebook: Path, root: str | Path | None = None) -> Workspace:
        if root:
            resolved = Path(root).expanduser().resolve()
            if not resolved.is_dir():
                raise PathError(f"workspace root {root} is not a folder")
            return cls(resolved)
        return cls(find_root(absolute(notebook).parent))

    def resolve(
        self, path: str | os.PathLike[str], *, must_exist: bool = False, base: Path | None = None
    ) -> Path:
        """``path`` (relative to ``base`` or the root) resolved, or :class:`PathError`."""
        raw = os.fspath(path).strip()
        if not raw:
            raise PathError("empty path")
        if "\0" in raw:
            raise PathError("a path cannot contain a NUL character")
        check_length(raw)
        candidate = Path(raw).expanduser()
        if not candidate.is_absolute():
            candidate = (base or self.root) / candidate
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop
            raise PathError(f"{raw}: cannot be resolved: {exc}") from exc
        if not self.contains(resolved):
            shown = self.display(resolved) if resolved.is_absolute() else raw
            note = " (through a symlink)" if self._escapes_by_link(candidate) else ""
            raise PathError(
                f"{raw}: outside the workspace{note} ({shown} is not under {self.root}); "
                "only paths inside the workspace can be used"
            )
        if must_exist:
            try:
                found = resolved.exists()
            except OSError as exc:  # too long once joined to the root, a loop, no access
                raise PathError(f"{raw}: {exc.strerror or exc}") from exc
            if not found:
                raise PathError(f"{raw}: no such file or folder in the workspace")
        return resolved

    def contains(self, path: Path) -> bool:
        """Whether ``path`` (resolved) is the root or under it; linear in its length."""
        root = self.root.parts
        return path.parts[: len(root)] == root

    def relative(self, path: Path) -> str:
        """``path`` relative to the root, with forward slashes (for the model)."""
        try:
            return path.relative_to(self.root).as_posix() or "."
        except ValueError:
            return str(path)

    def display(self, path: Path) -> str:
        return self.relative(path) if self.contains(path) else str(path)

    def _escapes_by_link(self, candidate: Path) -> bool:
        """Whether the plain (unresolved) path is inside but a link takes it out."""
        try:
            normal = Path(os.path.normpath(candidate))
        except ValueError:
            return False
        return self.contains(normal)
