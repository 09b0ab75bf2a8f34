"""The agent's tools: notebook, files, patches, shell, plan."""

from __future__ import annotations

from .registry import Tool, ToolContext, ToolError, ToolRegistry, ToolResult

__all__ = ["Tool", "ToolContext", "ToolError", "ToolRegistry", "ToolResult", "default_tools"]


def default_tools() -> ToolRegistry:
    """Every tool, in the order the model is shown them."""
    from .files import ListFiles, ReadFile
    from .notebook import EditNotebook, ReadNotebook, RestartKernel, RunCells
    from .patch import ApplyPatch
    from .plan import UpdatePlan
    from .search import SearchFiles
    from .shell import Shell

    return ToolRegistry(
        [
            ReadNotebook(),
            EditNotebook(),
            RunCells(),
            RestartKernel(),
            ListFiles(),
            SearchFiles(),
            ReadFile(),
            ApplyPatch(),
            Shell(),
            UpdatePlan(),
        ]
    )
