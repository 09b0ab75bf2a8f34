"""``jupyter codexmax run``: the agent on notebooks, headless, for scripts, cron and CI.

Each notebook gets its own agent, kernel and model connection; ``--jobs N`` runs N at once.
Every notebook is read (and checked) before any is touched: one that cannot be read stops
the run with status 2, and nothing is changed.

The outcome of a notebook:

- ``done``: the agent finished, every cell it ran ended without an error, and its plan (if
  it made one) has every step completed;
- ``incomplete``: the agent finished, but a cell it ran still fails, or its plan has steps
  not completed;
- ``failed``: the turn ended in an error (the model's API, the step limit, the notebook
  changed on disk), or the run's time limit stopped it.

Exit status: 0 when every notebook is ``done``; 1 otherwise; 2 for a usage or
configuration mistake, or a notebook that cannot be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import secrets
from ..agent.approvals import RefusingApprover
from ..agent.core import Agent, TurnResult
from ..agent.session import SaveSession
from ..config import CodexMax
from ..diffs import unified_diff
from ..notebook.document import NotebookError
from ..notebook.file import FileNotebook
from ..providers.base import Usage
from ..safefs import check_writable
from ..session.journal import MACHINE, kept_here
from ..session.store import SessionError, SessionRecord, find_record
from ..text import printable
from ..workspace import PathError, Workspace
from .progress import Progress
from .reports import check_report_path, peak_memory_mb, write_report, write_reports

if TYPE_CHECKING:
    from ..scale.limiter import Limiter

__all__ = [
    "RunOptions",
    "check_report_path",
    "peak_memory_mb",
    "run_notebooks",
    "write_report",
    "write_reports",
]

log = logging.getLogger("jupyter_codexmax.run")


@dataclass
class RunOptions:
    task: str
    jobs: int = 1
    timeout: float | None = None
    report: str = ""
    report_md: str = ""
    quiet: bool = False
    #: Report entries of notebooks an earlier run did (``--resume``), carried over.
    carried: list[dict[str, Any]] = field(default_factory=list)
    #: ``--max-concurrent-requests``: one limit on the model requests of every notebook
    #: (:mod:`..scale.limiter`); None: none.
    max_requests: int = 0
    limiter: Limiter | None = None
    #: Where each notebook runs, for its report entry (a Dask worker's address there).
    worker: str = "local"


@dataclass
class NotebookOutcome:
    path: str
    status: str = "failed"
    turn: TurnResult | None = None
    error: str | None = None
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)


#: How a session that was not written by this machine's agent is told to the user.
FOREIGN_SESSION = (
    "from another machine or person (not verified: its history goes to the model as quoted "
    "text, not instructions)"
)


def kernel_environment(settings: CodexMax) -> dict[str, str]:
    """The kernel's environment: the user's, without credentials (by name or value shape)
    and without the agent's own API key, but for those the settings keep
    (``CodexMax.kernel_credentials``, ``CodexMax.kernel_keeps_api_key``)."""
    keep = set(settings.kernel_credentials)
    if settings.kernel_keeps_api_key:
        keep.add(settings.api_key_env)
    env = {
        name: value
        for name, value in os.environ.items()
        if name in keep or not secrets.is_credential(name, value)
    }
    if settings.api_key_env not in keep:
        env.pop(settings.api_key_env, None)
    return env


def notebook_diff(
    before: list[Any], before_ids: list[str], after: list[Any], after_ids: list[str]
) -> str:
    """A readable diff of a notebook's cell sources: per cell, inserted, deleted, changed."""
    old = {cid: str(c.get("source", "")) for cid, c in zip(before_ids, before, strict=True)}
    new = {cid: str(c.get("source", "")) for cid, c in zip(after_ids, after, strict=True)}
    chunks: list[str] = []
    for cid in after_ids:
        if cid not in old:
            chunks.append(_cell_diff(cid, "", new[cid], "inserted"))
        elif old[cid] != new[cid]:
            chunks.append(_cell_diff(cid, old[cid], new[cid], "changed"))
    for cid in before_ids:
        if cid not in new:
            chunks.append(_cell_diff(cid, old[cid], "", "deleted"))
    moved = [c for c in after_ids if c in old]
    if moved != [c for c in before_ids if c in new]:
        chunks.append("cells reordered: " + " ".join(moved))
    return "\n".join(chunks)


