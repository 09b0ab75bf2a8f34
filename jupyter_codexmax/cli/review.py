"""``jupyter codexmax review``: a read-only code review of notebooks (by cell) and files.

Usage mistakes are found before any model request, each one line with exit status 2. The
review itself: one agent per notebook and one for the plain files, read-only, findings
through ``report_finding``, a verdict through ``submit_verdict``. Exit status: 3 when a
finding reaches ``--fail-on``; 1 when a review failed or ended without a verdict; 0
otherwise; 2 for a usage mistake.
"""

from __future__ import annotations

import asyncio
import math
import sys
from typing import Any

from jupyter_core.application import base_flags
from traitlets import Bool, Float, Unicode

from .app import UsageError, _Base, _model_aliases

__all__ = ["ReviewApp"]


class ReviewApp(_Base):
    name = "jupyter-codexmax-review"
    description = """Review notebooks and files, read-only: findings by cell (notebooks) or
    line (files), with severity and confidence, and an overall verdict.

    With --base REF (in a git repository), only what changed since REF is reviewed,
    notebooks compared cell by cell. Nothing on disk changes. Exit status: 0 reviewed,
    1 a review failed or gave no verdict, 2 a usage mistake, 3 a finding reached
    --fail-on."""
    examples = """
    jupyter codexmax review analysis.ipynb
    jupyter codexmax review --base origin/main --format sarif --output review.sarif \\
        --fail-on high notebooks/*.ipynb src/*.py
    """

    base = Unicode("", help="Review only what changed since this git commit or ref.").tag(
        config=True
    )
    format = Unicode("text", help="text, json, markdown or sarif.").tag(config=True)
    output = Unicode("", help="Write the review to this file (default: standard output).").tag(
        config=True
    )
    fail_on = Unicode(
        "", help="Exit 3 when a finding is at least this severe: critical, high, medium, low."
    ).tag(config=True)
    instructions = Unicode("", help="What the review should focus on.").tag(config=True)
    run_cells = Bool(
        False, help="Allow running the notebook's cells in a throwaway, sandboxed kernel."
    ).tag(config=True)
    timeout = Float(0.0, help="Seconds each unit's review may take (0: no limit).").tag(config=True)
    quiet = Bool(False, help="No live log on standard error.").tag(config=True)

    aliases = {
        **_model_aliases,
        "base": ("ReviewApp.base", "Review only what changed since this git ref."),
        "format": ("ReviewApp.format", "text, json, markdown or sarif."),
        "output": ("ReviewApp.output", "Write the review to this file."),
        "fail-on": ("ReviewApp.fail_on", "Exit 3 at this severity or above."),
        "instructions": ("ReviewApp.instructions", "What to focus on."),
        "timeout": ("ReviewApp.timeout", "Seconds each review may take."),
        "max-steps": ("CodexMax.max_steps", "Most model requests per review."),
    }
    flags = {
        **base_flags,
        "run": (
            {"ReviewApp": {"run_cells": True}},
            "Allow running cells in a throwaway kernel.",
        ),
        "quiet": ({"ReviewApp": {"quiet": True}}, "No live log."),
    }

    def _check(self) -> None:
        from ..review.findings import FAIL_LEVELS
        from ..review.render import FORMATS

        if not self.extra_args:
            raise UsageError("give notebooks or files: jupyter codexmax review PATH...")
        if self.format not in FORMATS:
            raise UsageError(f"--format {self.format}: give one of {', '.join(FORMATS)}")
        if self.fail_on and self.fail_on not in FAIL_LEVELS:
            raise UsageError(f"--fail-on {self.fail_on}: give one of {', '.join(FAIL_LEVELS)}")
        if self.base is not None and self.base != self.base.strip():
            raise UsageError(f"--base {self.base!r}: a ref has no spaces around it")
        if not (math.isfinite(self.timeout) and self.timeout >= 0):
            raise UsageError(
                f"--timeout must be seconds above 0 (0: no limit), not {self.timeout:g}"
            )
        if self.output:
            from .run import check_report_path

            problem = check_report_path(self.output)
            if problem:
                raise UsageError(f"--output {self.output}: {problem}")

    def run(self) -> int:
        from ..keyhandoff import restart_without_key

        # Commands and a kernel may start: the key leaves this process's environment first.
        restart_without_key(self.settings().api_key_env)
        self._check()
        settings = self.settings()
        from ..review.changes import BaseError
        from ..review.inputs import InputError, open_scopes

        try:
            scopes, base = open_scopes(
                list(self.extra_args), self.base or None, settings.workspace_root
            )
        except (InputError, BaseError) as exc:
            raise UsageError(str(exc)) from exc
        if self.run_cells and any(s.notebooks for s in scopes):
            from ..review.tools import read_only_policy
            from ..sandbox import sandbox_status

            if any(read_only_policy(settings, s.workspace) is None for s in scopes):
                sandbox = sandbox_status(settings)
                why = (
                    f"which is {sandbox.describe()}"
                    if not sandbox.active
                    else "with read-only mounts (the workspace is in a temp folder)"
                )
                raise UsageError(
                    f"--run needs the OS sandbox to keep the kernel from writing files, {why}"
                )
        if scopes:
            settings.require_api_key()
            settings.effort_for()
        from ..review.engine import ReviewOptions

        options = ReviewOptions(
            base=self.base or None,
            commit=base.commit if base else "",
            instructions=self.instructions,
            run=self.run_cells,
            timeout=self.timeout or None,
        )
        result = asyncio.run(review_all(settings, scopes, options, quiet=self.quiet))
        from ..review.render import render

        text = render(result, self.format)
        if self.output:
            from pathlib import Path

            from ..safefs import atomic_write

            target = Path(self.output).expanduser()
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, text.encode("utf-8"))
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
        exit_status: int = result.status(self.fail_on or None)
        return exit_status


async def review_all(settings: Any, scopes: list[Any], options: Any, *, quiet: bool) -> Any:
    """Every unit reviewed, one after another (a live log on standard error)."""
    from ..review.engine import ReviewResult, kernel_env, run_unit, unit_name
    from ..review.tools import read_only_policy
    from .progress import Progress

    progress = Progress(quiet=quiet, prefix=True)
    units = []
    try:
        for scope in scopes:
            name = unit_name(scope)
            runner = None
            if options.run and scope.notebooks:
                from ..runners.headless import HeadlessRunner

                doc = scope.notebooks[0].doc
                runner = HeadlessRunner(
                    doc.path,
                    doc.nb,
                    env=kernel_env(settings),
                    sandbox=read_only_policy(settings, scope.workspace),
                )
            unit = await run_unit(
                settings, scope, options, on_event=progress.handler(name), runner=runner
            )
            if unit.error:
                progress.line(progress.job(name), f"{unit.status}: {unit.error}")
            units.append(unit)
    finally:
        progress.close()
    return ReviewResult(units, base=options.base)
