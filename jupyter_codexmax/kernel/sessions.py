"""One notebook's session in a kernel: the agent, the document it works on, the output it
reports into.

The agent works on one of two documents of the same notebook: the kernel's working copy of
the saved file (:class:`~jupyter_codexmax.notebook.detached.DetachedNotebook`, edits are
proposals, cells run in this kernel) or, while a bridge is there, the frontend's live
notebook (:class:`~jupyter_codexmax.notebook.live.LiveNotebook`, edits land on screen, cells
run there). :class:`NotebookSession` switches between them between turns.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CodexmaxError

if TYPE_CHECKING:
    from .. import events as ev
    from ..agent.core import Agent
    from ..config import CodexMax
    from ..notebook.detached import DetachedNotebook
    from ..notebook.live import LiveNotebook
    from ..runners.inprocess import MainCall
    from ..session.store import SessionRecord
    from .approver import KernelApprover
    from .bridge import Bridge
    from .turnlog import TurnLog
    from .views import View

__all__ = ["NotebookSession", "as_javascript_keeps_it", "kernel_name"]

log = logging.getLogger("jupyter_codexmax.kernel")


class NotebookSession:
    """The agent for one notebook in this kernel."""

    def __init__(
        self,
        *,
        path: Path | None,
        how: str,
        doc: DetachedNotebook,
        agent: Agent,
        resumed: SessionRecord | None,
    ) -> None:
        self.path = path
        self.how = how
        self.doc = doc
        self.agent = agent
        self.resumed = resumed
        self.turns: list[TurnLog] = []
        self.view: View | None = None
        self.display_id: str | None = None
        self.bundle: dict[str, Any] = {}
        #: The output that holds the latest record, and its bundle (to take it out when a
        #: newer output holds the record).
        self.record_display: tuple[str, dict[str, Any]] | None = None
        self.record: dict[str, Any] | None = None
        #: The frontend's notebook while a bridge is there (turns in the background).
        self.live: LiveNotebook | None = None
        #: The ``%%agent`` cell a background turn reports into (its id, from the frontend).
        self.cell_id: str | None = None
        #: Whether the current turn or operation runs in the background.
        self.in_background = False
        #: Whether the current operation asked in the input prompt (its question and the
        #: answer stay in the cell's output until the summary replaces them).
        self.prompted = False
        #: The working copy's runner and session saver (to go back to without a bridge).
        self.runner: Any = None
        self.saver: Any = None

    @classmethod
    def create(
        cls,
        *,
        settings: CodexMax,
        shell: Any,
        path: Path | None,
        how: str,
        new: bool,
        main_call: MainCall,
        interrupt: Callable[[], None],
        approver: KernelApprover,
        on_event: Callable[[NotebookSession, ev.Event], None],
        save: Callable[[NotebookSession, dict[str, Any]], Awaitable[None]],
    ) -> NotebookSession:
        """A session on the working copy of ``path`` (a scratch notebook for None),
        continuing the notebook's newest stored session unless ``new``."""
        from ..agent.core import Agent
        from ..notebook.detached import DetachedNotebook
        from ..runners.inprocess import InProcessRunner
        from ..session.journal import recall_notebook
        from ..session.store import latest_record
        from ..workspace import Workspace

        if path is not None:
            doc = DetachedNotebook.open(path)
        else:
            doc = DetachedNotebook.empty(Path.cwd() / "untitled.ipynb")
        record = None
        if not new and path is not None:
            local = recall_notebook(path, doc.ids) if settings.journal else None
            extra = [("this machine's journal", local)] if local is not None else []
            record = latest_record(doc.nb, str(path), extra)
        workspace = Workspace.for_notebook(doc.location, settings.workspace_root or None)
        holder: dict[str, NotebookSession] = {}

        def stop_agent() -> None:  # the session exists by the time a cell runs
            holder["session"].agent.stop()

        runner = InProcessRunner(
            shell,
            main_call,
            interrupt,
            on_user_interrupt=stop_agent,
            kernel_name=kernel_name(shell),
        )

        async def saver(data: dict[str, Any]) -> None:
            await save(holder["session"], data)

        agent = Agent(
            settings,
            workspace=workspace,
            notebook=doc,
            runner=runner,
            approver=approver,
            on_event=lambda event: on_event(holder["session"], event),
            resume=record,
            save_session=saver,
        )
        agent.saver_writes_notebook = False  # the cell's output and this machine only
        session = cls(path=path, how=how, doc=doc, agent=agent, resumed=record)
        session.runner = runner
        session.saver = saver
        holder["session"] = session
        return session

    def refresh(self) -> None:
        """The notebook was saved since the agent read it: read it again. Only the working
        copy, between turns (a live notebook is the frontend's, read at each turn). Its
        unapplied proposals are dropped (they stay listed in their turn's output), and so is
        what undo remembered of the old copy; the model is told."""
        from ..notebook.detached import DetachedNotebook

        agent = self.agent
        if self.live is not None or agent.busy or self.path is None:
            return
        if not self.doc.changed_on_disk():
            return
        try:
            doc = DetachedNotebook.open(self.path)
        except CodexmaxError as exc:
            log.warning("could not read the notebook again: %s", exc)
            return
        dropped = self.doc.proposals()
        self.doc = doc
        agent.use_notebook(doc, self.runner, self.saver, saver_writes_notebook=False)
        if dropped:
            agent.add_note(
                "The notebook was saved since your last turn and has been read again: your "
                f"{len(dropped)} proposed change(s) that the user did not apply are no longer "
                "in your working copy. Read the notebook before relying on them."
            )

    async def use_live(self, bridge: Bridge, settings: CodexMax, shell: Any) -> None:
        """On the agent's thread: work on the frontend's live notebook from now on; the
        session is saved into its metadata, and the frontend saves the notebook."""
        from ..notebook.live import LiveNotebook
        from ..runners.frontend import FrontendRunner
        from ..session.journal import remember_notebook
        from ..session.store import METADATA_KEY

        live = await LiveNotebook.fetch(bridge.call, Path.cwd())

        async def save(record: dict[str, Any]) -> None:
            record = as_javascript_keeps_it(record)
            if settings.journal and self.path is not None:
                remember_notebook(self.path, record, live.ids)
            self.record = record
            await live.set_metadata(METADATA_KEY, record)
            await live.save()

        runner = FrontendRunner(bridge.call, kernel_name=kernel_name(shell))
        self.agent.use_notebook(live, runner, save)
        self.live = live

    def use_detached(self) -> None:
        """No bridge any more: back to the working copy of the file (read again)."""
        from ..notebook.detached import DetachedNotebook

        if self.path is not None:
            self.doc = DetachedNotebook.open(self.path)
        self.agent.use_notebook(self.doc, self.runner, self.saver, saver_writes_notebook=False)
        self.live = None


def kernel_name(shell: Any) -> str:
    """The kernel's name as a runner reports it (``python3`` for IPython)."""
    kernel = getattr(shell, "kernel", None)
    name = getattr(kernel, "implementation", None)
    return "python3" if name in (None, "ipython") else str(name)


def as_javascript_keeps_it(record: dict[str, Any]) -> dict[str, Any]:
    """The record as it comes back from the frontend's notebook model, signed again: JSON
    in JavaScript has one kind of number, so a whole float (``0.0``) comes back as an int
    (``0``), which would change the record's integrity mark and make this machine's own
    session look like someone else's after a restart."""
    from ..session.integrity import MARK_KEY, is_ours, sign

    def plain(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    if not _has_whole_floats(record) or MARK_KEY not in record or not is_ours(record):
        return record  # nothing to change; only this machine's own marks are made again
    return sign(plain(record))


def _has_whole_floats(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, dict):
        return any(_has_whole_floats(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_whole_floats(v) for v in value)
    return False
