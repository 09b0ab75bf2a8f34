"""The review's tools: read (notebook, files, search, read-only commands), report a
finding, submit the verdict; with ``--run``, run cells in a throwaway kernel.

No tool offered here changes a notebook or a file: the notebook is a working copy that is
never written (:class:`~..notebook.detached.DetachedNotebook`), and commands run in the
sandbox with the workspace read-only (they may write only in the temp folders).
"""

from __future__ import annotations

import asyncio
import math
import os
from typing import TYPE_CHECKING, Any

from ..tools.registry import Access, Tool, ToolContext, ToolError, ToolRegistry, ToolResult
from ..tools.schema import PATH
from ..tools.shell import DEFAULT_TIMEOUT, OUTPUT_LIMIT, Shell
from .findings import SEVERITIES, Scope

if TYPE_CHECKING:
    from ..config import CodexMax
    from ..sandbox.policy import SandboxPolicy
    from ..workspace import Workspace

__all__ = ["ReadOnlyShell", "ReportFinding", "SubmitVerdict", "read_only_policy", "review_tools"]

#: The tools that read; with ``run``, also those that run cells (in a throwaway kernel).
READ_TOOLS = ("read_notebook", "list_files", "search_files", "read_file")


def _scope(ctx: ToolContext) -> Scope:
    scope = ctx.state.get("review")
    if not isinstance(scope, Scope):
        raise ToolError("there is no review in progress")
    return scope


