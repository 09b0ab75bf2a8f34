"""The OS sandbox for the agent's shell commands and headless runs' kernels.

On Linux, as the Codex CLI does: Landlock confines writes to the workspace and the temp
folders; where the machine allows namespaces (root, or unprivileged user namespaces), new
mount, PID and network namespaces make the rest of the file system read-only (metadata
too) and ``.git`` with it, end every process with the command, and take the network away
unless allowed. ``exec.py`` is the launcher that sets
this up in the child before it runs the command; ``policy.py`` says what is allowed and
what this machine can enforce; ``process.py`` runs a command through the launcher with its
timeout as cancellation. docs/agent.md ("The sandbox") tells what it does not cover.

Names are imported on first use: the launcher imports this package too, and must start
fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .policy import (
        Capabilities,
        SandboxPolicy,
        SandboxStatus,
        command_policy,
        is_protected,
        probe,
        protected_paths,
        sandbox_status,
    )
    from .process import CommandResult, run_command

__all__ = [
    "Capabilities",
    "CommandResult",
    "SandboxPolicy",
    "SandboxStatus",
    "command_policy",
    "is_protected",
    "probe",
    "protected_paths",
    "run_command",
    "sandbox_status",
]

_LAZY = {name: "policy" for name in __all__} | {
    "CommandResult": "process",
    "run_command": "process",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
