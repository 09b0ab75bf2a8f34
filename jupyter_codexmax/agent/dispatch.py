"""Running the model's function calls: arguments, approvals, undo checkpoints, outputs.

Every call gets exactly one output item, whatever happens: a model-fixable problem (an
unknown tool, broken arguments, a refused action, a tool error) becomes that output, and
the turn goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .. import events as ev
from ..notebook.document import CellNotFound, Checkpoint, NotebookError, NotebookReadOnly
from ..notebook.view import cut_text
from ..providers.base import Item
from ..providers.items import function_call_output
from ..tools import ToolContext, ToolError, ToolResult
from ..tools.registry import Access
from ..tools.schema import MAX_NAME
from ..workspace import PathError
from .approvals import ApprovalRequest, next_request_id, policy

if TYPE_CHECKING:
    from ..config import CodexMax
    from ..notebook.document import NotebookDocument
    from ..runners.base import CellRunner
    from ..tools import ToolRegistry
    from ..workspace import Workspace
    from .approvals import Approver

__all__ = ["Dispatcher", "ToolHost", "TurnUndo", "failure_text"]


log = logging.getLogger("jupyter_codexmax.agent")


@dataclass
class TurnUndo:
    """What one turn changed, as it was before (the notebook, and files by path), and a
    digest of each file as the turn left it, so undo never overwrites later work."""

    notebook: Checkpoint | None = None
    files: dict[Path, bytes | None] = field(default_factory=dict)
    after: dict[Path, str | None] = field(default_factory=dict)

    def seal(self) -> None:
        """Remember how the turn left each file."""
        self.after = {path: _digest(path) for path in self.files}

    def conflicts(self) -> list[Path]:
        """Files changed (or created, or deleted) since the turn ended."""
        return [path for path, digest in self.after.items() if _digest(path) != digest]


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def failure_text(exc: BaseException) -> str:
    """One line saying what went wrong inside a tool: an ``OSError`` as the system says it
    (with the file, cut when long), anything else with its type."""
    if isinstance(exc, OSError) and exc.strerror:
        name = exc.filename
        where = ""
        if name is not None:
            where = str(name)
            where = f": {where if len(where) <= 200 else where[:200] + '...'}"
        return f"{exc.strerror}{where}"
    text = " ".join(str(exc).split())
    if len(text) > 500:
        text = text[:500] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ToolHost(Protocol):
    """What the dispatcher needs of the agent it works for (the agent core is one): where
    tools act, how they report, and who approves."""

    settings: CodexMax
    workspace: Workspace
    notebook: NotebookDocument | None
    runner: CellRunner | None
    tools: ToolRegistry
    tools_used: Counter[str]
    state: dict[str, Any]
    approval: str
    approver: Approver
    turns: int

    def emit(self, event: ev.Event) -> None: ...

    def redact(self, text: str) -> str: ...

    def redact_value(self, value: Any) -> Any: ...


class Dispatcher:
    """Runs function calls for a :class:`ToolHost` (the agent)."""

    def __init__(self, agent: ToolHost) -> None:
        self.agent = agent
        self.session_approvals: set[str] = set()
        #: The current turn's undo record (None until it changes something).
        self.undo: TurnUndo | None = None
        #: Whether the surfaces were told that commands run outside a sandbox.
        self.told_unconfined = False
        #: Whether the last call dispatched succeeded (for the loop guard).
        self.last_ok = False

    def context(self, propose: bool) -> ToolContext:
        agent = self.agent
        return ToolContext(
            settings=agent.settings,
            workspace=agent.workspace,
            doc=agent.notebook,
            runner=agent.runner,
            emit=agent.emit,
            redact=agent.redact,
            image_ok=agent.settings.model_info().images,
            propose_only=propose,
            before_file_change=self.remember_file,
            state=agent.state,
            cell_timeout=agent.settings.cell_timeout,
        )

    def remember_file(self, path: Path) -> None:
        if self.undo is None:
            self.undo = TurnUndo()
        if path not in self.undo.files:
            self.undo.files[path] = path.read_bytes() if path.is_file() else None

    def checkpoint_notebook(self) -> None:
        if self.undo is None:
            self.undo = TurnUndo()
        doc = self.agent.notebook
        if self.undo.notebook is None and doc is not None:
            self.undo.notebook = doc.checkpoint(f"before turn {self.agent.turns}")

    async def dispatch(self, call: Item) -> Item:
        """The output item for ``call`` (never raises for problems the model can fix)."""
        agent = self.agent
        call_id = str(call.get("call_id", ""))
        name = str(call.get("name", ""))
        started = time.monotonic()
        self.last_ok = False
        try:
            tool, args = agent.tools.prepare(name, call.get("arguments"))
            args = agent.redact_value(args)
        except ToolError as exc:
            text = agent.redact(f"error: {exc}")
            shown = name if len(name) <= MAX_NAME else name[:MAX_NAME] + "..."
            agent.emit(ev.ToolCallStarted(call_id, shown, {}, shown))
            agent.emit(
                ev.ToolCallFinished(
                    call_id, shown, False, text[7:], time.monotonic() - started, text
                )
            )
            return function_call_output(call_id, text)
        try:
            summary = agent.redact(tool.summarize(args))
        except Exception:  # a summary is a courtesy: the name will do
            log.debug("no summary for %s", tool.name, exc_info=True)
            summary = tool.name
        if len(summary) > 300:
            summary = summary[:300] + "..."
        agent.tools_used[name] += 1
        agent.emit(ev.ToolCallStarted(call_id, name, args, summary))
        access = tool.access_for(args)
        rule = policy(agent.approval, access)
        unconfined = ""
        if access == "shell" and rule == "allow":
            # ``auto`` runs commands unasked only inside the sandbox.
            from ..sandbox import sandbox_status

            status = await asyncio.to_thread(sandbox_status, agent.settings)
            if not status.active:
                rule, unconfined = "ask", status.describe()
                if not self.told_unconfined:
                    self.told_unconfined = True
                    agent.emit(
                        ev.Notice(
                            f"sandbox {unconfined}: shell commands are not confined, so "
                            "each one is asked even at the auto level"
                        )
                    )
        propose = rule == "propose"
        refusal: str | None = None
        if rule == "refuse":
            refusal = (
                f"refused: the approval level is {agent.approval}, which does not allow "
                f"{access.replace('_', ' ')}"
            )
        elif rule == "ask":
            try:
                detail = tool.approval_detail(self.context(False), args)
            except Exception as exc:  # a detail is a courtesy: the arguments will do
                log.debug("no approval detail for %s: %s", tool.name, exc)
                detail = str(args)
            refusal = await self.ask(
                tool.name, access, summary, args, detail, unconfined=unconfined
            )
            started = time.monotonic()  # the call's time is its own, not the person's
        if refusal is not None:
            self.last_ok = False
            agent.emit(
                ev.ToolCallFinished(
                    call_id, name, False, refusal, time.monotonic() - started, refusal
                )
            )
            return function_call_output(call_id, refusal)
        if not propose and access in ("notebook_edit", "run"):
            self.checkpoint_notebook()
        try:
            result = await tool.run(self.context(propose), args)
        except (ToolError, CellNotFound, NotebookReadOnly, PathError) as exc:
            result = ToolResult(f"error: {exc}", str(exc), ok=False)
        except NotebookError:
            # The notebook changed on disk since the agent read it: going on would overwrite
            # someone else's work. Not the model's to fix; the turn ends.
            raise
        except Exception as exc:
            # Anything else inside a tool (a full disk, a file that vanished, a bug) is the
            # call's output: the model reads it and the turn goes on.
            log.debug("%s failed", tool.name, exc_info=True)
            text = failure_text(exc)
            result = ToolResult(f"error: {text}", text, ok=False)
        self.last_ok = result.ok
        return self.output(call_id, name, result, started)

    async def ask(
        self,
        tool: str,
        access: Access,
        summary: str,
        args: dict[str, Any],
        detail: str,
        *,
        unconfined: str = "",
    ) -> str | None:
        """None when approved; else the text to give the model. ``unconfined`` (the
        sandbox's status) says why a command is asked at the ``auto`` level."""
        agent = self.agent
        key = f"{tool}:{args.get('command', '')}" if tool == "shell" else tool
        if key in self.session_approvals:
            return None
        request = ApprovalRequest(
            next_request_id(), access, tool, summary, agent.redact(detail)[:2_000], key
        )
        agent.emit(ev.ApprovalRequested(request.request_id, access, summary, request.detail))
        try:
            decision = await agent.approver(request)
        except asyncio.CancelledError:
            # Stopped while waiting: surfaces take the prompt down.
            agent.emit(ev.ApprovalResolved(request.request_id, "deny", "the turn was stopped"))
            raise
        reason = getattr(agent.approver, "reason", "")
        agent.emit(
            ev.ApprovalResolved(
                request.request_id, decision, reason if decision in ("deny", "refused") else ""
            )
        )
        if decision == "approve_session":
            self.session_approvals.add(key)
        if decision in ("approve", "approve_session"):
            return None
        if unconfined:
            why = "nobody can approve it in this run" if decision == "refused" else reason
            return (
                f"not done: {summary} needs approval because the sandbox is {unconfined}: "
                f"commands are not confined, so each one is asked; {why or 'it was denied'}"
            )
        return f"not done: {summary} needs approval, and {reason or 'it was denied'}"

    def output(self, call_id: str, name: str, result: ToolResult, started: float) -> Item:
        agent = self.agent
        text = cut_text(
            agent.redact(result.output), agent.settings.tool_output_limit, tail_share=0.4
        )
        agent.emit(
            ev.ToolCallFinished(
                call_id,
                name,
                result.ok,
                agent.redact(result.summary),
                time.monotonic() - started,
                cut_text(text, 2_000),
            )
        )
        if result.images and agent.settings.model_info().images:
            parts: list[dict[str, Any]] = [{"type": "input_text", "text": text}]
            parts.extend(
                {"type": "input_image", "image_url": image.data_url, "detail": "auto"}
                for image in result.images
            )
            return function_call_output(call_id, parts)
        return function_call_output(call_id, text)
