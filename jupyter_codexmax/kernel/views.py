"""Renderers of a turn in a kernel: the widget panel, or text where widgets cannot render.

Text is for terminal IPython, and for kernels with nobody watching live (nbclient and
papermill runs: they send no input, ``allow_stdin`` is false): one line per action, as
``jupyter codexmax run`` logs them, on the cell's standard output. Either way the turn ends
with a static summary (markdown) that stays in the saved notebook.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Protocol

from .. import events as ev
from .turnlog import Heading, TurnLog

__all__ = ["LogView", "TextView", "View", "make_view"]


class View(Protocol):
    log: TurnLog

    def handle(self, event: ev.Event) -> None: ...

    def note(self, text: str, *, transient: bool = False) -> None:
        """A line from the host, not an agent event. ``transient``: true only for now
        ("stopping ..."): shown while the turn runs, not kept in its summary."""

    def mimebundle(self) -> dict[str, Any]: ...

    def refresh(self) -> None:
        """Show the time that passed (called every second while the turn runs)."""


class TextView:
    """Events as lines on the cell's standard output."""

    def __init__(self, *, title: str | Heading) -> None:
        from ..cli.progress import Progress

        self.log = TurnLog()
        self.title = title
        self._progress = Progress(stream=_Stdout(), tty=False, prefix=False)  # type: ignore[arg-type]
        self._job = self._progress.job(title if isinstance(title, str) else title.text())

    def handle(self, event: ev.Event) -> None:
        self.log.apply(event)
        if isinstance(event, (ev.UsageUpdated, ev.TurnFinished)):
            return  # the summary that ends the output says how the turn ended
        if isinstance(event, ev.CellEdited) and not event.applied:
            added = sum(1 for ln in event.diff.splitlines() if ln[:1] == "+" and ln[:3] != "+++")
            removed = sum(1 for ln in event.diff.splitlines() if ln[:1] == "-" and ln[:3] != "---")
            self._progress.line(
                self._job, f"   proposed a change to cell {event.cell_id}: {event.action} "
                f"(+{added} -{removed})"
            )  # fmt: skip
            return
        self._progress.handle(self._job, event)

    def note(self, text: str, *, transient: bool = False) -> None:
        self._progress.line(self._job, text)

    def mimebundle(self) -> dict[str, Any]:
        return {}

    def refresh(self) -> None:
        return None


class _Stdout:
    """``sys.stdout`` as it is when written to (the cell's stream in a kernel)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()

    def isatty(self) -> bool:
        return False


class LogView:
    """No rendering: the turn's log only (a turn the frontend's sidebar shows itself)."""

    def __init__(self) -> None:
        self.log = TurnLog()

    def handle(self, event: ev.Event) -> None:
        self.log.apply(event)

    def note(self, text: str, *, transient: bool = False) -> None:
        self.log.note(text, transient=transient)

    def mimebundle(self) -> dict[str, Any]:
        return {}

    def refresh(self) -> None:
        return None


def make_view(
    *,
    widgets: bool,
    title: str | Heading,
    interactive: bool,
    on_decision: Callable[[str, str], object] | None = None,
    on_stop: Callable[[], object] | None = None,
    silent: bool = False,
) -> View:
    if silent:
        return LogView()
    if widgets:
        from .panel import Panel

        return Panel(title=title, interactive=interactive, on_decision=on_decision, on_stop=on_stop)
    return TextView(title=title)
