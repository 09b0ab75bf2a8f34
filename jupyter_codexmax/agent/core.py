"""The agent core: operations in, events out. Async; no UI; never prints.

Operations: :meth:`Agent.run_turn` (a user message), :meth:`Agent.stop`,
:meth:`Agent.resolve_approval`, :meth:`Agent.undo`, :meth:`Agent.compact`. Everything that
happens is sent, as :mod:`.events`, to the ``on_event`` callback; every surface renders those.

A turn is a loop of *steps*: send the history to the model, stream its answer, run the
function calls it made, add their outputs, and go again, until the model answers without
calling a tool (done), the user stops it, or a fatal error ends it. Before each request the
context is measured, and compacted when it would pass the threshold; a request refused as
too long is compacted and sent again once. The history keeps its invariant at every exit:
every function call has an output (an interrupted one gets "aborted"). After every turn the
session is saved with the notebook and the journal marks it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .. import events as ev
from .. import secrets
from ..errors import CodexmaxError, ContextLengthExceeded, ModelError
from ..notebook.document import NotebookDocument
from ..providers import Completed, ModelRequest, OutputItem, Provider, Retrying, open_provider
from ..providers import ReasoningDelta as ModelReasoningDelta
from ..providers import TextDelta as ModelTextDelta
from ..providers.base import Item, Usage
from ..providers.items import function_call_output, message_text, user_message
from ..session import integrity
from ..session.journal import Journal, history_at
from ..session.store import SessionRecord, now, record_digest
from ..tools import ToolRegistry, default_tools
from ..workspace import Workspace
from .accounting import ContextMeter, Price, cost_of, price_for
from .approvals import Approver, FutureApprover, RefusingApprover
from .compaction import COMPACTION_TARGET, CompactionError, compact_history
from .dispatch import Dispatcher, TurnUndo, failure_text
from .guard import LoopGuard, RepeatedFailure
from .instructions import agents_md, build_instructions, context_message
from .ledger import Ledger
from .session import (
    SaveSession,
    build_record,
    notebook_saver,
    notebook_view,
    quoted_history,
    reapply_note,
    resumed_history,
    stored_messages,
)
from .tokens import TokenCounter

if TYPE_CHECKING:
    from ..config import CodexMax
    from ..runners.base import CellRunner

__all__ = ["ABORTED", "Agent", "TurnResult"]

ABORTED = "aborted: the user stopped the turn before this call finished"
NOT_RUN = "not run: the turn ended with an error before this call finished"

log = logging.getLogger("jupyter_codexmax.agent")


@dataclass
class TurnResult:
    """How a turn ended."""

    status: Literal["done", "stopped", "failed"]
    final_text: str = ""
    steps: int = 0
    error: str | None = None
    usage: Usage = field(default_factory=Usage)


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
        resume: SessionRecord | None = None,
        save_session: SaveSession | None = None,
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
        self._on_event = on_event
        self.instructions = build_instructions(self.approval)
        #: Whether a new session's first request holds the notebook's view (a review
        #: presents what it reviews itself, and turns this off).
        self.view_at_start = True
        self.counter = TokenCounter.from_settings(settings)
        self.meter = ContextMeter(
            self.counter, settings.model_info().context_window, settings.compaction_threshold
        )
        self.ledger = Ledger()
        self.dispatcher = Dispatcher(self)
        self.session_id = uuid.uuid4().hex
        self.created = now()
        self.history: list[Item] = []
        #: Tokens of each history item, counted once when it is added.
        self._sizes: list[int] = []
        #: Compactions in a row after which the server still reported a context over the
        #: threshold; whether the next report is the first after one; and what compaction
        #: requests used during the turn (added to the turn's usage).
        self._futile_compactions = 0
        self._journal_told = False
        #: Notes for the model given before the history began (:meth:`add_note`).
        self._early_notes: list[Item] = []
        #: Whether the session continued came from another machine or person (unverified).
        self.foreign = False
        #: What became of a resumed session's proposals, for the user (None: it had none).
        self.reapplied: str | None = None
        #: Why the last save of the session failed (None: it was saved).
        self.save_error: str | None = None
        self._after_compaction = False
        self._extra_usage = Usage()
        self.turns = 0
        self.steps = 0
        self.compactions = 0
        self.usage_total = Usage()
        self.cost = 0.0
        #: The model that answered, as the server named it (None before the first answer).
        self.served_model: str | None = None
        self.last_usage: Usage | None = None
        self.last_summary: Item | None = None
        self.tools_used: Counter[str] = Counter()
        self.state: dict[str, Any] = {}
        self._undo: list[TurnUndo] = []
        self._task: asyncio.Task[TurnResult] | None = None
        #: The running turn announced its end (it only returns now).
        self._ended = False
        #: The running turn is finishing: its outcome is settled, its session being saved.
        self._finishing = False
        self._last_result: TurnResult | None = None
        self._stopping = False
        self._secret_values = secrets.credential_values(os.environ)
        secrets.register(*self._secret_values)  # logs and errors mask them too
        self._fixed_tokens: int | None = None
        if save_session is None and notebook is not None:
            save_session = notebook_saver(notebook)
        self._save_session = save_session
        #: Whether the session saver writes the notebook (then not at the read-only level).
        self.saver_writes_notebook = True
        if resume is not None:
            self._resume(resume)
        self.journal = (
            Journal(self.session_id, secret_values=self._secret_values)
            if settings.journal
            else None
        )
        if self.journal is not None:
            self.journal.write(
                "start",
                session_id=self.session_id,
                notebook=str(notebook.path) if notebook else None,
                model=settings.model,
                provider=settings.provider,
                resumed=resume is not None,
            )
            if self.history:
                self.journal.write("replace", items=self.history, reason="resume")

    # -- operations ---------------------------------------------------------------------------

    async def run_turn(
        self, message: str, *, model: str | None = None, effort: str | None = None
    ) -> TurnResult:
        """Send ``message`` and work until the turn ends. Returns how it ended; a stop ends
        it with status ``stopped``."""
        self._idle_or_raise()
        self._stopping = False
        self._last_result = None
        self._ended = False
        self._finishing = False
        task = self._task = asyncio.ensure_future(self._turn(message, model, effort))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if self._stopping and task.cancelled():
                return self._last_result or TurnResult("stopped")
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise

    def use_notebook(
        self,
        notebook: NotebookDocument | None,
        runner: CellRunner | None,
        save_session: SaveSession | None,
        *,
        saver_writes_notebook: bool = True,
    ) -> None:
        """Work on another document of the same notebook from now on (between turns): the
        kernel's working copy, or the frontend's live notebook once a bridge is there. What
        undo remembers belonged to the other one, and is dropped. ``saver_writes_notebook``
        False: the saver writes no notebook (a kernel's cell output), so it is used at the
        read-only level too."""
        self._idle_or_raise()
        self.notebook = notebook
        self.runner = runner
        self._save_session = save_session
        self.saver_writes_notebook = saver_writes_notebook
        self._undo.clear()
        self.dispatcher.undo = None
        self._fixed_tokens = None

    def add_note(self, text: str) -> None:
        """A note for the model, read with the next request (between turns; before the
        first turn, it follows the context the history starts with)."""
        self._idle_or_raise()
        note = user_message(self.redact(text), role="developer")
        if self.history:
            self._extend([note])
        else:
            self._early_notes.append(note)

    def set_approval(self, level: str) -> None:
        """Change the approval level (between turns); the instructions say which it is."""
        if level == self.approval:
            return
        self.approval = level
        self.instructions = build_instructions(level)
        self._fixed_tokens = None

    @property
    def busy(self) -> bool:
        """Whether a turn is running: until its end is announced (``TurnFinished``), so a
        surface that heard the end may ask for the status, or start the next turn, at once."""
        return self._task is not None and not self._task.done() and not self._ended

    def stop(self) -> bool:
        """Stop the running turn (tool calls in flight are aborted). False if none runs. A
        second stop while the first is under way does nothing more (the turn is finishing:
        saving, saying so)."""
        if self._task is None or not self.busy or self._finishing:
            # Nothing runs, or the turn is finishing (its answer complete, its session
            # being saved): too late to stop it, and it ends as it is.
            return self._stopping and self.busy
        if not self._stopping:
            self._stopping = True
            self._task.cancel()
        return True

    def resolve_approval(self, request_id: str, decision: str) -> bool:
        """Answer an approval request (approve, approve_session, deny)."""
        if isinstance(self.approver, FutureApprover):
            return self.approver.resolve(request_id, decision)  # type: ignore[arg-type]
        return False

    async def compact(self) -> str:
        """Compact the history now (between turns), and save the session."""
        self._idle_or_raise()
        if not self.history:
            return "nothing to compact"
        before = self.context_tokens()
        await self._compact("requested", before)
        self._extra_usage = Usage()  # billed to the session; no turn to add it to
        await self._persist("compacted")
        return f"compacted: {before:,} -> {self.context_tokens():,} tokens"

    async def undo(self) -> str:
        """Put the notebook and files back as they were before the last turn's changes.

        Refused, with nothing changed, when any of them was changed since by someone else:
        undo never overwrites later work."""
        self._idle_or_raise()
        if not self._undo:
            return "nothing to undo"
        from ..safefs import remove_inside, write_inside

        record = self._undo[-1]
        conflicts = [self.workspace.relative(p) for p in record.conflicts()]
        doc = self.notebook if record.notebook is not None else None
        if doc is not None and doc.changed_elsewhere():
            conflicts.insert(0, doc.path.name)
        if conflicts:
            raise CodexmaxError(
                f"cannot undo: {', '.join(conflicts)} changed since the agent's last turn; "
                "nothing was undone"
            )
        restored: list[str] = []
        if doc is not None and record.notebook is not None:
            await doc.restore(record.notebook)
            await doc.save()
            restored.append(doc.path.name)
        for path, content in record.files.items():
            root = self.workspace.root
            if content is None:
                remove_inside(root, path, missing_ok=True)
            else:
                write_inside(root, path, content)
            restored.append(self.workspace.relative(path))
        self._undo.pop()
        note = (
            "The user undid the changes of your last turn: "
            + (", ".join(restored) or "nothing")
            + " restored as before it. The kernel's "
            "variables were not undone."
        )
        self._extend([user_message(note, role="developer")])
        self.emit(ev.Notice(f"undone: {', '.join(restored) or 'nothing'}"))
        await self._persist("undone")
        return note

    def _idle_or_raise(self) -> None:
        if self.busy:
            raise CodexmaxError("a turn is already running")

    # -- events, history, secrets -------------------------------------------------------------

    def emit(self, event: ev.Event) -> None:
        """Send an event to the surfaces (and the ledger), with every secret masked. The
        model's streamed words are not scanned piece by piece (hundreds a turn): the model
        never saw a secret (everything it reads is masked on the way in), so it cannot
        write one; its whole messages are masked when they enter the history."""
        if not isinstance(event, (ev.TextDelta, ev.ReasoningDelta)):
            event = self._redact_event(event)
        self.ledger.observe(event)
        if self._on_event is not None:
            self._on_event(event)

    def redact(self, text: str) -> str:
        return secrets.redact(text, self._secret_values)

    def redact_value(self, value: Any) -> Any:
        """``value`` (strings, lists, dicts) with every secret masked."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact_value(v) for v in value]
        return value

    def _redact_event(self, event: ev.Event) -> ev.Event:
        changes = {}
        for item in dataclasses.fields(event):
            value = getattr(event, item.name)
            if isinstance(value, (str, dict, list)):
                cleaned = self.redact_value(value)
                if cleaned != value:
                    changes[item.name] = cleaned
        return dataclasses.replace(event, **changes) if changes else event

    def _extend(self, items: Sequence[Item]) -> None:
        # Whatever enters the history is what requests carry: the one redaction on the way
        # to the model (tool outputs, notes and messages were masked already; this also
        # holds for anything added later).
        items = [self.redact_value(i) for i in items]
        self.history.extend(items)
        self._sizes.extend(self.counter.count_items([i]) for i in items)
        if self.journal is not None and items:
            self._journal("items", items=list(items))

    def _replace(self, items: list[Item], reason: str) -> None:
        items = [self.redact_value(i) for i in items]
        self.history = items
        self._sizes = [self.counter.count_items([i]) for i in items]
        if self.journal is not None:
            self._journal("replace", items=items, reason=reason)

    def _head(self) -> list[Item]:
        """What a rebuilt history starts with: where the agent is, and the ledger."""
        from ..notebook.view import notebook_heading

        doc = self.notebook
        folder = doc.location.parent if doc is not None else self.workspace.root
        text = context_message(
            notebook_heading=notebook_heading(doc) if doc is not None else None,
            notebook_path=self.workspace.relative(doc.location) if doc is not None else None,
            workspace=self.workspace,
            agents=agents_md(self.workspace, folder, self.settings.agents_md_limit),
            kernel=self.runner.kernel_name if self.runner is not None else None,
        )
        head = [user_message(self.redact(text), role="developer")]
        if self.ledger.task:
            # What happened, and what was said and printed: data, in a user-role message
            # (it holds cell errors, commands and the user's tasks, never instructions).
            head.append(user_message(self.redact(self.ledger.render())))
        return head

    # -- accounting ---------------------------------------------------------------------------

    def fixed_tokens(self) -> int:
        """Tokens of the instructions and tool schemas, sent with every request."""
        if self._fixed_tokens is None:
            specs = [
                {"name": s.name, "description": s.description, "parameters": s.parameters}
                for s in self.tools.specs()
            ]
            self._fixed_tokens = self.counter.count(self.instructions + json.dumps(specs))
        return self._fixed_tokens

    def context_tokens(self) -> int:
        """How full the context is now (the last report plus an estimate since)."""
        return self.meter.estimate(self.item_sizes(), self.fixed_tokens())

    def item_sizes(self) -> list[int]:
        """Tokens of each history item (recounted only if the history was set from outside)."""
        if len(self._sizes) != len(self.history):
            self._sizes = [self.counter.count_items([i]) for i in self.history]
        return self._sizes

    def _account(self, usage: Usage) -> None:
        """A step's usage: the server's report of how full the context is, and the totals."""
        self.last_usage = usage
        self.meter.report(usage, len(self.history))
        if self._after_compaction:
            # The first report after a compaction says whether it helped, by the server's
            # own count: compactions that do not are counted (the guard stops a loop).
            self._after_compaction = False
            over = self.meter.over(usage.input_tokens + usage.output_tokens)
            self._futile_compactions = self._futile_compactions + 1 if over else 0
        self._add_usage(usage, usage.input_tokens + usage.output_tokens)

    def _add_usage(self, usage: Usage, context_tokens: int) -> None:
        """Add ``usage`` to the session's totals and cost, and tell the surfaces."""
        self.usage_total = self.usage_total + usage
        price = self.price()
        self.cost += cost_of(usage, price)
        self.emit(
            ev.UsageUpdated(
                usage.input_tokens,
                usage.cached_input_tokens,
                usage.output_tokens,
                usage.reasoning_tokens,
                self.usage_total.input_tokens,
                self.usage_total.output_tokens,
                context_tokens,
                self.meter.window,
                round(self.cost, 6) if price is not None else None,
                self.served_model or "",
            )
        )

    def price(self) -> Price | None:
        """The price of the model that answers (the configured one until one answered);
        None when unknown: no cost is shown."""
        return price_for(self.served_model or self.settings.model, self.settings.prices)

    # -- the turn -----------------------------------------------------------------------------

    async def _turn(self, message: str, model: str | None, effort: str | None) -> TurnResult:
        self.turns += 1
        turn = self.turns
        self.dispatcher.undo = None
        if not self.history:
            # A new session: where it is, then the notebook as it is now (so the first
            # request already has the cells the user sees, unsaved ones included). Made
            # before the turn is announced: the ledger has nothing to say yet (it would
            # repeat the message that follows).
            view = notebook_view(self.notebook, self.redact) if self.view_at_start else []
            self._extend([*self._head(), *view, *self._early_notes])
            self._early_notes.clear()
        self.emit(ev.TurnStarted(turn, message))
        masked = self.redact(message)
        if masked != message:
            self.emit(ev.Notice("a credential in the message was masked before the model saw it"))
        self._extend([user_message(masked)])
        steps = 0
        usage = Usage()
        guard = LoopGuard(self.settings.repeated_failure_limit)
        empty = 0
        try:
            while True:
                if steps >= self.settings.max_steps:
                    raise CodexmaxError(
                        f"stopped after {steps} requests to the model (CodexMax.max_steps)"
                    )
                await self._compact_if_needed()
                steps += 1
                self.steps += 1
                self.emit(ev.StepStarted(turn, steps))
                try:
                    items, completed = await self._sample(model, effort)
                except ContextLengthExceeded:
                    # The server's count beat our estimate: compact, and send once more.
                    await self._compact("overflow", self.context_tokens())
                    self.emit(ev.StepStarted(turn, steps))
                    items, completed = await self._sample(model, effort)
                while items and items[-1].get("type") == "reasoning":
                    # Reasoning must be followed by what it led to; a response cut off
                    # after it would make every later request invalid.
                    items.pop()
                self._extend(items)
                if completed is not None and completed.usage is not None:
                    usage = usage + completed.usage
                    self._account(completed.usage)
                calls = [i for i in items if i.get("type") == "function_call"]
                if completed is not None and completed.status == "incomplete" and not calls:
                    raise CodexmaxError(
                        "the model's answer was cut short "
                        f"({completed.incomplete_reason or 'incomplete'})"
                    )
                if not calls:
                    final = "".join(message_text(i) for i in items if i.get("type") == "message")
                    if not final.strip():
                        # Nothing said, nothing done: not an answer. Asked once more, then
                        # reported as what it is.
                        empty += 1
                        if empty == 1:
                            self.emit(ev.Notice("the model's answer was empty; asking again"))
                            continue
                        raise CodexmaxError(
                            f"the model answered with nothing (no text, no tool call) "
                            f"{empty} times in a row"
                        )
                    return await self._finish(turn, TurnResult("done", final, steps, usage=usage))
                empty = 0
                for call in calls:
                    output = await self.dispatcher.dispatch(call)
                    try:
                        note = guard.observe(call, output.get("output"), self.dispatcher.last_ok)
                    except RepeatedFailure:
                        self._extend([output])
                        raise
                    if note and isinstance(output.get("output"), str):
                        output = {**output, "output": output["output"] + note}
                    self._extend([output])
        except asyncio.CancelledError:
            self._close_open_calls(ABORTED)
            await self._finish(turn, TurnResult("stopped", steps=steps, usage=usage))
            raise
        except Exception as exc:
            # Model and API errors, a notebook changed on disk, a limit reached: the turn
            # ends, and says why. Anything else is a bug: the same, with its traceback logged.
            if not isinstance(exc, (ModelError, CodexmaxError)):
                log.exception("the agent failed unexpectedly")
                exc = CodexmaxError(f"internal error: {type(exc).__name__}: {exc}")
            self._close_open_calls(NOT_RUN)
            text = self.redact(str(exc))
            self.emit(ev.ErrorEvent(text))
            return await self._finish(
                turn, TurnResult("failed", steps=steps, error=text, usage=usage)
            )

    async def _finish(self, turn: int, result: TurnResult) -> TurnResult:
        self._finishing = True
        if self._extra_usage.input_tokens or self._extra_usage.output_tokens:
            result = dataclasses.replace(result, usage=result.usage + self._extra_usage)
            self._extra_usage = Usage()
        self._last_result = result
        if self.dispatcher.undo is not None:
            self.dispatcher.undo.seal()
            self._undo.append(self.dispatcher.undo)
            self.dispatcher.undo = None
        cancelled = False
        try:
            # Shielded: a cancellation now (a second stop, a closing kernel) must not leave
            # the turn unsaved and unannounced.
            await asyncio.shield(self._persist(result.status))
        except asyncio.CancelledError:
            cancelled = True
        except Exception as exc:
            # The turn's work stands; its session was not stored. Said, never swallowed.
            reason = failure_text(exc) if isinstance(exc, OSError) else str(exc)
            self.save_error = self.redact(f"the session could not be saved: {reason}")
            log.info("%s", self.save_error)  # the event says it to the surfaces
            self.emit(ev.ErrorEvent(self.save_error, fatal=False))
        else:
            self.save_error = None
        self._ended = True
        self.emit(
            ev.TurnFinished(turn, result.status, result.final_text, result.steps, result.error)
        )
        if cancelled:
            raise asyncio.CancelledError
        return result

    def _close_open_calls(self, why: str) -> None:
        """Keep the invariant: every function call in the history has an output."""
        answered = {
            i.get("call_id") for i in self.history if i.get("type") == "function_call_output"
        }
        missing = [
            function_call_output(str(i.get("call_id")), why)
            for i in self.history
            if i.get("type") == "function_call" and i.get("call_id") not in answered
        ]
        self._extend(missing)

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
                    self.emit(ev.TextDelta(event.text))
                elif isinstance(event, ModelReasoningDelta):
                    self.emit(ev.ReasoningDelta(event.text))
                elif isinstance(event, OutputItem):
                    items.append(event.item)
                    if event.item.get("type") == "message":
                        self.emit(ev.AssistantMessage(message_text(event.item)))
                elif isinstance(event, Retrying):
                    items = []
                    self.emit(
                        ev.RetryNotice(
                            event.attempt, event.max_retries, event.delay, self.redact(event.reason)
                        )
                    )
                elif isinstance(event, Completed):
                    completed = event
                    if event.model:
                        self.served_model = event.model
        return items, completed

    # -- compaction ---------------------------------------------------------------------------

    async def _compact_if_needed(self) -> None:
        tokens = self.context_tokens()
        if self.meter.over(tokens):
            await self._compact("threshold", tokens)

    def _bill(self, usage: Usage) -> None:
        """Usage of requests that are not steps (compaction): totals and cost only."""
        if not usage.input_tokens and not usage.output_tokens:
            return
        self._extra_usage = self._extra_usage + usage
        self._add_usage(usage, self.context_tokens())

    async def _compact(self, reason: str, before: int) -> None:
        """Compact the history; :class:`CompactionError` after the guard's attempts."""
        settings = self.settings
        self.emit(ev.CompactionStarted(reason, before, self.meter.limit))
        if self._futile_compactions >= settings.compaction_max_attempts:
            message = (
                f"compaction is not helping: after each of the last "
                f"{self._futile_compactions} compactions the server reported more than the "
                f"limit of {self.meter.limit:,} tokens; stopping instead of compacting again "
                "(a smaller compaction_user_budget, or a model with a larger window, may help)"
            )
            self.emit(ev.CompactionFailed(message))
            raise CompactionError(message)
        budget = settings.compaction_user_budget
        pending_limit = settings.tool_output_limit
        attempts = 0
        while True:
            attempts += 1
            try:
                result = await compact_history(
                    self.provider,
                    self.history,
                    sizes=self.item_sizes(),
                    instructions=self.instructions,
                    head=self._head(),
                    counter=self.counter,
                    window=self.meter.window,
                    user_budget=budget,
                    pending_limit=pending_limit,
                    allow_remote=settings.compaction == "auto" and attempts == 1,
                    cache_key=self.session_id,
                )
            except CompactionError as exc:
                self.emit(ev.CompactionFailed(self.redact(str(exc))))
                raise
            after = self.fixed_tokens() + self.counter.count_items(result.items)
            if after <= self.meter.limit * COMPACTION_TARGET:
                break
            if attempts >= settings.compaction_max_attempts and not self.meter.over(after):
                self.emit(
                    ev.Notice(
                        f"compaction left {after:,} tokens, close to the limit of "
                        f"{self.meter.limit:,}: the next one will come soon; consider a model "
                        "with a larger window or a smaller compaction_user_budget"
                    )
                )
                break
            if attempts >= settings.compaction_max_attempts:
                message = (
                    f"compaction could not bring the context under the threshold: "
                    f"{after:,} tokens after {attempts} attempts, over the limit of "
                    f"{self.meter.limit:,} ({settings.compaction_threshold:.0%} of "
                    f"{self.meter.window:,})"
                )
                self.emit(ev.CompactionFailed(message))
                raise CompactionError(message)
            budget = max(500, budget // 2)
            pending_limit = max(1_000, pending_limit // 2)
        self._replace(result.items, f"compaction ({reason}, {result.method})")
        self.meter.forget()
        self._after_compaction = True
        self.compactions += 1
        self.last_summary = result.summary
        self._bill(result.usage)
        self.emit(ev.CompactionFinished(result.method, before, after, attempts, self.compactions))

    # -- the session --------------------------------------------------------------------------

    def session_record(self) -> SessionRecord:
        """The session as it is stored in the notebook (secrets masked, size capped)."""
        usage = {
            "input_tokens": self.usage_total.input_tokens,
            "cached_input_tokens": self.usage_total.cached_input_tokens,
            "output_tokens": self.usage_total.output_tokens,
            "reasoning_tokens": self.usage_total.reasoning_tokens,
            "total_tokens": self.usage_total.total_tokens,
            "cost_usd": round(self.cost, 6),
        }
        return build_record(
            session_id=self.session_id,
            created=self.created,
            settings=self.settings,
            turns=self.turns,
            compactions=self.compactions,
            context_tokens=self.context_tokens(),
            usage=usage,
            summary=self.last_summary,
            messages=stored_messages(
                self.history, self.counter, self.settings.compaction_user_budget
            ),
            ledger=self.ledger.to_json(),
            proposals=self.notebook.pending_changes() if self.notebook is not None else [],
            secret_values=self._secret_values,
            served_model=self.served_model or "",
        )

    async def _persist(self, status: str) -> None:
        """Save the session with the notebook, and mark the turn in the journal. At the
        read-only level the notebook is not written, not even the agent's own metadata."""
        record = integrity.sign(self.session_record().to_json())
        if self._save_session is not None and (
            self.approval != "read-only" or not self.saver_writes_notebook
        ):
            await self._save_session(record)
        if self.journal is not None:
            self._journal(
                "turn",
                turn=self.turns,
                status=status,
                context_tokens=self.context_tokens(),
                record=record_digest(record),
            )

    def _journal(self, kind: str, **fields: Any) -> None:
        """A journal record; a journal that cannot be written (a full disk) is said once,
        and the turn goes on (the notebook keeps the session)."""
        journal = self.journal
        if journal is None:
            return
        journal.write(kind, **fields)
        if journal.failed is not None and not self._journal_told:
            self._journal_told = True
            self.emit(
                ev.ErrorEvent(
                    f"the journal could not be written ({journal.failed}); the session is "
                    "kept with the notebook only",
                    fatal=False,
                )
            )

    def _resume(self, record: SessionRecord) -> None:
        """Carry on a stored session: its counters, ledger and a rebuilt history."""
        self.session_id = record.session_id
        self.created = record.created
        self.turns = record.turns
        self.compactions = record.compactions
        usage = record.usage
        self.usage_total = Usage(
            int(usage.get("input_tokens", 0)),
            int(usage.get("cached_input_tokens", 0)),
            int(usage.get("output_tokens", 0)),
            int(usage.get("reasoning_tokens", 0)),
            int(usage.get("total_tokens", 0)),
        )
        self.cost = float(usage.get("cost_usd", 0.0))
        if record.served_model and record.model == self.settings.model:
            self.served_model = record.served_model  # the configured model did not change
        self.ledger = Ledger.from_json(record.ledger)
        if not record.ours:
            # Written elsewhere (or edited): data, not instructions. Its messages are quoted
            # to the model in a user message; an opaque compaction item and proposals are
            # left out; the ledger says where it came from.
            self.ledger.origin = "file"
            self.foreign = True
            record = dataclasses.replace(
                record,
                messages=[quoted_history(record)],
                summary=None,
                proposals=[],
                dropped={k: v for k, v in record.dropped.items() if k != "proposals"},
            )
        self.last_summary = record.summary
        exact = (
            history_at(record.session_id, record.turns, record_digest(record.to_json()))
            if self.settings.journal and not self.foreign
            else None
        )
        # Proposals a kernel's working copy held go back into it first: the resume note's
        # view of the notebook then shows them, as the model left them.
        reapplied = reapply_note(record, self.notebook)
        self.history = resumed_history(record, self._head(), self.notebook, exact, self.redact)
        if reapplied is not None:
            told, self.reapplied = reapplied
            self.history.append(user_message(self.redact(told), role="developer"))
        if exact:
            # The very history the stored size was reported for: the new process knows how
            # full the context is before its first request (and compacts first if need be).
            self.meter.restore(record.context_tokens, len(exact))
        else:
            # Rebuilt from the record (a few messages and the summary): estimated as it is.
            self.meter.forget()

    async def aclose(self) -> None:
        """Close the model connection and shut the kernel down."""
        if self._task is not None and not self._task.done():
            self.stop()
            with contextlib.suppress(BaseException):
                await self._task
        await self.provider.aclose()
        if self.runner is not None:
            await self.runner.shutdown()
