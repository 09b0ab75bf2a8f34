"""What runs on a Dask worker: one notebook, exactly as a local run does it.

:func:`run_notebook` is the task: it opens and checks the notebook where the worker sees it,
builds the settings from the travelling values (:mod:`.portable`; the API key from the
worker's own environment), runs the same code as ``--executor local``
(:func:`jupyter_codexmax.cli.run._run_one`: the notebook's own kernel on this worker, the
same agent) and returns the same report entry, with the worker's address in ``worker``.
Its live log goes back to the run as Dask events on the run's topic (``line``, ``usage``,
``started``), credentials masked. :func:`check_worker` runs on every worker before the
run: which notebooks it cannot see, and whether it has an API key.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, TextIO, cast

from .. import events as ev
from .. import secrets
from ..cli.progress import Progress, _Job

__all__ = ["TaskSpec", "check_worker", "run_notebook", "topic"]

log = logging.getLogger("jupyter_codexmax.scale")


@dataclass(frozen=True)
class TaskSpec:
    """Everything a task carries besides the notebook's path: plain, non-secret values."""

    task: str
    settings: dict[str, Any]
    run_id: str
    name: str
    new_session: bool = False
    timeout: float | None = None
    max_requests: int = 0


def topic(run_id: str) -> str:
    """The Dask event topic of one run's live log."""
    return f"codexmax-run-{run_id}"


def limit_name(run_id: str) -> str:
    """The name of one run's request semaphore (and, with ``-backoff``, its deadline)."""
    return f"codexmax-requests-{run_id}"


def check_worker(paths: list[str], values: dict[str, Any]) -> dict[str, Any]:
    """On a worker, before the run: the notebooks it cannot see, and why it could not ask
    the model (no key in its environment), if so. Never the key itself."""
    from .._version import __version__
    from ..errors import ConfigError
    from .portable import settings_from

    missing = [p for p in paths if not os.path.isfile(p)]
    problem = None
    try:
        settings_from(values).require_api_key()
    except ConfigError as exc:
        problem = secrets.redact(str(exc))
    return {"missing": missing, "key_problem": problem, "version": __version__}


class _Send:
    """Log events of this run, from the worker running the task."""

    def __init__(self, run_id: str, name: str) -> None:
        from distributed import get_worker

        self.worker = get_worker()
        self.topic = topic(run_id)
        self.name = name
        self.known = secrets.credential_values(os.environ)

    def __call__(self, kind: str, **fields: Any) -> None:
        message = {"kind": kind, "name": self.name, "worker": self.worker.address, **fields}
        self.worker.log_event(self.topic, secrets.redact_value(message, self.known))


class _Lines(io.TextIOBase):
    """A text stream whose every line becomes a ``line`` event."""

    def __init__(self, send: _Send) -> None:
        self.send = send
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            if line.strip():
                self.send("line", text=line)
        return len(text)

    def isatty(self) -> bool:
        return False


class _TaskProgress(Progress):
    """The local run's log, sent to the run; usage also as numbers (tokens, cost)."""

    def __init__(self, send: _Send, model: str, prices: dict[str, Any]) -> None:
        super().__init__(cast(TextIO, _Lines(send)), tty=False, prefix=False)
        self.send = send
        self.model = model
        self.prices = prices

    def handle(self, job: _Job, event: ev.Event) -> None:
        super().handle(job, event)
        if isinstance(event, ev.UsageUpdated):
            from ..agent.accounting import cost_of, price_for
            from ..providers.base import Usage

            usage = Usage(
                event.input_tokens,
                event.cached_input_tokens,
                event.output_tokens,
                event.reasoning_tokens,
            )
            price = price_for(event.model or self.model, self.prices)
            self.send(
                "usage",
                tokens=event.input_tokens + event.output_tokens,
                cost=cost_of(usage, price) if price is not None else None,
            )


def run_notebook(path: str, spec: TaskSpec) -> dict[str, Any]:
    """The task: run the agent on the notebook at ``path``; its report entry."""
    from ..cli.run import RunOptions, _run_one, open_all
    from .limiter import DaskLimiter
    from .portable import settings_from

    started = time.monotonic()
    send = _Send(spec.run_id, spec.name)
    send("started")
    entry: dict[str, Any] = {"path": path, "status": "failed", "worker": send.worker.address}
    try:
        settings = settings_from(spec.settings)
        jobs, problems = open_all([path], settings, spec.new_session)
        if problems:
            entry["error"] = secrets.redact(problems[0])
            send("line", text=f"error: {entry['error']}")
        else:
            limiter = None
            if spec.max_requests:
                limiter = DaskLimiter(limit_name(spec.run_id), spec.max_requests)
            options = RunOptions(
                task=spec.task, timeout=spec.timeout, limiter=limiter, worker=send.worker.address
            )
            progress = _TaskProgress(send, settings.model, dict(settings.prices))
            outcome = asyncio.run(_run_one(settings, jobs[0], options, progress, spec.name))
            entry = outcome.data or {**entry, "status": outcome.status, "error": outcome.error}
    except Exception as exc:  # a bug: this notebook fails, the run goes on
        log.exception("running %s failed", path)
        entry["error"] = secrets.redact(f"internal error: {type(exc).__name__}: {exc}")
        send("line", text=f"error: {entry['error']}")
    entry.setdefault("wall_time", round(time.monotonic() - started, 3))
    return entry
