"""The system prompt (a template file) and the session's context: the notebook, the
workspace, and AGENTS.md files from the workspace root down to the notebook's folder, as the
Codex CLI reads them."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from string import Template

from ..workspace import Workspace

__all__ = ["agents_md", "build_instructions", "context_message"]

_APPROVAL_NOTES = {
    "read-only": (
        "Approval level: read-only. You may read and search, but not change anything: edits "
        "and patches come back as proposals for the user, and running cells or commands is "
        "refused. Propose the changes the task needs."
    ),
    "ask": (
        "Approval level: ask. Notebook edits are applied (the user can undo them). Running "
        "cells, shell commands, kernel restarts and writing other files need the user's "
        "approval; a refusal comes back as the tool's result."
    ),
    "auto": "Approval level: auto. You may change and run anything inside the workspace.",
}


@cache
def _template() -> Template:
    text = resources.files(__package__).joinpath("prompts/instructions.md").read_text("utf-8")
    return Template(text)


def build_instructions(approval: str) -> str:
    return _template().substitute(approval_note=_APPROVAL_NOTES[approval]).strip()


def agents_md(workspace: Workspace, folder: Path, limit: int) -> str:
    """AGENTS.md files from the workspace root down to ``folder``, joined; at most
    ``limit`` bytes (cut with a marker)."""
    folders = [workspace.root]
    try:
        relative = folder.resolve().relative_to(workspace.root)
    except ValueError:
        relative = Path()
    current = workspace.root
    for part in relative.parts:
        current = current / part
        folders.append(current)
    parts: list[str] = []
    for place in folders:
        path = place / "AGENTS.md"
        if path.is_file() and workspace.contains(path.resolve()):
            try:
                text = path.read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                continue
            if text:
                parts.append(f"AGENTS.md in {workspace.relative(place)}:\n{text}")
    joined = "\n\n".join(parts)
    data = joined.encode("utf-8")
    if len(data) > limit:
        joined = data[:limit].decode("utf-8", "ignore") + (
            f"\n[... AGENTS.md cut: {len(data) - limit:,} more bytes]"
        )
    return joined


def context_message(
    *,
    notebook_heading: str | None,
    notebook_path: str | None,
    workspace: Workspace,
    agents: str,
    kernel: str | None,
) -> str:
    """The first message of a session: where the agent is."""
    lines = [f"Workspace: {workspace.root}"]
    if notebook_heading:
        lines.append(f"Notebook: {notebook_path} ({notebook_heading})")
    if kernel:
        lines.append(
            f"Kernel: {kernel}; it starts when a cell is first run, with no variables defined."
        )
    if agents:
        lines.append("")
        lines.append("Project instructions:")
        lines.append(agents)
    return "\n".join(lines)
