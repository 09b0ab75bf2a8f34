"""The live view of a run on a cluster: notebooks done, failed and running, tokens, cost.

On a terminal, one status line at the bottom (``3/20 done · 1 failed · 2 running · 12,345
tokens · $0.0123 · 35s``), redrawn as events come, with each notebook's log lines
scrolling above it. Elsewhere (cron, CI) the same as plain lines: each notebook's lines,
and a ``progress:`` line whenever a notebook finishes.

Events come from the workers (:mod:`.task`) on Dask's event thread; finishes come from the
run's own thread. One lock keeps their lines whole.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

from ..text import printable

__all__ = ["ClusterProgress"]


class ClusterProgress:
    def __init__(
        self, total: int, stream: TextIO | None = None, *, tty: bool | None = None, quiet: bool
    ) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.quiet = quiet
        self.total = total
        self.done = 0
        self.failed = 0
        self.incomplete = 0
        self.running: dict[str, str] = {}  # name: worker
        #: The workers each notebook started on, in order (more than one: a worker was lost).
        self.attempts: dict[str, list[str]] = {}
        self.tokens = 0
        self.cost: float | None = None
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._shown = False

    # -- what happens ---------------------------------------------------------------------------

    def on_event(self, event: Any) -> None:
        """A Dask event of the run's topic: ``(timestamp, message)``."""
        message = event[1] if isinstance(event, tuple) and len(event) == 2 else event
        if not isinstance(message, dict):
            return
        name = str(message.get("name", "?"))
        kind = message.get("kind")
        with self._lock:
            if kind == "started":
                worker = str(message.get("worker", ""))
                self.running[name] = worker
                tries = self.attempts.setdefault(name, [])
                tries.append(worker)
                again = f" (again: its worker {tries[-2]} was lost)" if len(tries) > 1 else ""
                self._line(name, f"started on {worker}{again}")
            elif kind == "line":
                self._line(name, str(message.get("text", "")))
            elif kind == "usage":
                self.tokens += int(message.get("tokens") or 0)
                cost = message.get("cost")
                if isinstance(cost, (int, float)):
                    self.cost = (self.cost or 0.0) + cost
                self._draw()

    def finished(self, name: str, entry: dict[str, Any]) -> None:
        """A notebook's final entry (from the run's thread)."""
        with self._lock:
            self.running.pop(name, None)
            status = entry.get("status")
            if status == "done":
                self.done += 1
            elif status == "incomplete":
                self.incomplete += 1
            else:
                self.failed += 1
            usage = entry.get("usage") or {}
            what = f"{status}: {entry.get('steps', 0)} steps, " + (
                f"{int(usage.get('input_tokens', 0)) + int(usage.get('output_tokens', 0)):,} tokens"
            )
            if entry.get("error") and status != "done":
                what += f"; {entry['error']}"
            self._line(name, what)
            if not self.tty:
                self._plain(f"progress: {self.summary()}")

    def summary(self) -> str:
        parts = [f"{self.done}/{self.total} done"]
        if self.incomplete:
            parts.append(f"{self.incomplete} incomplete")
        parts += [f"{self.failed} failed", f"{len(self.running)} running"]
        parts.append(f"{self.tokens:,} tokens")
        if self.cost is not None:
            parts.append(f"${self.cost:.4f}")
        parts.append(f"{time.monotonic() - self.started:.0f}s")
        return " · ".join(parts)

    def close(self) -> None:
        with self._lock:
            self._clear()
            self.stream.flush()

    # -- output ---------------------------------------------------------------------------------

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self._shown = False

    def _draw(self) -> None:
        if not self.tty or self.quiet:
            return
        self.stream.write("\r\x1b[K" + printable(self.summary())[:200])
        self.stream.flush()
        self._shown = True

    def _plain(self, text: str) -> None:
        if self.quiet:
            return
        self.stream.write(printable(text) + "\n")
        self.stream.flush()

    def _line(self, name: str, text: str) -> None:
        if self.quiet:
            return
        self._clear()
        self.stream.write(f"[{name}] {printable(text)}\n")
        self._draw()
        self.stream.flush()
