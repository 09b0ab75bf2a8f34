"""The live log of ``jupyter codexmax run``: the agent's events as lines on stderr.

On a terminal, a status line at the bottom shows what each notebook is doing right now
(thinking, running a cell, tokens used); finished actions scroll above it. Elsewhere (cron,
CI logs) the same actions are plain lines, one per tool call.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from .. import events as ev
from ..text import plural, printable

__all__ = ["Progress"]

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


@dataclass
class _Job:
    name: str
    activity: str = "starting"
    step: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.monotonic)
    text: list[str] = field(default_factory=list)
    calls: dict[str, str] = field(default_factory=dict)


class Progress:
    """Renders events from several notebooks (one :class:`_Job` each) to one stream."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        quiet: bool = False,
        prefix: bool = True,
    ) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.quiet = quiet
        self.prefix = prefix
        self._jobs: dict[str, _Job] = {}
        self._frame = 0
        self._status_shown = False

    def job(self, name: str) -> _Job:
        return self._jobs.setdefault(name, _Job(name))

    def handler(self, name: str):  # type: ignore[no-untyped-def]
        """An ``on_event`` callback for one notebook."""
        job = self.job(name)
        return lambda event: self.handle(job, event)

    # -- output -------------------------------------------------------------------------------

    def _clear_status(self) -> None:
        if self._status_shown:
            self.stream.write("\r\x1b[K")
            self._status_shown = False

    def _draw_status(self) -> None:
        if not self.tty or self.quiet:
            return
        active = [j for j in self._jobs.values() if j.activity != "finished"]
        if not active:
            return
        self._frame = (self._frame + 1) % len(_SPINNER)
        parts = [
            f"{j.name}: {j.activity} (step {j.step}, {j.tokens:,} tokens, "
            f"{time.monotonic() - j.started:.0f}s)"
            for j in active
        ]
        line = f"{_SPINNER[self._frame]} " + printable(" | ".join(parts))
        self.stream.write("\r\x1b[K" + line[:200])
        self.stream.flush()
        self._status_shown = True

    def line(self, job: _Job, text: str) -> None:
        if self.quiet:
            return
        self._clear_status()
        head = f"[{job.name}] " if self.prefix else ""
        self.stream.write(f"{head}{printable(text)}\n")
        self._draw_status()
        self.stream.flush()

    def close(self) -> None:
        self._clear_status()
        self.stream.flush()

    # -- events -------------------------------------------------------------------------------

    def handle(self, job: _Job, event: ev.Event) -> None:
        if isinstance(event, ev.TurnStarted):
            task = " ".join(event.message.split())
            self.line(job, f"task: {task[:160]}{'...' if len(task) > 160 else ''}")
        elif isinstance(event, ev.StepStarted):
            job.step = event.step
            job.activity = "thinking"
            self._draw_status()
        elif isinstance(event, ev.TextDelta):
            job.text.append(event.text)
            if job.activity != "writing":
                job.activity = "writing"
                self._draw_status()
        elif isinstance(event, ev.ToolCallStarted):
            job.activity = event.summary
            job.calls[event.call_id] = event.summary
            self._draw_status()
        elif isinstance(event, ev.ToolCallFinished):
            mark = "ok" if event.ok else "!!"
            call = job.calls.pop(event.call_id, event.name)
            result = f" -> {event.summary}" if event.summary and event.summary != call else ""
            self.line(job, f"{mark} {call}{result} ({event.duration:.1f}s)")
        elif isinstance(event, ev.CellEdited):
            added = sum(
                1
                for ln in event.diff.splitlines()
                if ln.startswith("+") and not ln.startswith("+++")
            )
            removed = sum(
                1
                for ln in event.diff.splitlines()
                if ln.startswith("-") and not ln.startswith("---")
            )
            verb = "edited" if event.applied else "proposed an edit to"
            self.line(job, f"   {verb} cell {event.cell_id}: {event.action} (+{added} -{removed})")
        elif isinstance(event, ev.CellRan):
            error = f" {event.error}" if event.error else ""
            self.line(job, f"   cell {event.cell_id} {event.status}{error} ({event.duration:.1f}s)")
        elif isinstance(event, ev.PlanUpdated):
            done = sum(1 for s in event.steps if s["status"] == "completed")
            current = next((s["step"] for s in event.steps if s["status"] == "in_progress"), "")
            self.line(
                job,
                f"plan: {done}/{len(event.steps)} done" + (f"; now: {current}" if current else ""),
            )
        elif isinstance(event, ev.ApprovalResolved) and event.decision in ("deny", "refused"):
            self.line(job, f"   not allowed: {event.reason}")
        elif isinstance(event, ev.RetryNotice):
            self.line(
                job,
                f"retrying in {event.delay:.1f}s ({event.attempt}/"
                f"{event.max_retries}): {event.reason}",
            )
        elif isinstance(event, ev.CompactionStarted):
            job.activity = "compacting the context"
            self._draw_status()
        elif isinstance(event, ev.CompactionFinished):
            self.line(
                job,
                f"compacted the context ({event.method}): {event.before:,} -> "
                f"{event.after:,} tokens (compaction {event.compactions})",
            )
        elif isinstance(event, ev.CompactionFailed):
            self.line(job, event.message)
        elif isinstance(event, ev.UsageUpdated):
            job.tokens = event.total_input_tokens + event.total_output_tokens
            self._draw_status()
        elif isinstance(event, ev.Notice):
            self.line(job, event.message)
        elif isinstance(event, ev.ErrorEvent):
            self.line(job, f"error: {event.message}")
        elif isinstance(event, ev.TurnFinished):
            job.activity = "finished"
            took = time.monotonic() - job.started
            self.line(job, f"{event.status} after {plural(event.steps, 'step')} ({took:.1f}s)")
