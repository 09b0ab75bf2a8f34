"""Running a review: the agent core with the review's tools and instructions, one unit at
a time (a notebook, or the plain files), and the result of all of them."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from string import Template
from typing import TYPE_CHECKING, Any

from ..providers.base import Usage
from .findings import SEVERITIES, Finding, Scope, Verdict, reaches

if TYPE_CHECKING:
    from .. import events as ev
    from ..config import CodexMax
    from ..runners.base import CellRunner

__all__ = ["ReviewOptions", "ReviewResult", "UnitResult", "review_instructions", "run_unit"]

_SCOPE_ALL = "Everything you are shown is under review."
_SCOPE_BASE = (
    "Only what changed since the base is under review (the cells or lines you are shown); "
    "flag problems the change introduces, including in how it uses code that did not change."
)
_RUN_OFF = (
    "You cannot run the notebook's cells in this review; reason from the code (read-only "
    "shell commands may help)."
)
_RUN_ON = (
    "You may run the notebook's cells (run_cells) in a throwaway kernel to check a "
    "suspicion; nothing it does is saved, and its files are read-only."
)


@cache
def _template() -> Template:
    text = resources.files(__package__).joinpath("prompt.md").read_text("utf-8")
    return Template(text)


def review_instructions(*, base: bool, run: bool) -> str:
    """The review's system prompt."""
    return (
        _template()
        .substitute(
            scope_note=_SCOPE_BASE if base else _SCOPE_ALL, run_note=_RUN_ON if run else _RUN_OFF
        )
        .strip()
    )


@dataclass
class ReviewOptions:
    base: str | None = None
    commit: str = ""
    instructions: str = ""
    run: bool = False
    timeout: float | None = None


@dataclass
class UnitResult:
    """One unit's review: ``done`` (with a verdict), ``incomplete`` (the model ended without
    one) or ``failed`` (the turn ended in an error)."""

    name: str
    scope: Scope
    status: str
    error: str | None = None
    steps: int = 0
    usage: Usage = field(default_factory=Usage)
    final_text: str = ""


@dataclass
class ReviewResult:
    units: list[UnitResult]
    base: str | None = None

    @property
    def findings(self) -> list[Finding]:
        found = [f for u in self.units for f in u.scope.findings]
        return sorted(found, key=lambda f: SEVERITIES.index(f.severity))

    @property
    def verdict(self) -> Verdict | None:
        """``needs_changes`` if any unit says so; ``correct`` when all that were reviewed
        say so (or nothing changed since the base); None when a unit gave none."""
        if not self.units:
            return Verdict("correct", f"nothing changed since {self.base}", 1.0)
        verdicts = [u.scope.verdict for u in self.units]
        against = [v for v in verdicts if v is not None and v.verdict == "needs_changes"]
        if against:
            return Verdict(
                "needs_changes",
                " ".join(v.explanation for v in against),
                min((v.confidence for v in against if v.confidence is not None), default=None),
            )
        if any(v is None for v in verdicts):
            return None
        given = [v for v in verdicts if v is not None]
        return Verdict(
            "correct",
            " ".join(v.explanation for v in given),
            min((v.confidence for v in given if v.confidence is not None), default=None),
        )

    @property
    def usage(self) -> Usage:
        total = Usage()
        for unit in self.units:
            total = total + unit.usage
        return total

    def status(self, fail_on: str | None) -> int:
        """3 when a finding reaches ``fail_on``; 1 when a unit failed or gave no verdict;
        else 0."""
        if fail_on and any(reaches(f.severity, fail_on) for f in self.findings):
            return 3
        return 0 if all(u.status == "done" for u in self.units) else 1


def unit_name(scope: Scope) -> str:
    if scope.notebooks:
        return scope.notebooks[0].name
    return "files" if len(scope.files) > 1 else scope.files[0].name


async def _nothing(record: dict[str, Any]) -> None:
    """A review keeps no session: nothing is saved."""


async def run_unit(
    settings: CodexMax,
    scope: Scope,
    options: ReviewOptions,
    *,
    on_event: Callable[[ev.Event], None] | None = None,
    runner: CellRunner | None = None,
) -> UnitResult:
    """Review one unit with a fresh agent: read-only, the review's tools, no session kept
    (not in the notebook, not in this machine's journal)."""
    import copy

    from ..agent.approvals import RefusingApprover
    from ..agent.core import Agent, TurnResult
    from .inputs import present
    from .tools import review_tools

    settings = copy.copy(settings)
    settings.journal = False
    notebook = scope.notebooks[0].doc if scope.notebooks else None
    run = options.run and notebook is not None and runner is not None
    agent = Agent(
        settings,
        workspace=scope.workspace,
        notebook=notebook,
        runner=runner if run else None,
        approver=RefusingApprover(),
        on_event=on_event,
        tools=review_tools(notebook=notebook is not None, run=run),
        # Every tool offered only reads (run_cells works on the working copy): ``auto``
        # lets --run run cells; ``read-only`` refuses it otherwise.
        approval="auto" if run else "read-only",
        save_session=_nothing,
    )
    agent.instructions = review_instructions(base=scope.base is not None, run=run)
    agent.view_at_start = False  # the task presents what is under review (with --base, only it)
    agent.state["review"] = scope
    task = present(scope, options.commit, options.instructions)
    name = unit_name(scope)
    try:
        if options.timeout:
            try:
                turn = await asyncio.wait_for(agent.run_turn(task), options.timeout)
            except asyncio.TimeoutError:
                turn = TurnResult(
                    "failed",
                    steps=agent.steps,
                    error=f"stopped at the time limit ({options.timeout:g} s)",
                )
        else:
            turn = await agent.run_turn(task)
    finally:
        await agent.aclose()
    if turn.status != "done":
        status = "failed"
    elif scope.verdict is None:
        status = "incomplete"
    else:
        status = "done"
    error = turn.error
    if status == "incomplete":
        error = "the model ended the review without a verdict (submit_verdict)"
    return UnitResult(name, scope, status, error, turn.steps, turn.usage, turn.final_text)


def kernel_env(settings: CodexMax) -> dict[str, str]:
    from ..cli.run import kernel_environment

    env = kernel_environment(settings)
    env.setdefault("PYTHONDONTWRITEBYTECODE", os.environ.get("PYTHONDONTWRITEBYTECODE", "1"))
    return env