def _cell_diff(cid: str, old: str, new: str, what: str) -> str:
    return unified_diff(old, new, fromfile=f"cell {cid} ({what})", tofile=f"cell {cid}")


@dataclass
class Prepared:
    """A notebook checked and ready: its document, workspace and stored session (and where
    that was found: ``metadata``, a cell's output, or this machine's journal)."""

    doc: FileNotebook
    workspace: Workspace
    record: SessionRecord | None
    record_source: str = ""


def open_all(
    paths: list[str], settings: CodexMax, new_session: bool = False
) -> tuple[list[Prepared], list[str]]:
    """Every notebook opened, with its workspace and stored session, or the one-line errors
    of those that cannot be used (nothing is touched either way)."""
    prepared: list[Prepared] = []
    problems: list[str] = []
    seen: set[Path] = set()
    for path in paths:
        try:
            doc = FileNotebook.open(path)
        except NotebookError as exc:
            problems.append(str(exc))
            continue
        if doc.path in seen:
            continue
        seen.add(doc.path)
        try:
            workspace = Workspace.for_notebook(doc.location, settings.workspace_root or None)
        except PathError as exc:
            problems.append(f"{doc.path}: {exc}")
            continue
        if not workspace.contains(doc.location):
            problems.append(f"{doc.location}: not inside the workspace {workspace.root}")
            continue
        if settings.approval != "read-only" and doc.writable:
            try:
                check_writable(doc.path)
            except PermissionError as exc:
                problems.append(
                    f"{doc.path}: {exc.strerror}; not run (--approval read-only only reads it)"
                )
                continue
        found = None
        if not new_session:
            try:
                extra = kept_here(doc.path, doc.ids) if settings.journal else []
                found = find_record(doc.nb, str(doc.path), extra)
            except SessionError as exc:
                problems.append(f"{exc} (or run with --new-session)")
                continue
        if found is None:
            prepared.append(Prepared(doc, workspace, None))
        else:
            prepared.append(Prepared(doc, workspace, found[1], found[0]))
    return prepared, problems


