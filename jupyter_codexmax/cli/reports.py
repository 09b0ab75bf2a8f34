"""The reports of ``jupyter codexmax run``: checked before the run, written after it.

``--report FILE`` (JSON: an entry per notebook, and totals) and ``--report-md FILE`` (the
same as a Markdown table, :mod:`..scale.report`). Written whole or not at all (a temporary
file, then a rename), with every credential masked.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import secrets
from ..config import CodexMax
from ..safefs import atomic_write

if TYPE_CHECKING:
    from .run import NotebookOutcome, RunOptions

__all__ = ["check_report_path", "peak_memory_mb", "write_report", "write_reports"]


def write_reports(
    options: RunOptions,
    settings: CodexMax,
    started: datetime.datetime,
    outcomes: list[NotebookOutcome],
    status: int,
) -> int:
    """``--report`` and ``--report-md``, if asked for; the run's status (1 when one could
    not be written)."""
    for target, markdown in ((options.report, False), (options.report_md, True)):
        if not target:
            continue
        try:
            write_report(
                target,
                settings,
                started,
                outcomes,
                status,
                carried=options.carried,
                markdown=markdown,
            )
        except OSError as exc:
            from ..agent.dispatch import failure_text

            print(
                f"jupyter-codexmax: error: the report was not written to {target}: "
                f"{failure_text(exc)}",
                file=sys.stderr,
            )
            status = 1
    return status


def check_report_path(target: str) -> str | None:
    """Why a report could not be written to ``target`` (None: it can be), checked before
    the run: a folder, a pipe or device, a file or folder that cannot be written."""
    path = Path(target).expanduser()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        return f"cannot be used: {exc.strerror or exc}"
    if mode is not None:
        import stat

        from ..fileio import describe_mode

        if not stat.S_ISREG(mode):
            return f"is {describe_mode(mode)}; give a file path for the report"
        if not os.access(path, os.W_OK):
            return "cannot be written (no permission)"
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder} cannot be written (no permission)"
    return None


def write_report(
    target: str,
    settings: CodexMax,
    started: datetime.datetime,
    outcomes: list[NotebookOutcome],
    status: int,
    *,
    carried: list[dict[str, Any]] | tuple[()] = (),
    markdown: bool = False,
) -> None:
    """The JSON report (or, with ``markdown``, the same as a Markdown table). ``carried``:
    entries of an earlier run's notebooks that this one skipped (``--resume``)."""
    from ..scale.report import markdown as as_markdown
    from ..scale.report import totals

    entries: list[dict[str, Any]] = [
        *carried,
        *(o.data or {"path": o.path, "status": o.status, "error": o.error} for o in outcomes),
    ]
    report: dict[str, Any] = {
        "version": 1,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "exit_status": status,
        "peak_memory_mb": peak_memory_mb(),
        "settings": {
            "provider": settings.provider,
            "model": settings.model,
            "reasoning_effort": settings.reasoning_effort,
            "approval": settings.approval,
            "base_url": settings.base_url,
            "sandbox": settings.sandbox,
        },
        "notebooks": entries,
        "totals": totals(entries),
    }
    report = secrets.redact_value(report, secrets.credential_values(os.environ))
    text = (
        as_markdown(report) if markdown else json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    )
    path = Path(target)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.encode("utf-8"))


def peak_memory_mb() -> float | None:
    """This process's peak resident memory in MiB (None where the OS does not say).

    On Linux, ``VmHWM`` (getrusage's figure survives ``exec``, so it would count the memory
    of whatever process started this one)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