class ReportFinding(Tool):
    name = "report_finding"
    description = (
        "Report one finding of the review: a real, actionable problem in the code under "
        "review. Notebooks: give cell_id (and the line within the cell where it applies); "
        "files: give path and line. A location that does not exist or is not under review "
        "is refused: read the code first and cite it exactly."
    )
    parameters = {
        "type": "object",
        "properties": {
            "severity": {
                "type": "string",
                "enum": list(SEVERITIES),
                "description": "critical: data loss, security, crash in the common path; "
                "high: a real bug; medium: an edge case; low: minor; info: a note.",
            },
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "body": {
                "type": "string",
                "minLength": 1,
                "maxLength": 8_000,
                "description": "Why it is a problem, when it happens (Markdown, one paragraph).",
            },
            "cell_id": {"type": "string", "maxLength": 1_000, "description": "Notebooks."},
            "path": {**PATH, "description": "The notebook or file (optional for one notebook)."},
            "line": {
                "type": "integer",
                "minimum": 1,
                "maximum": 10_000_000,
                "description": "1-based: within the cell for notebooks, in the file for files.",
            },
            "suggestion": {
                "type": "string",
                "maxLength": 20_000,
                "description": "Replacement code for the cell or the line(s), if one is clear.",
            },
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["severity", "title", "body", "confidence"],
        "additionalProperties": False,
    }

    def summarize(self, args: dict[str, Any]) -> str:
        where = args.get("cell_id") or args.get("path") or "?"
        return f"finding {args.get('severity', '?')} at {where}: {args.get('title', '')}"[:200]

    def check(self, args: dict[str, Any]) -> None:
        if not args.get("cell_id") and not args.get("path"):
            raise ToolError("give where the finding is: cell_id (notebooks) or path and line")

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        scope = _scope(ctx)
        finding = scope.locate(args)
        number = scope.add(finding)
        return ToolResult(
            f"recorded finding {number} ({finding.severity}) at {finding.where()}",
            f"{finding.severity}: {finding.title}",
        )


class SubmitVerdict(Tool):
    name = "submit_verdict"
    description = (
        "End the review with the overall verdict, after every finding is reported: "
        "'correct' (nothing blocks it) or 'needs_changes', with a short explanation. Then "
        "answer with one line and stop."
    )
    parameters = {
        "type": "object",
        "properties": {
            "verdict": {"type": "string", "enum": ["correct", "needs_changes"]},
            "explanation": {"type": "string", "minLength": 1, "maxLength": 4_000},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["verdict", "explanation"],
        "additionalProperties": False,
    }

    def summarize(self, args: dict[str, Any]) -> str:
        return f"verdict: {args.get('verdict', '?')}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        from .findings import Verdict

        scope = _scope(ctx)
        again = scope.verdict is not None
        confidence = args.get("confidence")
        scope.verdict = Verdict(
            str(args["verdict"]),
            str(args["explanation"]).strip(),
            float(confidence) if confidence is not None else None,
        )
        said = "verdict replaced" if again else "verdict recorded"
        return ToolResult(
            f"{said}: {scope.verdict.verdict} ({len(scope.findings)} finding(s)); now answer "
            "with one line and stop",
            f"{scope.verdict.verdict}",
        )


def read_only_policy(settings: CodexMax, workspace: Workspace) -> SandboxPolicy | None:
    """The sandbox for the review's commands and kernel: as the agent's, but writable only
    in the temp folders, and the workspace read-only even where it lies in one (a
    read-only mount). None where there is no sandbox, or where the workspace is in a temp
    folder and read-only mounts are not available (it would be writable)."""
    import dataclasses

    from ..sandbox import command_policy, sandbox_status
    from ..sandbox.policy import temp_folders

    status = sandbox_status(settings)
    if not status.active:
        return None
    temps = temp_folders()
    root = workspace.root
    inside_temp = any(root == t or t in root.parents for t in temps)
    if inside_temp and not status.capabilities.read_only:
        return None
    policy = command_policy(settings, workspace, status)
    read_only = policy.read_only if not inside_temp else (*policy.read_only, str(root))
    return dataclasses.replace(
        policy,
        write=tuple(str(t) for t in temps),
        beside_home=(),
        home="",
        read_only=read_only,
    )


class ReadOnlyShell(Shell):
    """``shell`` for a review: commands that read (git log, grep, python -c ...), in the
    sandbox with the workspace read-only. Without the sandbox it refuses: a pattern on
    the command's text is no fence."""

    description = (
        "Run a read-only bash command in the workspace (git log/diff/show, grep, running a "
        "script that only reads): the workspace is read-only, writes go only to temp "
        "folders, no network. Returns exit code and output (long output cut)."
    )
    access: Access = "read"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        from ..notebook.view import cut_text, strip_ansi
        from ..sandbox import run_command, sandbox_status
        from ..secrets import without_credentials
        from ..workspace import PathError

        self.check(args)
        policy = await asyncio.to_thread(read_only_policy, ctx.settings, ctx.workspace)
        if policy is None:
            status = sandbox_status(ctx.settings)
            why = (
                f"the OS sandbox, which is {status.describe()}"
                if not status.active
                else "read-only mounts to keep the workspace (in a temp folder) read-only"
            )
            raise ToolError(
                f"refused: read-only commands need {why}; read with read_file, search_files "
                "and read_notebook instead"
            )
        try:
            cwd = ctx.workspace.resolve(args.get("cwd") or ".", must_exist=True)
        except PathError as exc:
            raise ToolError(str(exc)) from exc
        if not cwd.is_dir():
            raise ToolError(f"{args.get('cwd')} is not a folder")
        timeout = float(args.get("timeout") or DEFAULT_TIMEOUT)
        if not math.isfinite(timeout) or timeout <= 0:
            raise ToolError(f"timeout must be a positive number of seconds, not {timeout}")
        env = without_credentials(os.environ, also=(ctx.settings.api_key_env,))
        env.update(PAGER="cat", GIT_PAGER="cat", GIT_OPTIONAL_LOCKS="0")
        done = await run_command(
            policy, ["bash", "-c", str(args["command"])], cwd=str(cwd), env=env, timeout=timeout
        )
        text = ctx.redact(cut_text(strip_ansi(done.output), OUTPUT_LIMIT))
        head = (
            f"timed out after {timeout:g} s"
            if done.timed_out
            else f"exit {done.returncode} in {done.duration:.1f}s"
        )
        ok = done.returncode == 0 and not done.timed_out
        return ToolResult(f"{head}\n{text}".rstrip(), head, ok=ok)


def review_tools(*, notebook: bool, run: bool) -> ToolRegistry:
    """The tools a review is offered: reading, ``report_finding``, ``submit_verdict``;
    with ``run`` (and a notebook) running cells in the throwaway kernel."""
    from ..tools.files import ListFiles, ReadFile
    from ..tools.notebook import ReadNotebook, RestartKernel, RunCells
    from ..tools.search import SearchFiles

    tools: list[Tool] = []
    if notebook:
        tools.append(ReadNotebook())
        if run:
            tools += [RunCells(), RestartKernel()]
    tools += [ListFiles(), SearchFiles(), ReadFile(), ReadOnlyShell()]
    tools += [ReportFinding(), SubmitVerdict()]
    return ToolRegistry(tools)
