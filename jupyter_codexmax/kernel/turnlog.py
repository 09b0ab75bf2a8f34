"""What happened in one turn, gathered from the agent's events.

Both renderers (the widget panel and the text log) read it, and its :meth:`TurnLog.markdown`
is the static summary kept in the ``%%agent`` cell's saved output: the answer, what the agent
did, its plan, the proposed changes and the context used, readable wherever the notebook is
opened (no widgets needed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .. import events as ev
from ..models import served_label
from ..text import plural

__all__ = ["CallRecord", "Heading", "TurnLog", "format_tokens"]

#: Characters of a tool's output kept for the details of its row.
DETAIL_LIMIT = 4_000

_MARK = {"completed": "✓", "in_progress": "▸", "pending": "·"}


def format_tokens(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 10_000 else f"{n:,}"


@dataclass(frozen=True)
class Heading:
    """What a turn's panel is headed with: the model, the effort, and the endpoint when it
    is not OpenAI's. Once a model answered, the heading names that one (``scripted`` for
    the scripted server), so a test server never passes for the real model."""

    model: str
    effort: str | None = None
    endpoint: str | None = None

    def text(self, served: str = "") -> str:
        model = self.model
        if served:
            label = served_label(served)
            model = label if not label.startswith(self.model) else self.model
        parts = ["jupyter-codexmax", model]
        if self.effort:
            parts.append(self.effort)
        if self.endpoint:
            parts.append(self.endpoint)
        return " · ".join(parts)


@dataclass
class CallRecord:
    """One tool call: a row of the panel."""

    call_id: str
    name: str
    summary: str
    arguments: dict[str, Any]
    status: str = "running"  # running, ok, failed, waiting
    duration: float = 0.0
    result: str = ""
    output: str = ""
    details: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @property
    def title(self) -> str:
        mark = {"running": "…", "ok": "✓", "failed": "✗", "waiting": "?"}.get(self.status, "")
        took = f" ({self.duration:.1f}s)" if self.status in ("ok", "failed") else ""
        result = f" → {self.result}" if self.result and self.result != self.summary else ""
        return f"{mark} {self.summary}{result}{took}"


@dataclass
class TurnLog:
    """One turn, as the surfaces show it."""

    turn: int = 0
    #: What the output is about: a turn (the default), or an operation (compact, undo).
    label: str = ""
    task: str = ""
    status: str = "starting"  # starting, working, done, stopped, failed
    activity: str = "starting"
    answer: str = ""
    reasoning: str = ""
    steps: int = 0
    calls: list[CallRecord] = field(default_factory=list)
    plan: list[dict[str, str]] = field(default_factory=list)
    edits: list[ev.CellEdited] = field(default_factory=list)
    runs: list[ev.CellRan] = field(default_factory=list)
    files: list[ev.FileChanged] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    #: A line about what the host is doing now ("stopping ..."): shown while it is true,
    #: never kept in the summary.
    status_note: str = ""
    error: str | None = None
    approvals: dict[str, ev.ApprovalRequested] = field(default_factory=dict)
    context_tokens: int = 0
    context_window: int = 0
    compactions: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    #: Estimated US dollars so far; None when the model's price is unknown.
    cost: float | None = None
    #: The model that answered, as the server named it ("" before the first answer).
    served_model: str = ""
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    #: The turn's finished messages, and the parts of the one being streamed.
    _messages: list[str] = field(default_factory=list)
    _answer_parts: list[str] = field(default_factory=list)

    # -- gathering ----------------------------------------------------------------------------

    def call(self, call_id: str) -> CallRecord | None:
        for record in reversed(self.calls):
            if record.call_id == call_id:
                return record
        return None

    def current_call(self) -> CallRecord | None:
        running = [c for c in self.calls if c.status in ("running", "waiting")]
        return running[-1] if running else None

    def apply(self, event: ev.Event) -> None:
        if isinstance(event, ev.TurnStarted):
            self.turn, self.task, self.status = event.turn, event.message, "working"
        elif isinstance(event, ev.StepStarted):
            self.steps = event.step
            self.activity = "thinking"
            self._streamed([])
        elif isinstance(event, ev.TextDelta):
            self._streamed([*self._answer_parts, event.text])
            self.activity = "writing"
        elif isinstance(event, ev.AssistantMessage):
            # The whole message (also when the provider did not stream it): the next one,
            # in a later step, is a paragraph of its own.
            if event.text.strip():
                self._messages.append(event.text.strip())
            self._streamed([])
        elif isinstance(event, ev.ReasoningDelta):
            self.reasoning += event.text
        elif isinstance(event, ev.ToolCallStarted):
            self.calls.append(CallRecord(event.call_id, event.name, event.summary, event.arguments))
            self.activity = event.summary
        elif isinstance(event, ev.ToolCallFinished):
            record = self.call(event.call_id)
            if record is not None:
                record.status = "ok" if event.ok else "failed"
                record.duration = event.duration
                record.result = event.summary
                output = event.output
                record.output = (
                    output if len(output) <= DETAIL_LIMIT else output[:DETAIL_LIMIT] + " …"
                )
            self.activity = "thinking"
        elif isinstance(event, ev.CellEdited):
            self.edits.append(event)
            self._detail(f"{'edited' if event.applied else 'proposed'} cell {event.cell_id}")
        elif isinstance(event, ev.CellRan):
            self.runs.append(event)
            error = f": {event.error}" if event.error else ""
            self._detail(f"cell {event.cell_id} {event.status}{error} ({event.duration:.1f}s)")
        elif isinstance(event, ev.FileChanged):
            self.files.append(event)
            self._detail(f"{event.action} {event.path}")
        elif isinstance(event, ev.PlanUpdated):
            self.plan = [dict(s) for s in event.steps]
        elif isinstance(event, ev.ApprovalRequested):
            self.approvals[event.request_id] = event
            record = self.current_call()
            if record is not None:
                record.status = "waiting"
            self.activity = f"waiting for approval: {event.summary}"
        elif isinstance(event, ev.ApprovalResolved):
            self.approvals.pop(event.request_id, None)
            record = self.current_call()
            if record is not None and record.status == "waiting":
                record.status = "running"
            if event.decision in ("deny", "refused"):
                self.notices.append(f"not allowed: {event.reason}")
        elif isinstance(event, ev.UsageUpdated):
            self.context_tokens = event.context_tokens
            self.context_window = event.context_window
            self.input_tokens = event.total_input_tokens
            self.output_tokens = event.total_output_tokens
            self.cost = event.cost_usd
            self.served_model = event.model or self.served_model
        elif isinstance(event, ev.CompactionStarted):
            self.activity = "compacting the context"
        elif isinstance(event, ev.CompactionFinished):
            self.compactions = event.compactions
            self.context_tokens = event.after
            self.notices.append(
                f"compacted the context ({event.method}): {format_tokens(event.before)} → "
                f"{format_tokens(event.after)} tokens"
            )
        elif isinstance(event, ev.CompactionFailed):
            self.notices.append(event.message)
        elif isinstance(event, ev.RetryNotice):
            self._streamed([])  # the retried request starts its answer again
            self.notices.append(
                f"retrying in {event.delay:.1f}s ({event.attempt}/{event.max_retries}): "
                f"{event.reason}"
            )
        elif isinstance(event, ev.Notice):
            self.notices.append(event.message)
        elif isinstance(event, ev.ErrorEvent):
            self.error = event.message
        elif isinstance(event, ev.TurnFinished):
            self.status = event.status
            self.steps = event.steps
            self.finished = time.monotonic()
            self.activity = event.status
            self.status_note = ""
            partial = "".join(self._answer_parts).strip()
            if event.final_text.strip() and event.final_text.strip() not in self._messages:
                self._messages.append(event.final_text.strip())
            elif partial:
                # Stopped (or failed) while writing: what was written stays, marked as cut.
                self._messages.append(partial + " …")
                self.notices.append(f"{event.status} while writing: the last message is cut off")
            self._streamed([])
            if event.error:
                self.error = event.error

    def note(self, text: str, *, transient: bool = False) -> None:
        """A line from the host; a ``transient`` one replaces the last and goes when the
        turn ends."""
        if transient:
            self.status_note = "" if self.finished is not None else text
        else:
            self.notices.append(text)

    def _streamed(self, parts: list[str]) -> None:
        """The message being streamed is now ``parts``; the answer is every message of the
        turn so far, a paragraph each."""
        self._answer_parts = parts
        current = "".join(parts).strip()
        self.answer = "\n\n".join([*self._messages, current] if current else self._messages)

    def _detail(self, text: str) -> None:
        record = self.current_call()
        if record is not None:
            record.details.append(text)

    # -- showing ------------------------------------------------------------------------------

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def context_line(self) -> str:
        if not self.context_window:
            return ""
        used = self.context_tokens
        left = max(0, self.context_window - used)
        share = used / self.context_window
        parts = [f"{served_label(self.served_model)}"] if self.served_model else []
        parts += [
            f"context {format_tokens(used)} of {format_tokens(self.context_window)} "
            f"({share:.0%}; {format_tokens(left)} left)",
            plural(self.compactions, "compaction"),
            f"{format_tokens(self.input_tokens)} in / {format_tokens(self.output_tokens)} out",
        ]
        if self.cost is not None:
            parts.append(f"about ${self.cost:.2f}")
        return " · ".join(parts)

    def plan_lines(self) -> list[str]:
        return [f"{_MARK.get(s.get('status', ''), '·')} {s.get('step', '')}" for s in self.plan]

    def headline(self) -> str:
        state = {
            "done": f"done in {plural(self.steps, 'step')}",
            "stopped": "stopped",
            "failed": "failed",
        }.get(self.status, self.activity)
        what = self.label or f"turn {self.turn}"
        took = f" · {self.elapsed:.1f}s" if not self.label else ""
        return f"jupyter-codexmax · {what} · {state}{took}"

    def markdown(self, proposals: list[Any] | None = None) -> str:
        """The static summary: what stays in the saved notebook."""
        lines = [f"**{self.headline()}**", ""]
        if self.error:
            lines += [f"> **error:** {self.error}", ""]
        if self.answer.strip():
            lines += [self.answer.strip(), ""]
        if self.calls:
            lines.append(
                f"<details><summary>What it did ({plural(len(self.calls), 'action')})</summary>"
            )
            lines.append("")
            rows: list[str] = []
            for record in self.calls:
                rows.append(_escape(record.title))  # its mark (✓ ✗) is its bullet
                rows += [f"&emsp;{_escape(detail)}" for detail in record.details[:6]]
            lines += ["  \n".join(rows), "", "</details>", ""]
        if self.plan:
            # The marks are the bullets: one step a line (hard breaks), not a list.
            steps = [_escape(x) for x in self.plan_lines()]
            lines += ["**Plan**", "", "  \n".join(steps), ""]
        if proposals:
            lines += [f"**Proposed changes** ({len(proposals)}, not applied)", ""]
            for number, proposal in enumerate(proposals, 1):
                lines.append(f"{number}. {_escape(describe_proposal(proposal))}")
                if proposal.action != "delete":
                    lines += ["", "```python", proposal.source, "```", ""]
            lines += [
                "Copy a proposal into its cell, or run `%agent apply N` to get it in a new "
                "cell below.",
                "",
            ]
        if self.notices:
            # Under a label of their own: a list right after the plan's would join it.
            lines += ["**Notes**", ""]
            lines += [f"* _{_escape(notice)}_" for notice in self.notices[-5:]]
            lines.append("")
        context = self.context_line()
        if context:
            lines.append(f"<sub>{context}</sub>")
        return "\n".join(lines).strip() + "\n"

    def bundle(self, proposals: list[Any] | None = None) -> dict[str, Any]:
        """The summary as display data: markdown, and its text version."""
        return {"text/markdown": self.markdown(proposals), "text/plain": self.plain()}

    def plain(self) -> str:
        """A short text version (``text/plain``)."""
        lines = [self.headline()]
        if self.error:
            lines.append(f"error: {self.error}")
        if self.answer.strip():
            lines.append(self.answer.strip())
        context = self.context_line()
        if context:
            lines.append(context)
        return "\n".join(lines)


def describe_proposal(proposal: Any) -> str:
    first = next((ln for ln in proposal.old_source.splitlines() if ln.strip()), "")
    where = f"cell {proposal.position}"
    if proposal.action == "insert":
        after = f" after cell {proposal.after}" if proposal.after else " at the top"
        return f"new {proposal.cell_type} cell {proposal.cell_id}{after}"
    if proposal.action == "delete":
        return f"delete {where} ({proposal.cell_id}: {first[:60]})"
    return f"change {where} ({proposal.cell_id}: {first[:60]})"


def _escape(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")
