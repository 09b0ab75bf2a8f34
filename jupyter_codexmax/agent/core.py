"""The agent core: operations in, events out. Async; no UI; never prints.

Operations: :meth:`Agent.run_turn` (a user message), :meth:`Agent.stop`,
:meth:`Agent.resolve_approval`, :meth:`Agent.undo`. Everything that happens is sent, as
:mod:`.events`, to the ``on_event`` callback; every surface renders those.

A turn is a loop of *steps*: send the history to the model, stream its answer, run the
function calls it made, add their outputs, and go again, until the model answers without
calling a tool (done), the user stops it, or a fatal error ends it. The history keeps its
invariant at every exit: every function call has an output (an interrupted one gets
"aborted"). Tool errors the model can fix go back to it as the tool's output.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .. import secrets
from ..errors import CodexmaxError, ModelError
from ..notebook.document import CellNotFound, Checkpoint, NotebookDocument, NotebookReadOnly
from ..notebook.view import cut_text
from ..providers import (
    Completed,
    ModelRequest,
    OutputItem,
    Provider,
    Retrying,
    open_provider,
)
from ..providers import ReasoningDelta as ModelReasoningDelta
from ..providers import TextDelta as ModelTextDelta
from ..providers.base import Item, Usage
from ..providers.items import function_call_output, message_text, user_message
from ..tools import ToolContext, ToolError, ToolRegistry, ToolResult, default_tools
from ..tools.registry import Access
from ..workspace import PathError, Workspace
from . import events as ev
from .approvals import (
    ApprovalRequest,
    Approver,
    FutureApprover,
    RefusingApprover,
    next_request_id,
    policy,
)
from .instructions import agents_md, build_instructions, context_message

if TYPE_CHECKING:
    from ..config import CodexMax
    from ..runners.base import CellRunner

__all__ = ["Agent", "TurnResult"]

ABORTED = "aborted: the user stopped the turn before this call finished"

log = logging.getLogger("jupyter_codexmax.agent")


@dataclass
class TurnResult:
    """How a turn ended."""

    status: Literal["done", "stopped", "failed"]
    final_text: str = ""
    steps: int = 0
    error: str | None = None
    usage: Usage = field(default_factory=Usage)


@dataclass
class _TurnUndo:
    notebook: Checkpoint | None
    files: dict[Path, bytes | None] = field(default_factory=dict)


class Agent:
    """One session: a notebook (optional), a kernel, a workspace, a model, a history."""

    def __init__(
        self,
        settings: CodexMax,
        *,
        workspace: Workspace,
        notebook: NotebookDocument | None = None,
        runner: CellRunner | None = None,
        provider: Provider | None = None,
        approver: Approver | None = None,
        on_event: Callable[[ev.Event], None] | None = None,
        tools: ToolRegistry | None = None,
        approval: str | None = None,
        session_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.workspace = workspace
        self.notebook = notebook
        self.runner = runner
        self.provider = provider or open_provider(settings)
        self.approval = approval or settings.approval
        self.approver: Approver = approver or (
            FutureApprover() if self.approval == "ask" else RefusingApprover()
        )
        self.tools = tools or default_tools()
        self.session_id = session_id or uuid.uuid4().hex
        self._on_event = on_event
        self.history: list[Item] = []
        self.instructions = build_instructions(self.approval)
        self.turns = 0
        self.steps = 0
        self.usage_total = Usage()
        self.last_usage: Usage | None = None
        self.tools_used: Counter[str] = Counter()
        self.state: dict[str, Any] = {}
        self._undo: list[_TurnUndo] = []
        self._current_undo: _TurnUndo | None = None
        self._session_approvals: set[str] = set()
        self._task: asyncio.Task[TurnResult] | None = None
        self._stopping = False
        self._secret_values = secrets.credential_values(os.environ)

    # -- operations ---------------------------------------------------------------------------

    async def run_turn(
        self, message: str, *, model: str | None = None, effort: str | None = None
    ) -> TurnResult:
        """Send ``message`` and work until the turn ends. Returns how it ended; a stop ends
        it with status ``stopped``."""
        if self._task is not None and not self._task.done():
            raise CodexmaxError("a turn is already running")
        self._stopping = False
        self._task = asyncio.ensure_future(self._turn(message, model, effort))
        try:
            return await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if self._stopping and self._task.cancelled():
                return TurnResult("stopped", steps=self.steps)
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            raise

    def stop(self) -> bool:
        """Stop the running turn (tool calls in flight are aborted). False if none runs."""
        if self._task is None or self._task.done():
            return False
        self._stopping = True
        self._task.cancel()
        return True

    def resolve_approval(self, request_id: str, decision: str) -> bool:
        """Answer an approval request (approve, approve_session, deny)."""
        if isinstance(self.approver, FutureApprover):
            return self.approver.resolve(request_id, decision)  # type: ignore[arg-type]
        return False

    async def undo(self) -> str:
        """Put the notebook and files back as they were before the last turn's changes."""
        if not self._undo:
            return "nothing to undo"
        record = self._undo.pop()
        restored: list[str] = []
        if record.notebook is not None and self.notebook is not None:
            await self.notebook.restore(record.notebook)
            await self.notebook.save()
            restored.append(self.notebook.path.name)
        for path, content in record.files.items():
            from ..notebook.file import atomic_write

            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, content)
            restored.append(self.workspace.relative(path))
        note = (
            "The user undid the changes of your last turn: "
            + (", ".join(restored) or "nothing")
            + " restored as before it. The kernel's "
            "variables were not undone."
        )
        self.history.append(user_message(note, role="developer"))
        self._emit(ev.Notice(f"undone: {', '.join(restored) or 'nothing'}"))
        return note

    # -- the turn -----------------------------------------------------------------------------

    def _emit(self, event: ev.Event) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def redact(self, text: str) -> str:
        return secrets.redact(text, self._secret_values)

    def _start_context(self) -> None:
        from ..notebook.view import notebook_heading

        doc = self.notebook
        folder = doc.path.parent if doc is not None else self.workspace.root
        text = context_message(
            notebook_heading=notebook_heading(doc) if doc is not None else None,
            notebook_path=self.workspace.relative(doc.path) if doc is not None else None,
            workspace=self.workspace,
            agents=agents_md(self.workspace, folder, self.settings.agents_md_limit),
            kernel=self.runner.kernel_name if self.runner is not None else None,
        )
        self.history.append(user_message(self.redact(text), role="developer"))

    async def _turn(self, message: str, model: str | None, effort: str | None) -> TurnResult:
        self.turns += 1
        turn = self.turns
        self._current_undo = None
        self._emit(ev.TurnStarted(turn, message))
        if not self.history:
            self._start_context()
        self.history.append(user_message(message))
        steps = 0
        usage = Usage()
        try:
            while True:
                if steps >= self.settings.max_steps:
                    raise CodexmaxError(
                        f"stopped after {steps} requests to the model (CodexMax.max_steps)"
                    )
                steps += 1
                self.steps += 1
                self._emit(ev.StepStarted(turn, steps))
                items, completed = await self._sample(model, effort)
                if completed is not None and completed.usage is not None:
                    usage = usage + completed.usage
                    self._account(completed.usage)
                self.history.extend(items)
                calls = [i for i in items if i.get("type") == "function_call"]
                if completed is not None and completed.status == "incomplete" and not calls:
                    raise CodexmaxError(
                        "the model's answer was cut short "
                        f"({completed.incomplete_reason or 'incomplete'})"
                    )
                if not calls:
                    final = "".join(message_text(i) for i in items if i.get("type") == "message")
                    result = TurnResult("done", final, steps, usage=usage)
                    self._finish(turn, result)
                    return result
                for call in calls:
                    self.history.append(await self._dispatch(call))
        except asyncio.CancelledError:
            self._close_open_calls()
            self._finish(turn, TurnResult("stopped", steps=steps, usage=usage))
            raise
        except Exception as exc:
            # Model and API errors, a notebook changed on disk, a limit reached: the turn
            # ends, and says why. Anything else is a bug: the same, with its traceback logged.
            if not isinstance(exc, (ModelError, CodexmaxError)):
                log.exception("the agent failed unexpectedly")
                exc = CodexmaxError(f"internal error: {type(exc).__name__}: {exc}")
            self._close_open_calls()
            text = self.redact(str(exc))
            self._emit(ev.ErrorEvent(text))
            result = TurnResult("failed", steps=steps, error=text, usage=usage)
            self._finish(turn, result)
            return result

    def _finish(self, turn: int, result: TurnResult) -> None:
        if self._current_undo is not None:
            self._undo.append(self._current_undo)
            self._current_undo = None
        self._emit(
            ev.TurnFinished(turn, result.status, result.final_text, result.steps, result.error)
        )

    def _close_open_calls(self) -> None:
        """Keep the invariant: every function call in the history has an output."""
        answered = {
            i.get("call_id") for i in self.history if i.get("type") == "function_call_output"
        }
        for item in list(self.history):
            if item.get("type") == "function_call" and item.get("call_id") not in answered:
                self.history.append(function_call_output(str(item.get("call_id")), ABORTED))
                answered.add(item.get("call_id"))

    def _account(self, usage: Usage) -> None:
        self.last_usage = usage
        self.usage_total = self.usage_total + usage
        window = self.settings.model_info().context_window
        self._emit(
            ev.UsageUpdated(
                usage.input_tokens,
                usage.cached_input_tokens,
                usage.output_tokens,
                usage.reasoning_tokens,
                self.usage_total.input_tokens,
                self.usage_total.output_tokens,
                usage.input_tokens + usage.output_tokens,
                window,
            )
        )

    async def _sample(
        self, model: str | None, effort: str | None
    ) -> tuple[list[Item], Completed | None]:
        """One request: stream the answer out as events; return its finished items."""
        request = ModelRequest(
            input=list(self.history),
            instructions=self.instructions,
            tools=self.tools.specs(),
            model=model,
            effort=effort,
            prompt_cache_key=self.session_id,
        )
        items: list[Item] = []
        completed: Completed | None = None
        async with self.provider.stream(request) as stream:
            async for event in stream:
                if isinstance(event, ModelTextDelta):
                    self._emit(ev.TextDelta(event.text))
                elif isinstance(event, ModelReasoningDelta):
                    self._emit(ev.ReasoningDelta(event.text))
                elif isinstance(event, OutputItem):
                    items.append(event.item)
                    if event.item.get("type") == "message":
                        self._emit(ev.AssistantMessage(message_text(event.item)))
                elif isinstance(event, Retrying):
                    items = []
                    self._emit(
                        ev.RetryNotice(
                            event.attempt, event.max_retries, event.delay, self.redact(event.reason)
                        )
                    )
                elif isinstance(event, Completed):
                    completed = event
        return items, completed

    # -- tool calls ---------------------------------------------------------------------------

    def _context(self, propose: bool) -> ToolContext:
        return ToolContext(
            settings=self.settings,
            workspace=self.workspace,
            doc=self.notebook,
            runner=self.runner,
            emit=self._emit,
            redact=self.redact,
            image_ok=self.settings.model_info().images,
            propose_only=propose,
            before_file_change=self._remember_file,
            state=self.state,
            cell_timeout=self.settings.cell_timeout,
        )

    def _remember_file(self, path: Path) -> None:
        if self._current_undo is None:
            self._current_undo = _TurnUndo(None)
        if path not in self._current_undo.files:
            self._current_undo.files[path] = path.read_bytes() if path.is_file() else None

    def _checkpoint_notebook(self) -> None:
        if self._current_undo is None:
            self._current_undo = _TurnUndo(None)
        if self._current_undo.notebook is None and self.notebook is not None:
            self._current_undo.notebook = self.notebook.checkpoint(f"before turn {self.turns}")

    async def _dispatch(self, call: Item) -> Item:
        call_id = str(call.get("call_id", ""))
        name = str(call.get("name", ""))
        started = time.monotonic()
        try:
            tool, args = self.tools.prepare(name, call.get("arguments"))
        except ToolError as exc:
            text = f"error: {exc}"
            self._emit(ev.ToolCallStarted(call_id, name, {}, name))
            self._emit(
                ev.ToolCallFinished(
                    call_id, name, False, str(exc), time.monotonic() - started, text
                )
            )
            return function_call_output(call_id, text)
        summary = self.redact(tool.summarize(args))
        self.tools_used[name] += 1
        self._emit(ev.ToolCallStarted(call_id, name, args, summary))
        access = tool.access_for(args)
        rule = policy(self.approval, access)
        propose = rule == "propose"
        refusal: str | None = None
        if rule == "refuse":
            refusal = (
                f"refused: the approval level is {self.approval}, which does not allow "
                f"{access.replace('_', ' ')}"
            )
        elif rule == "ask":
            refusal = await self._ask(tool.name, access, summary, args)
        if refusal is not None:
            self._emit(
                ev.ToolCallFinished(
                    call_id, name, False, refusal, time.monotonic() - started, refusal
                )
            )
            return function_call_output(call_id, refusal)
        if not propose and access in ("notebook_edit", "run"):
            self._checkpoint_notebook()
        try:
            result = await tool.run(self._context(propose), args)
        except (ToolError, CellNotFound, NotebookReadOnly, PathError) as exc:
            result = ToolResult(f"error: {exc}", str(exc), ok=False)
        return self._output(call_id, name, result, started)

    async def _ask(
        self, tool: str, access: Access, summary: str, args: dict[str, Any]
    ) -> str | None:
        """None when approved; else the text to give the model."""
        key = f"{tool}:{args.get('command', '')}" if tool == "shell" else tool
        if key in self._session_approvals:
            return None
        request = ApprovalRequest(
            next_request_id(),
            access,
            tool,
            summary,
            self.redact(str(args))[:2_000],
            key,
        )
        self._emit(ev.ApprovalRequested(request.request_id, access, summary, request.detail))
        decision = await self.approver(request)
        reason = getattr(self.approver, "reason", "")
        self._emit(
            ev.ApprovalResolved(
                request.request_id, decision, reason if decision in ("deny", "refused") else ""
            )
        )
        if decision == "approve_session":
            self._session_approvals.add(key)
        if decision in ("approve", "approve_session"):
            return None
        return f"not done: {summary} needs approval, and {reason or 'it was denied'}"

    def _output(self, call_id: str, name: str, result: ToolResult, started: float) -> Item:
        text = cut_text(self.redact(result.output), self.settings.tool_output_limit, tail_share=0.4)
        duration = time.monotonic() - started
        self._emit(
            ev.ToolCallFinished(
                call_id,
                name,
                result.ok,
                self.redact(result.summary),
                duration,
                cut_text(text, 2_000),
            )
        )
        if result.images and self.settings.model_info().images:
            parts: list[dict[str, Any]] = [{"type": "input_text", "text": text}]
            parts.extend(
                {"type": "input_image", "image_url": image.data_url, "detail": "auto"}
                for image in result.images
            )
            return function_call_output(call_id, parts)
        return function_call_output(call_id, text)

    async def aclose(self) -> None:
        """Close the model connection and shut the kernel down."""
        if self._task is not None and not self._task.done():
            self.stop()
            with contextlib.suppress(BaseException):
                await self._task
        await self.provider.aclose()
        if self.runner is not None:
            await self.runner.shutdown()
