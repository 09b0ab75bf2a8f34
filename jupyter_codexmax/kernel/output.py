"""What an operation shows in the cell that asked for it: the live panel while it works,
then the static summary (with the session's record) that stays in the saved notebook.

All of it runs on the kernel's main thread (displays go to the cell being run), except a
background turn's summary, which only the frontend can still write into its cell.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ..errors import CodexmaxError

if TYPE_CHECKING:
    from .bridge import Bridge
    from .sessions import NotebookSession
    from .views import View

__all__ = ["begin", "close_panel", "open_panel", "show", "summary_to_frontend"]

log = logging.getLogger("jupyter_codexmax.kernel")


def open_panel(view: View) -> tuple[str, dict[str, Any]]:
    """Show the live panel (widgets) in the cell now: its display id, and what it shows
    (nothing for a text log)."""
    display_id = f"codexmax-{uuid.uuid4().hex[:12]}"
    bundle = view.mimebundle()
    if bundle:
        from IPython.display import display

        bundle = {**bundle, "text/plain": f"jupyter-codexmax: {view.log.activity}"}
        display(bundle, raw=True, display_id=display_id)
    return display_id, bundle


def close_panel(shown: tuple[str, dict[str, Any]]) -> None:
    """Take a panel away again (the operation could not start: its error says why)."""
    display_id, bundle = shown
    if bundle:
        from IPython.display import update_display

        update_display({"text/plain": ""}, raw=True, display_id=display_id)


def begin(
    session: NotebookSession, view: View, shown: tuple[str, dict[str, Any]] | None = None
) -> None:
    """A new operation's output: the live panel now (widgets; ``shown``: already there),
    the summary later."""
    session.view = view
    session.in_background = False
    session.prompted = False
    session.display_id, session.bundle = shown if shown is not None else open_panel(view)


def show(session: NotebookSession, *, final: bool) -> None:
    """The operation's output as it now stands: at the end, the static summary (with the
    record) replaces the live panel, which could not be shown again from a saved
    notebook."""
    from IPython.display import clear_output, display, update_display

    from ..session.store import OUTPUT_MIME

    view = session.view
    if view is None or session.display_id is None:
        return
    if final and session.prompted and view.mimebundle():
        # Under the panel, the input prompts asked and answered: the summary says what
        # was decided, so the cell keeps the summary alone.
        clear_output()
        session.bundle = {}
        session.prompted = False
    proposals = session.doc.proposals() if session.doc.exists or session.doc.cells else []
    bundle = view.log.bundle(proposals)
    if not final and view.mimebundle():
        bundle = {**view.mimebundle(), **bundle}
    if session.record is not None:
        bundle[OUTPUT_MIME] = session.record
        previous = session.record_display
        if previous is not None and previous[0] != session.display_id:
            # The newer output holds the record now: the older one keeps its summary.
            old_id, old_bundle = previous
            kept = {k: v for k, v in old_bundle.items() if k != OUTPUT_MIME}
            update_display(kept, raw=True, display_id=old_id)
        session.record_display = (session.display_id, bundle)
    if session.bundle:
        update_display(bundle, raw=True, display_id=session.display_id)
    else:
        display(bundle, raw=True, display_id=session.display_id)
    session.bundle = bundle


def summary_to_frontend(
    session: NotebookSession,
    bridge: Bridge | None,
    submit: Callable[[Coroutine[Any, Any, None]], object],
) -> None:
    """A background turn's summary replaces its panel in the ``%%agent`` cell, through
    the frontend (the cell's execution is long over: only the frontend can change its
    outputs now). Also when the turn could not get the notebook: the bridge itself
    works. ``submit`` runs the writing on the agent's loop."""
    view, cell_id = session.view, session.cell_id
    if view is None:
        return
    bundle = view.log.bundle()
    if cell_id is None or bridge is None or not bridge.present:
        # A frontend that did not say which cell ran: update the panel's display (the
        # frontend may or may not route it, the execution being over).
        if session.display_id is not None and session.bundle:
            from IPython.display import update_display

            update_display(bundle, raw=True, display_id=session.display_id)
        return
    output = {"output_type": "display_data", "data": bundle, "metadata": {}}
    live = session.live

    async def write() -> None:
        try:
            if live is not None:
                await live.set_outputs(cell_id, [output])
                await live.save()
            else:
                await bridge.call(
                    "notebook.edit", ops=[{"op": "set_outputs", "id": cell_id, "outputs": [output]}]
                )
        except CodexmaxError as exc:
            log.warning("the summary could not be written: %s", exc)

    submit(write())
