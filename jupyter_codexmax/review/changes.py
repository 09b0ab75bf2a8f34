"""``--base REF``: what changed since a git commit, notebooks compared cell by cell.

A notebook's cells are matched by id (notebooks before nbformat 4.5 have none, and are
matched by position): a cell is *changed* when its id is new or its source differs from
the base's; cells of the base that are gone are *deleted*. A file's changed lines are the
new side of ``git diff --unified=0``. The working tree is compared, so uncommitted changes
count. Everything here reads; git is run with its optional locks off.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import CodexmaxError

__all__ = ["BaseError", "GitBase", "cell_changes", "changed_lines"]


class BaseError(CodexmaxError):
    """``--base`` cannot be used: no git repository, or no such commit (exit 2)."""

    exit_code = 2


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        return subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, env=env, timeout=60, check=False
        )
    except FileNotFoundError as exc:
        raise BaseError("--base needs git, and git is not installed") from exc


@dataclass
class GitBase:
    """A commit of the repository holding the inputs."""

    root: Path
    ref: str
    commit: str

    @classmethod
    def find(cls, ref: str, inputs: list[Path]) -> GitBase:
        """The repository of ``inputs`` (all in one) and ``ref`` in it, or :class:`BaseError`."""
        roots: dict[Path, Path] = {}
        for path in inputs:
            done = _git(path.parent, "rev-parse", "--show-toplevel")
            if done.returncode != 0:
                raise BaseError(f"--base {ref}: {path} is not in a git repository")
            roots[path] = Path(done.stdout.decode().strip()).resolve()
        found = set(roots.values())
        if len(found) > 1:
            raise BaseError(f"--base {ref}: the paths are in different git repositories")
        root = found.pop()
        if ref.startswith("-"):
            raise BaseError(f"--base {ref}: not a commit (a ref cannot start with '-')")
        done = _git(
            root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"
        )
        if done.returncode != 0:
            raise BaseError(f"--base {ref}: no such commit in {root}")
        return cls(root, ref, done.stdout.decode().strip())

    def old_bytes(self, path: Path) -> bytes | None:
        """``path`` as it was at the base (None: it did not exist there)."""
        relative = path.resolve().relative_to(self.root).as_posix()
        done = _git(self.root, "show", f"{self.commit}:{relative}")
        return done.stdout if done.returncode == 0 else None

    def diff(self, path: Path) -> str:
        """The unified diff of ``path`` from the base to the working tree."""
        relative = path.resolve().relative_to(self.root).as_posix()
        done = _git(self.root, "diff", "--no-color", "--unified=3", self.commit, "--", relative)
        return done.stdout.decode("utf-8", "replace")


_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", re.MULTILINE)


def changed_lines(diff: str) -> set[int]:
    """The new side's lines that a unified diff adds or changes (a pure deletion marks the
    line after it)."""
    lines: set[int] = set()
    number = 0
    for row in diff.splitlines():
        match = _HUNK.match(row)
        if match:
            number = int(match.group(1))
            count = int(match.group(2)) if match.group(2) is not None else 1
            if count == 0:
                lines.add(max(1, number + 1))
            continue
        if not number or row.startswith(("---", "+++")):
            continue
        if row.startswith("+"):
            lines.add(number)
            number += 1
        elif row.startswith(" "):
            number += 1
    return lines


def cell_changes(
    old_ids: list[str], old_sources: list[str], new_ids: list[str], new_sources: list[str]
) -> tuple[set[str], list[str], dict[str, str]]:
    """The ids of changed (new or edited) cells, of deleted cells, and each edited cell's
    diff."""
    from ..diffs import unified_diff

    old = dict(zip(old_ids, old_sources, strict=True))
    changed: set[str] = set()
    diffs: dict[str, str] = {}
    for cid, source in zip(new_ids, new_sources, strict=True):
        if cid not in old:
            changed.add(cid)
        elif old[cid] != source:
            changed.add(cid)
            diffs[cid] = unified_diff(
                old[cid], source, fromfile=f"cell {cid} (base)", tofile=f"cell {cid}"
            )
    deleted = [cid for cid in old_ids if cid not in set(new_ids)]
    return changed, deleted, diffs
