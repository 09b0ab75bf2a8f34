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
import datetime
import difflib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import secrets
from ..agent.approvals import RefusingApprover
from ..agent.core import Agent, TurnResult
from ..config import CodexMax
from ..notebook.document import NotebookError
from ..notebook.file import FileNotebook, atomic_write
from ..workspace import PathError, Workspace
from .progress import Progress

__all__ = ["RunOptions", "run_notebooks"]


@dataclass
class RunOptions:
    task: str
    jobs: int = 1
    timeout: float | None = None
    report: str = ""
    quiet: bool = False


@dataclass
class NotebookOutcome:
    path: str
    status: str = "failed"
    turn: TurnResult | None = None
    error: str | None = None
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)


def kernel_environment(settings: CodexMax) -> dict[str, str]:
    """The kernel's environment: the user's, without the agent's own API key (unless
    ``CodexMax.kernel_keeps_api_key``)."""
    env = dict(os.environ)
    if not settings.kernel_keeps_api_key:
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
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"cell {cid} ({what})",
        tofile=f"cell {cid}",
        n=2,
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


async def _run_one(
    settings: CodexMax, doc: FileNotebook, options: RunOptions, progress: Progress, name: str
) -> NotebookOutcome:
    from ..runners.headless import HeadlessRunner

    started = time.monotonic()
    outcome = NotebookOutcome(str(doc.path))
    before_cells = [dict(c) for c in doc.cells]
    before_ids = doc.ids
    try:
        workspace = Workspace.for_notebook(doc.path, settings.workspace_root or None)
    except PathError as exc:
        outcome.error = str(exc)
        return outcome
    if not doc.writable:
        major, minor = doc.version
        progress.line(
            progress.job(name),
            f"nbformat {major}.{minor}: the agent can read this "
            "notebook but not change or run it (upgrade it with jupyter nbconvert "
            "--to notebook --inplace)",
        )
    runner = HeadlessRunner(doc.path, doc.nb, env=kernel_environment(settings))
    approver = RefusingApprover()
    agent = Agent(
        settings,
        workspace=workspace,
        notebook=doc,
        runner=runner,
        approver=approver,
        on_event=progress.handler(name),
    )
    try:
        if options.timeout:
            try:
                turn = await asyncio.wait_for(agent.run_turn(options.task), options.timeout)
            except asyncio.TimeoutError:
                turn = TurnResult(
                    "failed",
                    steps=agent.steps,
                    error=f"stopped: the run's time limit ({options.timeout:g} s)",
                )
        else:
            turn = await agent.run_turn(options.task)
    finally:
        await agent.aclose()
    outcome.turn = turn
    outcome.seconds = time.monotonic() - started
    outcome.error = turn.error
    cells_run = dict(agent.state.get("cells_run", {}))
    plan = list(agent.state.get("plan", []))
    if turn.status != "done":
        outcome.status = "failed"
    elif any(s != "ok" for s in cells_run.values()) or any(
        s["status"] != "completed" for s in plan
    ):
        outcome.status = "incomplete"
    else:
        outcome.status = "done"
    outcome.data = {
        "path": str(doc.path),
        "status": outcome.status,
        "turn_status": turn.status,
        "error": turn.error,
        "steps": turn.steps,
        "tools": dict(agent.tools_used),
        "cells_edited": sorted(agent.state.get("cells_touched", set())),
        "cells_run": [{"cell_id": k, "status": v} for k, v in cells_run.items()],
        "plan": plan,
        "diff": notebook_diff(before_cells, before_ids, doc.cells, doc.ids),
        "files_changed": sorted(agent.state.get("files_touched", set())),
        "file_diffs": "".join(agent.state.get("file_diffs", [])),
        "usage": {
            "input_tokens": agent.usage_total.input_tokens,
            "cached_input_tokens": agent.usage_total.cached_input_tokens,
            "output_tokens": agent.usage_total.output_tokens,
            "reasoning_tokens": agent.usage_total.reasoning_tokens,
            "total_tokens": agent.usage_total.total_tokens,
        },
        "wall_time": round(outcome.seconds, 3),
        "final_message": secrets.redact(turn.final_text),
        "kernel_starts": runner.starts,
    }
    return outcome


def open_all(paths: list[str]) -> tuple[list[FileNotebook], list[str]]:
    """Every notebook opened, or the one-line errors of those that cannot be."""
    docs: list[FileNotebook] = []
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
        docs.append(doc)
    return docs, problems


async def run_notebooks(
    settings: CodexMax, docs: list[FileNotebook], options: RunOptions
) -> tuple[int, list[NotebookOutcome]]:
    progress = Progress(quiet=options.quiet, prefix=True)
    names = _short_names([d.path for d in docs])
    limit = asyncio.Semaphore(max(1, options.jobs))

    async def one(doc: FileNotebook) -> NotebookOutcome:
        async with limit:
            return await _run_one(settings, doc, options, progress, names[doc.path])

    started = datetime.datetime.now(datetime.timezone.utc)
    try:
        outcomes = list(await asyncio.gather(*(one(d) for d in docs)))
    finally:
        progress.close()
    status = 0 if all(o.status == "done" for o in outcomes) else 1
    if options.report:
        write_report(options.report, settings, started, outcomes, status)
    return status, outcomes


def _short_names(paths: list[Path]) -> dict[Path, str]:
    names = {p: p.name for p in paths}
    if len(set(names.values())) < len(paths):
        common = Path(os.path.commonpath([str(p.parent) for p in paths]))
        names = {p: str(p.relative_to(common)) for p in paths}
    return names


def write_report(
    target: str,
    settings: CodexMax,
    started: datetime.datetime,
    outcomes: list[NotebookOutcome],
    status: int,
) -> None:
    report = {
        "version": 1,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "exit_status": status,
        "settings": {
            "provider": settings.provider,
            "model": settings.model,
            "reasoning_effort": settings.reasoning_effort,
            "approval": settings.approval,
            "base_url": settings.base_url,
        },
        "notebooks": [
            o.data or {"path": o.path, "status": o.status, "error": o.error} for o in outcomes
        ],
    }
    text = secrets.redact(json.dumps(report, indent=2, ensure_ascii=False)) + "\n"
    path = Path(target)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.encode("utf-8"))


def print_summary(outcomes: list[NotebookOutcome], out: Any = None) -> None:
    out = out or sys.stdout
    for outcome in outcomes:
        data = outcome.data
        usage = data.get("usage", {})
        edited = len(data.get("cells_edited", []))
        ran = data.get("cells_run", [])
        failing = [c["cell_id"] for c in ran if c["status"] != "ok"]
        print(f"{outcome.path}: {outcome.status}", file=out)
        print(
            f"  steps: {data.get('steps', 0)}; cells edited: {edited}; cells run: {len(ran)}"
            + (f" (still failing: {', '.join(failing)})" if failing else "")
            + f"; files changed: {len(data.get('files_changed', []))}",
            file=out,
        )
        print(
            f"  tokens: {usage.get('input_tokens', 0):,} in, "
            f"{usage.get('output_tokens', 0):,} out; time: {outcome.seconds:.1f}s",
            file=out,
        )
        if outcome.error:
            print(f"  error: {outcome.error}", file=out)
        final = (data.get("final_message") or "").strip()
        if final:
            print("  " + final.replace("\n", "\n  "), file=out)