async def _run_one(
    settings: CodexMax, job: Prepared, options: RunOptions, progress: Progress, name: str
) -> NotebookOutcome:
    from ..runners.headless import HeadlessRunner
    from ..sandbox import command_policy, sandbox_status
    from ..sandbox.protect import HOME_NOTE, home_in

    started = time.monotonic()
    doc = job.doc
    outcome = NotebookOutcome(str(doc.path))
    before_cells = [dict(c) for c in doc.cells]
    before_ids = doc.ids
    say = progress.job(name)
    if job.record is not None:
        kept = "; kept on this machine" if job.record_source == MACHINE else ""
        progress.line(
            say,
            f"continuing session {job.record.session_id[:8]} (turn "
            f"{job.record.turns + 1}{kept}; --new-session starts a new one)",
        )
        if not job.record.ours:
            progress.line(say, f"that session is {FOREIGN_SESSION}")
    if not doc.writable:
        major, minor = doc.version
        progress.line(
            say,
            f"nbformat {major}.{minor}: the agent can read this notebook but "
            "not change or run it (upgrade it with jupyter nbconvert --to "
            "notebook --inplace)",
        )
    sandbox = await asyncio.to_thread(sandbox_status, settings)
    if not sandbox.active:
        progress.line(
            say,
            f"sandbox {sandbox.describe()}; shell commands are not confined, so each needs "
            "approval (none can be given in this run)",
        )
    if home_in(job.workspace.root) is not None:
        top = "; commands cannot add files at its top level" if sandbox.active else ""
        progress.line(say, f"{HOME_NOTE}{top}")
    kernel_sandbox = None
    if settings.sandbox_kernel and sandbox.active:
        kernel_sandbox = command_policy(settings, job.workspace, sandbox)
    runner = HeadlessRunner(
        doc.path, doc.nb, env=kernel_environment(settings), sandbox=kernel_sandbox
    )
    provider = None
    if options.limiter is not None:
        from ..providers import open_provider
        from ..scale.limiter import LimitedProvider

        provider = LimitedProvider(open_provider(settings), options.limiter)
    agent = Agent(
        settings,
        workspace=job.workspace,
        notebook=doc,
        runner=runner,
        provider=provider,
        approver=RefusingApprover(),
        on_event=progress.handler(name),
        resume=job.record,
        save_session=_saver(settings, doc),
    )
    # The saver decides itself whether to write the notebook, so it is called at the
    # read-only level too (to keep the session on this machine).
    agent.saver_writes_notebook = False
    if settings.approval == "read-only" and not settings.journal:
        progress.line(say, "read-only with the journal off: this session is kept nowhere")
    try:
        if options.timeout:
            try:
                turn = await asyncio.wait_for(agent.run_turn(options.task), options.timeout)
            except asyncio.TimeoutError:
                message = f"stopped at the run's time limit ({options.timeout:g} s)"
                progress.line(say, f"error: {message}")
                turn = TurnResult("failed", steps=agent.steps, error=message)
        else:
            turn = await agent.run_turn(options.task)
    finally:
        await agent.aclose()
    outcome.turn = turn
    outcome.seconds = time.monotonic() - started
    outcome.error = turn.error
    shown = {cid: doc.short_id(i) for i, cid in enumerate(doc.ids)}
    cells_run = {
        shown.get(cid, cid): status for cid, status in agent.state.get("cells_run", {}).items()
    }
    plan = list(agent.state.get("plan", []))
    not_saved = None
    if doc.dirty:
        # Changes the agent made (or its session) that never reached the file: said once,
        # with what the file holds instead.
        failure = agent.state.get("save_failure")
        if failure is None and agent.save_error:
            failure = agent.save_error.removeprefix("the session could not be saved: ")
        what = "its changes and its session" if agent.save_error else "its last changes"
        kept = (
            "the file is as it was before the run"
            if not doc.writes
            else "the file holds what was saved before that"
        )
        not_saved = f"{doc.path.name} was not saved ({failure or 'not written'}): {what}; {kept}"
        if not agent.save_error:  # a failed session save was said already
            progress.line(say, f"error: {not_saved}")
        outcome.error = f"{outcome.error}; {not_saved}" if outcome.error else not_saved
    elif agent.save_error:
        outcome.error = outcome.error or agent.save_error
    if turn.status != "done" or agent.save_error or not_saved:
        outcome.status = "failed"
    elif any(s != "ok" for s in cells_run.values()) or any(
        s["status"] != "completed" for s in plan
    ):
        outcome.status = "incomplete"
    else:
        outcome.status = "done"
    data = {
        "path": str(doc.path),
        "status": outcome.status,
        "worker": options.worker,
        "turn_status": turn.status,
        "error": outcome.error,
        "steps": turn.steps,
        "tools": dict(agent.tools_used),
        "cells_edited": sorted(agent.state.get("cells_touched", set())),
        "cells_run": [{"cell_id": k, "status": v} for k, v in cells_run.items()],
        "plan": plan,
        "diff": notebook_diff(before_cells, before_ids, doc.cells, doc.ids),
        "files_changed": sorted(agent.state.get("files_touched", set())),
        "file_diffs": "".join(agent.state.get("file_diffs", [])),
        "usage": turn.usage.to_json(),
        "cost_usd": turn_cost(agent, turn.usage),
        "session": {
            "id": agent.session_id,
            "turns": agent.turns,
            "compactions": agent.compactions,
            "context_tokens": agent.context_tokens(),
            "usage": agent.usage_total.to_json(),
            "cost_usd": round(agent.cost, 6) if agent.price() is not None else None,
        },
        "served_model": agent.served_model,
        "filled": doc.filled if doc.writes and doc.filled else None,
        "not_saved": not_saved,
        "wall_time": round(outcome.seconds, 3),
        "final_message": turn.final_text,
        "kernel_starts": runner.starts,
        "sandbox": {"commands": sandbox.describe(), "kernel": kernel_sandbox is not None},
    }
    if data["filled"]:
        progress.line(say, f"written with missing required keys filled: {doc.filled}")
    # Values, not JSON text, are masked (escapes hide word boundaries from the patterns),
    # with the credentials of this process's environment too.
    outcome.data = secrets.redact_value(data, secrets.credential_values(os.environ))
    return outcome


