"""The widget panel: the agent's events, rendered with ipywidgets in the cell's output.

A renderer only: it holds no agent state. :class:`Panel` turns events (through a
:class:`~.turnlog.TurnLog`) into widget state: the streamed answer as markdown, the reasoning
summary (collapsed), one row per tool call that opens on its details (cell diffs, run
results, the output), the plan, approval requests as buttons, a context meter with token and
cost totals, notices, and a Stop button. Clicks call back into the host (``on_decision``,
``on_stop``); the buttons only show where a click can be handled while the agent works (a
turn running in the background). When the turn runs inside the cell, the kernel cannot
handle clicks until the cell ends: approvals are asked in the input prompt below instead,
and the kernel's interrupt stops the agent.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from typing import Any

from .. import events as ev
from .turnlog import CallRecord, Heading, TurnLog

__all__ = ["Panel"]

#: Seconds between two updates of the streamed answer (the final one is always sent).
ANSWER_INTERVAL = 0.1

_DIFF_COLOURS = {"+": "#1a7f37", "-": "#cf222e", "@": "#8250df"}


def diff_html(diff: str) -> str:
    lines = []
    for line in diff.splitlines():
        colour = _DIFF_COLOURS.get(line[:1]) if not line.startswith(("+++", "---")) else "#57606a"
        text = html.escape(line)
        lines.append(f'<span style="color:{colour}">{text}</span>' if colour else text)
    return "<pre style='margin:0;font-size:12px;line-height:1.35'>" + "\n".join(lines) + "</pre>"


def _pre(text: str) -> str:
    return (
        "<pre style='margin:0;font-size:12px;white-space:pre-wrap;max-height:24em;"
        f"overflow:auto'>{html.escape(text)}</pre>"
    )


class Panel:
    """The widgets of one ``%%agent`` turn (or one ``%agent`` command)."""

    def __init__(
        self,
        *,
        title: str | Heading,
        interactive: bool,
        on_decision: Callable[[str, str], object] | None = None,
        on_stop: Callable[[], object] | None = None,
    ) -> None:
        import ipywidgets as w

        self._w = w
        self.log = TurnLog()
        self.interactive = interactive
        self.on_decision = on_decision
        self.on_stop = on_stop
        self.title = title
        self.header = w.HTML(value=self._header_html())
        self.answer = w.Output()
        self.reasoning_text = w.HTML()
        self.reasoning = w.Accordion(
            children=[self.reasoning_text], titles=("Reasoning",), selected_index=None
        )
        self.reasoning.layout.display = "none"
        self.calls = w.VBox()
        self.rows: dict[str, Any] = {}
        self.row_bodies: dict[str, Any] = {}
        self.plan = w.HTML()
        self.approvals = w.VBox()
        self.approval_rows: dict[str, Any] = {}
        self.meter = w.FloatProgress(value=0.0, min=0.0, max=1.0, description="context")
        self.meter_label = w.HTML()
        #: Shown from the first usage report (an empty bar before it says nothing).
        self.meter_row = w.HBox([self.meter, self.meter_label])
        self.meter_row.layout.display = "none"
        self.notices = w.HTML()
        self.stop_button = w.Button(
            description="Stop", icon="stop", button_style="danger", tooltip="Stop the agent"
        )
        self.stop_button.on_click(lambda _: self._stop())
        self.stop_button.layout.display = "" if interactive else "none"
        self.hint = w.HTML(
            value=""
            if interactive
            else "<span style='color:#57606a;font-size:12px'>Interrupt the kernel (■) to "
            "stop the agent.</span>"
        )
        self.box = w.VBox(
            [
                w.HBox([self.header, self.stop_button]),
                self.reasoning,
                self.answer,
                self.calls,
                self.plan,
                self.approvals,
                self.meter_row,
                self.notices,
                self.hint,
            ]
        )
        self._answer_sent = ""
        self._answer_at = 0.0

    # -- events -------------------------------------------------------------------------------

    def handle(self, event: ev.Event) -> None:
        self.log.apply(event)
        if isinstance(event, (ev.TextDelta, ev.AssistantMessage)):
            self._show_answer(force=isinstance(event, ev.AssistantMessage))
        elif isinstance(event, ev.ReasoningDelta):
            self.reasoning.layout.display = ""
            self.reasoning_text.value = _pre(self.log.reasoning)
        elif isinstance(event, ev.ToolCallStarted):
            self._add_row(self.log.calls[-1])
        elif isinstance(event, ev.ToolCallFinished):
            record = self.log.call(event.call_id)
            if record is not None:
                self._update_row(record)
        elif isinstance(event, (ev.CellEdited, ev.CellRan, ev.FileChanged)):
            record = self.log.current_call()
            if record is not None:
                self._update_row(record, extra=event)
        elif isinstance(event, ev.PlanUpdated):
            self.plan.value = self._plan_html()
        elif isinstance(event, ev.ApprovalRequested):
            self._add_approval(event)
        elif isinstance(event, ev.ApprovalResolved):
            row = self.approval_rows.pop(event.request_id, None)
            if row is not None:
                self.approvals.children = tuple(c for c in self.approvals.children if c is not row)
            self._show_notices()
        elif isinstance(event, ev.UsageUpdated):
            self._show_meter()
        elif isinstance(event, (ev.CompactionFinished, ev.CompactionFailed)):
            self._show_meter()
            self._show_notices()
        elif isinstance(event, (ev.Notice, ev.RetryNotice, ev.ErrorEvent)):
            self._show_notices()
        elif isinstance(event, ev.TurnFinished):
            self._show_answer(force=True)
            self.stop_button.layout.display = "none"
            self.hint.value = ""
            for row in list(self.approval_rows.values()):
                self.approvals.children = tuple(c for c in self.approvals.children if c is not row)
            self.approval_rows.clear()
            self._show_notices()
            self._show_meter()
        self.header.value = self._header_html()

    def refresh(self) -> None:
        """The header again: its clock tells wall time while no event comes."""
        if self.log.finished is None:
            self.header.value = self._header_html()

    def note(self, text: str, *, transient: bool = False) -> None:
        """A line from the host (not an agent event): stopping, a command's result."""
        self.log.note(text, transient=transient)
        self._show_notices()

    # -- parts --------------------------------------------------------------------------------

    def _title(self) -> str:
        title = self.title
        return title if isinstance(title, str) else title.text(self.log.served_model)

    def _header_html(self) -> str:
        log = self.log
        state = log.activity if log.status not in ("done", "stopped", "failed") else log.status
        colour = {"done": "#1a7f37", "failed": "#cf222e", "stopped": "#9a6700"}.get(
            log.status, "#0969da"
        )
        steps = f" · step {log.steps}" if log.steps else ""
        return (
            f"<b>{html.escape(self._title())}</b>{steps} · <span style='color:{colour}'>"
            f"{html.escape(state)}</span> · {log.elapsed:.0f}s"
        )

    def _show_answer(self, *, force: bool) -> None:
        text = self.log.answer
        now = time.monotonic()
        if text == self._answer_sent or (not force and now - self._answer_at < ANSWER_INTERVAL):
            return
        self._answer_sent, self._answer_at = text, now
        self.answer.outputs = (
            {
                "output_type": "display_data",
                "data": {"text/markdown": text, "text/plain": text},
                "metadata": {},
            },
        )

    def _add_row(self, record: CallRecord) -> None:
        body = self._w.HTML(value=self._row_html(record))
        row = self._w.Accordion(children=[body], titles=(record.title,), selected_index=None)
        self.rows[record.call_id] = row
        self.row_bodies[record.call_id] = body
        self.calls.children = (*self.calls.children, row)

    def _update_row(self, record: CallRecord, extra: ev.Event | None = None) -> None:
        row = self.rows.get(record.call_id)
        if row is None:
            return
        row.titles = (record.title,)
        body = self.row_bodies[record.call_id]
        if isinstance(extra, ev.CellEdited) and extra.diff:
            body.value += diff_html(extra.diff)
        else:
            body.value = self._row_html(record) + self._diffs_html(record)

    def _diffs_html(self, record: CallRecord) -> str:
        # Edits made during this call (kept when the row is rebuilt).
        edits = [e for e in self.log.edits if e.diff and self._edited_in(record, e)]
        return "".join(diff_html(e.diff) for e in edits)

    def _edited_in(self, record: CallRecord, edit: ev.CellEdited) -> bool:
        label = f"{'edited' if edit.applied else 'proposed'} cell {edit.cell_id}"
        return label in record.details

    def _row_html(self, record: CallRecord) -> str:
        parts = [_pre(json.dumps(record.arguments, indent=1, ensure_ascii=False)[:2_000])]
        if record.details:
            parts.append(
                "<ul style='margin:4px 0'>"
                + "".join(f"<li>{html.escape(d)}</li>" for d in record.details)
                + "</ul>"
            )
        edited = any(e.diff and self._edited_in(record, e) for e in self.log.edits)
        if record.output and not edited:
            # An edit's diffs are shown coloured below; its text output says the same.
            parts.append(_pre(record.output))
        return "".join(parts)

    def _plan_html(self) -> str:
        if not self.log.plan:
            return ""
        items = "".join(f"<li>{html.escape(line)}</li>" for line in self.log.plan_lines())
        return f"<b>Plan</b><ul style='margin:2px 0;list-style:none;padding-left:8px'>{items}</ul>"

    def _add_approval(self, event: ev.ApprovalRequested) -> None:
        w = self._w
        text = w.HTML(
            value=f"<b>Approve?</b> {html.escape(event.summary)}"
            + (_pre(event.detail) if event.detail else "")
        )
        if not self.interactive:
            row = w.VBox([text, w.HTML(value="<i>Answer in the prompt below.</i>")])
        else:
            buttons = []
            for label, decision, style in (
                ("Approve", "approve", "success"),
                ("Deny", "deny", "danger"),
                ("Approve for the session", "approve_session", ""),
            ):
                button = w.Button(description=label, button_style=style)
                button.layout.width = "auto"  # the whole label, never "Approve for the s..."
                button.on_click(lambda _b, d=decision, r=event.request_id: self._decide(r, d))
                buttons.append(button)
            row = w.VBox([text, w.HBox(buttons)])
        self.approval_rows[event.request_id] = row
        self.approvals.children = (*self.approvals.children, row)

    def _decide(self, request_id: str, decision: str) -> None:
        row = self.approval_rows.get(request_id)
        if row is not None:
            for child in row.children:
                for button in getattr(child, "children", ()):
                    if hasattr(button, "disabled"):
                        button.disabled = True
        if self.on_decision is not None:
            self.on_decision(request_id, decision)

    def _stop(self) -> None:
        self.stop_button.disabled = True
        self.stop_button.description = "Stopping"
        if self.on_stop is not None:
            self.on_stop()

    def _show_meter(self) -> None:
        log = self.log
        self.meter_row.layout.display = "" if log.context_window else "none"
        if log.context_window:
            share = min(1.0, log.context_tokens / log.context_window)
            self.meter.value = share
            self.meter.bar_style = "danger" if share > 0.85 else "warning" if share > 0.6 else ""
        self.meter_label.value = (
            f"<span style='font-size:12px'>{html.escape(log.context_line())}</span>"
        )

    def _show_notices(self) -> None:
        notes = [*self.log.notices[-8:], *([self.log.status_note] if self.log.status_note else [])]
        lines = [f"<div>{html.escape(n)}</div>" for n in notes]
        if self.log.error:
            lines.append(
                f"<div style='color:#cf222e'><b>error:</b> {html.escape(self.log.error)}</div>"
            )
        self.notices.value = (
            "<div style='font-size:12px;color:#57606a'>" + "".join(lines) + "</div>"
        )

    # -- display ------------------------------------------------------------------------------

    def mimebundle(self) -> dict[str, Any]:
        """The panel's own display data (the widget view)."""
        bundle = self.box._repr_mimebundle_()
        return dict(bundle[0] if isinstance(bundle, tuple) else bundle)
