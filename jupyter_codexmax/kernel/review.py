"""``%agent review [--base REF] [--notebook PATH] [--focus TEXT]``: review this kernel's
notebook, read-only, and show the findings in the cell's output.

The notebook is read as last saved (a kernel never reads the frontend's unsaved changes
here), reviewed by the same engine as ``jupyter codexmax review`` (:mod:`..review`), on the
agent's thread; the cell shows the agent's steps as lines while it works, then the findings
grouped by cell as Markdown (each cell a ``#cell-id=`` link, which JupyterLab 4 scrolls to)
that stays in the saved notebook, with the findings as JSON under
:data:`REVIEW_MIME` for frontends. Nothing is written: not the notebook, not a session.
An interrupt stops the review.
"""

from __future__ import annotations

import argparse
import queue
import shlex
from typing import TYPE_CHECKING, Any

from ..errors import CodexmaxError

if TYPE_CHECKING:
    from ..review.engine import ReviewResult
    from .host import KernelHost

__all__ = ["REVIEW_MIME", "review_markdown", "review_notebook"]

#: The mimetype of a review's findings in the cell's output (the JSON report).
REVIEW_MIME = "application/vnd.codexmax.review+json"

#: Seconds between two looks at the agent's events while the cell waits.
POLL = 0.1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, never an exit
        raise CodexmaxError(f"%agent review: {message}")


def _options(args: list[str]) -> argparse.Namespace:
    parser = _Parser(prog="%agent review", add_help=False)
    parser.add_argument("--base")
    parser.add_argument("--notebook")
    parser.add_argument("--focus", default="")
    return parser.parse_args(args)


def review_notebook(host: KernelHost, line: str) -> ReviewResult:
    """Review the kernel's notebook (``line``: what follows ``review``); the cell shows the
    progress, then the findings."""
    from IPython.display import display

    from ..review.engine import ReviewOptions, ReviewResult, run_unit, unit_name
    from ..review.inputs import open_scopes
    from .locate import locate_notebook
    from .views import TextView

    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise CodexmaxError(f"%agent review: {exc}") from None
    options = _options(words)
    host.refuse_if_working()
    path, how = locate_notebook(host.shell, options.notebook, host.cell_source())
    if path is None:
        raise CodexmaxError(f"%agent review: {how}")
    from ..review.changes import BaseError
    from ..review.inputs import InputError

    try:
        scopes, base = open_scopes([str(path)], options.base)
    except (InputError, BaseError) as exc:
        raise CodexmaxError(f"%agent review: {exc}") from None
    settings = host.settings
    units = []
    review = ReviewOptions(
        base=options.base, commit=base.commit if base else "", instructions=options.focus
    )
    for scope in scopes:
        settings.require_api_key()
        view = TextView(title=f"review of {unit_name(scope)}")
        _note_unsaved(host, scope, view)
        events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        future = host.agent_loop.submit(run_unit(settings, scope, review, on_event=events.put))
        try:
            while True:
                try:
                    view.handle(events.get(timeout=POLL))
                except queue.Empty:
                    if future.done():
                        break
            units.append(future.result())
        except KeyboardInterrupt:
            future.cancel()
            view.note("review stopped")
            raise CodexmaxError("%agent review: stopped") from None
    result = ReviewResult(units, base=options.base)
    display(bundle(result), raw=True)
    return result


def _note_unsaved(host: KernelHost, scope: Any, view: Any) -> None:
    cell = host.cell_id()
    doc = scope.notebooks[0].doc
    if cell is not None and doc.has_own_ids and cell not in doc.ids:
        view.note(
            f"this cell is not in {doc.path.name} as saved: the review reads the saved file; "
            "save the notebook (Ctrl+S) to include your latest changes"
        )


def bundle(result: ReviewResult) -> dict[str, Any]:
    """The review as the cell's output: Markdown (saved with the notebook), text, JSON."""
    import os

    from .. import secrets
    from ..review.render import to_json, to_text

    values = secrets.credential_values(os.environ)
    return {
        "text/markdown": secrets.redact(review_markdown(result), values),
        "text/plain": secrets.redact(to_text(result), values),
        REVIEW_MIME: secrets.redact_value(to_json(result), values),
    }


def review_markdown(result: ReviewResult) -> str:
    """The findings by cell, each cell a link that JupyterLab scrolls to."""
    from ..review.render import to_markdown

    text = to_markdown(result)
    for finding in result.findings:
        if finding.cell_id is None:
            continue
        heading = f"#### Cell `{finding.cell_id}` (#{finding.cell_number})"
        link = (
            f"#### [Cell `{finding.cell_id}`](#cell-id={finding.cell_id}) (#{finding.cell_number})"
        )
        text = text.replace(heading, link)
    return text