def _saver(settings: CodexMax, doc: FileNotebook) -> SaveSession:
    """The session's saver: this machine keeps the latest record of the notebook (with the
    journal on), and the notebook gets it in its metadata unless the run is read-only or
    the notebook an old format (never rewritten). So a read-only run is continued by the
    next run on this machine, and leaves the notebook byte for byte as it was."""
    from ..session.journal import remember_notebook
    from ..session.store import METADATA_KEY

    writes_notebook = settings.approval != "read-only" and doc.writable

    async def save(record: dict[str, Any]) -> None:
        if writes_notebook:
            await doc.set_metadata(METADATA_KEY, record)
            await doc.save()
        if settings.journal:
            try:
                remember_notebook(doc.path, record, doc.ids)
            except OSError:
                if not writes_notebook:
                    raise  # this machine's copy was the only one
                # The notebook holds the session; the journal's failure was said already.

    return save


def turn_cost(agent: Agent, usage: Usage) -> float | None:
    """What this run's turn cost in US dollars (None: the model's price is unknown)."""
    from ..agent.accounting import cost_of

    price = agent.price()
    return None if price is None else round(cost_of(usage, price), 6)


async def run_notebooks(
    settings: CodexMax, jobs: list[Prepared], options: RunOptions
) -> tuple[int, list[NotebookOutcome]]:
    progress = Progress(quiet=options.quiet, prefix=True)
    names = _short_names([j.doc.path for j in jobs])
    limit = asyncio.Semaphore(max(1, options.jobs))
    if options.max_requests and options.limiter is None:
        from ..scale.limiter import LocalLimiter

        options.limiter = LocalLimiter(options.max_requests)

    async def one(job: Prepared) -> NotebookOutcome:
        async with limit:
            try:
                return await _run_one(settings, job, options, progress, names[job.doc.path])
            except Exception as exc:  # a bug: this notebook fails, the others go on
                log.exception("running %s failed", job.doc.path)
                message = f"internal error: {type(exc).__name__}: {exc}"
                progress.line(progress.job(names[job.doc.path]), f"error: {message}")
                return NotebookOutcome(str(job.doc.path), "failed", error=message)

    started = datetime.datetime.now(datetime.timezone.utc)
    # A scheduler's stop (SIGTERM: timeout(1), a CI job cancelled) cancels the run as Ctrl-C
    # does: each notebook's turn stops, its kernel and commands end, then the run says so.
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    terminated = False

    def terminate() -> None:
        nonlocal terminated
        terminated = True
        if main is not None:
            main.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
        loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        outcomes = list(await asyncio.gather(*(one(j) for j in jobs)))
    except asyncio.CancelledError:
        if terminated:
            raise Terminated from None
        raise
    finally:
        progress.close()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
    status = 0 if all(o.status == "done" for o in outcomes) else 1
    return write_reports(options, settings, started, outcomes, status), outcomes


class Terminated(Exception):
    """The run was stopped by SIGTERM (and has stopped its notebooks)."""


def _short_names(paths: list[Path]) -> dict[Path, str]:
    names = {p: p.name for p in paths}
    if len(set(names.values())) < len(paths):
        common = Path(os.path.commonpath([str(p.parent) for p in paths]))
        names = {p: str(p.relative_to(common)) for p in paths}
    return names


def print_summary(outcomes: list[NotebookOutcome], out: Any = None) -> None:
    out = out or sys.stdout
    for outcome in outcomes:
        data = outcome.data
        usage = data.get("usage", {})
        edited = len(data.get("cells_edited", []))
        ran = data.get("cells_run", [])
        failing = [c["cell_id"] for c in ran if c["status"] != "ok"]
        print(f"{outcome.path}: {outcome.status}", file=out)
        unsaved = " (not saved)" if data.get("not_saved") and edited else ""
        print(
            f"  steps: {data.get('steps', 0)}; cells edited: {edited}{unsaved}; "
            f"cells run: {len(ran)}"
            + (f" (still failing: {', '.join(failing)})" if failing else "")
            + f"; files changed: {len(data.get('files_changed', []))}",
            file=out,
        )
        print(
            f"  tokens: {usage.get('input_tokens', 0):,} in, "
            f"{usage.get('output_tokens', 0):,} out; time: {outcome.seconds:.1f}s",
            file=out,
        )
        if data.get("filled"):
            print(f"  written with missing required keys filled: {data['filled']}", file=out)
        commands = (data.get("sandbox") or {}).get("commands", "")
        if commands.startswith("off"):
            print(f"  sandbox {commands}", file=out)
        if outcome.error:
            print(f"  error: {printable(secrets.redact(outcome.error))}", file=out)
        final = printable((data.get("final_message") or "").strip())
        if final:
            print("  " + final.replace("\n", "\n  "), file=out)
