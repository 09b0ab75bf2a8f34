"""The agent inside a kernel: what ``%%agent`` and ``%agent`` drive.

One :class:`KernelHost` per kernel. It finds the notebook (:mod:`.locate`), keeps one
:class:`NotebookSession` (the agent, its working copy of the notebook, the in-process
runner), carries the session across kernel restarts, and renders each operation in the
cell that asked for it (:mod:`.views`).

**Threads** (:mod:`.threads`): the agent lives on its own thread; user code, ``input()``
and displays happen on the kernel's main thread. Without a bridge (or with ``--wait``),
``%%agent`` runs the turn to completion inside the cell, serving the agent's requests; an
interrupt stops the agent. With a bridge (:mod:`.bridge`) the turn runs in the background on
the frontend's live notebook, and the cell returns at once.

**Never writing the notebook.** Without the bridge a kernel cannot know whether a
frontend holds its notebook, so it never writes the notebook's file: edits go to a working
copy (:class:`~jupyter_codexmax.notebook.detached.DetachedNotebook`) and are shown as
proposals; cells run here, in this kernel. The session is kept where the notebook's owner
will save it, in the ``%%agent`` cell's own output (mimetype
:data:`~jupyter_codexmax.session.store.OUTPUT_MIME`), and on this machine (the journal,
and an index from the notebook to its latest record). After a restart the newest of the
notebook's stored records (its metadata, its ``%%agent`` outputs) and this machine's is
continued.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..agent import events as ev
from ..agent.approvals import ApprovalRequest, Decision, FutureApprover
from ..config import APPROVALS
from ..errors import CodexmaxError
from .threads import AgentLoop, Interrupted, MainThread
from .turnlog import TurnLog, describe_proposal, format_tokens
from .views import View, make_view

if TYPE_CHECKING:
    from ..agent.core import Agent
    from ..config import CodexMax
    from ..notebook.detached import DetachedNotebook
    from ..notebook.live import LiveNotebook
    from ..session.store import SessionRecord
    from .bridge import Bridge

__all__ = ["KernelHost"]

log = logging.getLogger("jupyter_codexmax.kernel")

#: Seconds a second interrupt waits for the agent to stop before the cell gives up on it.
STOP_WAIT = 10.0


class KernelApprover(FutureApprover):
    """Approvals in a kernel: asked in the input prompt while the turn runs in the cell (a
    click cannot reach a kernel that is busy), refused when no input is possible (nbclient,
    papermill); in a turn running in the background, answered by the panel's buttons."""

    def __init__(self, host: KernelHost) -> None:
        super().__init__()
        self.host = host
        self.reason = "the user denied it"

    async def __call__(self, request: ApprovalRequest) -> Decision:
        host = self.host
        if host.background:
            self.reason = "the user denied it"
            return await super().__call__(request)
        if not host.main.serving or not host.stdin_allowed():
            self.reason = (
                "nobody can answer an approval prompt in this run (no input: nbclient or "
                "papermill); use %%agent --approval auto to allow it"
            )
            return "refused"
        self.reason = "the user denied it"
        try:
            return await host.main.call(lambda: ask_in_prompt(request))
        except Interrupted:
            self.reason = "the user interrupted the kernel"
            return "deny"


def ask_in_prompt(request: ApprovalRequest) -> Decision:
    """``input()`` on the main thread: y(es), n(o), a(lways, for this session)."""
    if request.detail:
        print(request.detail[:2_000], flush=True)
    while True:
        answer = (
            input(f"Allow {request.summary}? [y]es / [n]o / [a]lways this session: ")
            .strip()
            .lower()
        )
        if answer in ("y", "yes"):
            return "approve"
        if answer in ("n", "no", ""):
            return "deny"
        if answer in ("a", "always"):
            return "approve_session"


class NotebookSession:
    """The agent for one notebook in this kernel."""

    def __init__(
        self,
        host: KernelHost,
        *,
        path: Path | None,
        how: str,
        doc: DetachedNotebook,
        agent: Agent,
        resumed: SessionRecord | None,
    ) -> None:
        self.host = host
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
        #: The working copy's runner and session saver (to go back to without a bridge).
        self.runner: Any = None
        self.saver: Any = None


class KernelHost:
    """The agent's host in one kernel (created by ``%load_ext jupyter_codexmax``)."""

    def __init__(
        self,
        shell: Any,
        settings: CodexMax,
        *,
        panel: str = "auto",
        main: MainThread | None = None,
        bridge: Bridge | None = None,
    ) -> None:
        self.shell = shell
        self.settings = settings
        self.panel = panel
        if main is None:
            try:
                kernel_loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                kernel_loop = None
            main = MainThread(kernel_loop)
        self.main = main
        self._agent_loop: AgentLoop | None = None
        self.session: NotebookSession | None = None
        self.background = False
        self._running: concurrent.futures.Future[Any] | None = None
        self.bridge = bridge
        if bridge is not None:
            self.attach(bridge)

    # -- the bridge ---------------------------------------------------------------------------

    def attach(self, bridge: Bridge) -> None:
        """Answer the frontend's requests (a sidebar chat's turns, stop, approvals)."""
        self.bridge = bridge
        bridge.handlers = {
            "agent.turn": self._bridge_turn,
            "agent.stop": lambda params: {"stopped": self.stop()},
            "agent.approve": lambda params: {
                "result": self.resolve(params.get("request_id"), str(params.get("decision")))
            },
            "agent.status": lambda params: self.status_data(),
        }

    @property
    def bridged(self) -> bool:
        return self.bridge is not None and self.bridge.present

    def _bridge_notebook(self) -> str | None:
        """The notebook's path as the frontend says (it knows about renames)."""
        if not self.bridged or self.bridge is None:
            return None
        notebook = self.bridge.peer.get("notebook") or {}
        local = notebook.get("local_path")
        if isinstance(local, str) and local:
            return local
        name = notebook.get("path")
        return Path(name).name if isinstance(name, str) and name else None

    @property
    def agent_loop(self) -> AgentLoop:
        if self._agent_loop is None:
            self._agent_loop = AgentLoop()
        return self._agent_loop

    # -- the kernel ---------------------------------------------------------------------------

    def stdin_allowed(self) -> bool:
        """Whether ``input()`` can reach a person (not in nbclient or papermill runs)."""
        kernel = getattr(self.shell, "kernel", None)
        if kernel is None:
            return True  # terminal IPython
        return bool(getattr(kernel, "_allow_stdin", False))

    def widgets(self) -> bool:
        if self.panel != "auto":
            return self.panel == "widgets"
        if getattr(self.shell, "kernel", None) is None or not self.stdin_allowed():
            return False  # terminal IPython; or nobody watching (nbclient, papermill)
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            return False
        return True

    def cell_source(self) -> str | None:
        header = getattr(self.shell, "parent_header", None) or {}
        code = (header.get("content") or {}).get("code")
        return code if isinstance(code, str) else None

    # -- the session --------------------------------------------------------------------------

    def open_session(self, notebook: str | None = None, new: bool = False) -> NotebookSession:
        """The session for this kernel's notebook (found again after a restart), or a new
        one. :class:`~jupyter_codexmax.session.store.SessionError` for a damaged record."""
        from .locate import locate_notebook

        current = self.session
        if current is not None and notebook is None and not new:
            self._refresh(current)  # this kernel's notebook, found before
            return current
        if current is not None:
            self.refuse_if_working()  # a new session, or another notebook
        if current is not None and notebook is None:
            path, how = current.path, current.how
        elif notebook is None and self._bridge_notebook():
            path, how = locate_notebook(self.shell, self._bridge_notebook(), None)
            how = "the frontend (bridge)"
        else:
            path, how = locate_notebook(self.shell, notebook, self.cell_source())
        if current is not None and current.path == path and not new:
            self._refresh(current)
            return current
        if current is not None:
            self.close_session()
        self.session = self._new_session(path, how, new)
        return self.session

    def _new_session(self, path: Path | None, how: str, new: bool) -> NotebookSession:
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
            local = recall_notebook(path) if self.settings.journal else None
            extra = [("this machine's journal", local)] if local is not None else []
            record = latest_record(doc.nb, str(path), extra)
        workspace = Workspace.for_notebook(doc.path, self.settings.workspace_root or None)
        holder: dict[str, NotebookSession] = {}

        def stop_agent() -> None:  # the session exists by the time a cell runs
            holder["session"].agent.stop()

        runner = InProcessRunner(
            self.shell,
            self.main.call,
            self.main.interrupt,
            on_user_interrupt=stop_agent,
            kernel_name=_kernel_name(self.shell),
        )

        async def save(data: dict[str, Any]) -> None:
            await self._save(holder["session"], data)

        agent = Agent(
            self.settings,
            workspace=workspace,
            notebook=doc,
            runner=runner,
            approver=KernelApprover(self),
            on_event=lambda event: self._event(holder["session"], event),
            resume=record,
            save_session=save,
        )
        agent.saver_writes_notebook = False  # the cell's output and this machine only
        session = NotebookSession(self, path=path, how=how, doc=doc, agent=agent, resumed=record)
        session.runner = runner
        session.saver = save
        holder["session"] = session
        return session

    def _refresh(self, session: NotebookSession) -> None:
        """The notebook was saved since the agent read it: read it again. Only the working
        copy, between turns (a live notebook is the frontend's, read at each turn). Its
        unapplied proposals are dropped (they stay listed in their turn's output), and so is
        what undo remembered of the old copy; the model is told."""
        from ..notebook.detached import DetachedNotebook

        agent = session.agent
        if session.live is not None or agent.busy or session.path is None:
            return
        if not session.doc.changed_on_disk():
            return
        try:
            doc = DetachedNotebook.open(session.path)
        except CodexmaxError as exc:
            log.warning("could not read the notebook again: %s", exc)
            return
        dropped = session.doc.proposals()
        session.doc = doc
        agent.use_notebook(doc, session.runner, session.saver, saver_writes_notebook=False)
        if dropped:
            agent.add_note(
                "The notebook was saved since your last turn and has been read again: your "
                f"{len(dropped)} proposed change(s) that the user did not apply are no longer "
                "in your working copy. Read the notebook before relying on them."
            )

    def close_session(self) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        future = self.agent_loop.submit(session.agent.aclose())
        try:
            future.result(timeout=10)
        except Exception as exc:  # closing: nothing more to do about it
            log.debug("closing the agent: %s", exc)

    # -- events and saving ----------------------------------------------------------------------

    def _event(self, session: NotebookSession, event: ev.Event) -> None:
        """On the agent's thread: hand the event to the main thread's renderer, and to the
        frontend (a sidebar shows them)."""
        self.main.post(lambda: self._render(session, event))
        if self.bridged and self.bridge is not None:
            self.bridge.notify("event", event=ev.to_json(event))

    def _render(self, session: NotebookSession, event: ev.Event) -> None:
        view = session.view
        if view is None:
            return
        view.handle(event)
        if isinstance(event, ev.TurnFinished):
            if session.in_background:
                self._summary_to_frontend(session)
            else:
                self._show(session, final=True)

    def _summary_to_frontend(self, session: NotebookSession) -> None:
        """A background turn's summary replaces its panel in the ``%%agent`` cell, through
        the frontend (the cell's execution is long over: only the frontend can change its
        outputs now). Also when the turn could not get the notebook: the bridge itself
        works."""
        view, cell_id, bridge = session.view, session.cell_id, self.bridge
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
                    await bridge.call("notebook.edit", ops=[
                        {"op": "set_outputs", "id": cell_id, "outputs": [output]}
                    ])  # fmt: skip
            except CodexmaxError as exc:
                log.warning("the summary could not be written: %s", exc)

        self.agent_loop.submit(write())

    async def _save(self, session: NotebookSession, record: dict[str, Any]) -> None:
        """The agent's session saver: this machine's index, then the cell's output."""
        from ..session.journal import remember_notebook

        if self.settings.journal and session.path is not None:
            remember_notebook(session.path, record)
        session.record = record
        await self.main.call(lambda: self._show(session, final=False))

    def _begin(self, session: NotebookSession, view: View) -> None:
        """A new operation's output: the live panel now (widgets), the summary later."""
        session.view = view
        session.in_background = False
        session.display_id = f"codexmax-{uuid.uuid4().hex[:12]}"
        session.bundle = {}
        bundle = view.mimebundle()
        if bundle:
            from IPython.display import display

            bundle = {**bundle, "text/plain": f"jupyter-codexmax: {view.log.activity}"}
            display(bundle, raw=True, display_id=session.display_id)
            session.bundle = bundle

    def _show(self, session: NotebookSession, *, final: bool) -> None:
        """The operation's output as it now stands: at the end, the static summary (with the
        record) replaces the live panel, which could not be shown again from a saved
        notebook."""
        from IPython.display import display, update_display

        from ..session.store import OUTPUT_MIME

        view = session.view
        if view is None or session.display_id is None:
            return
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

    # -- operations ---------------------------------------------------------------------------

    def run_turn(
        self,
        message: str,
        *,
        notebook: str | None = None,
        new: bool = False,
        model: str | None = None,
        effort: str | None = None,
        approval: str | None = None,
        wait: bool = False,
        in_cell: bool = True,
    ) -> None:
        """``%%agent``: one turn. With a bridge (and not ``wait``) it runs in the background
        on the frontend's live notebook and the cell returns at once; otherwise it runs to
        completion inside the cell, on the kernel's working copy."""
        if approval is not None and approval not in APPROVALS:
            raise CodexmaxError(f"approval must be one of {', '.join(APPROVALS)}")
        self.refuse_if_working()
        session = self.open_session(notebook, new)
        agent = session.agent
        background = self.bridged and not wait
        view = make_view(
            widgets=(self.widgets() or background) and in_cell,
            title=_title(self.settings, model, effort),
            interactive=background,
            on_decision=self.resolve,
            on_stop=self.stop,
            silent=not in_cell,
        )
        if in_cell:
            self._begin(session, view)
        else:
            session.view = view
        if session.resumed is not None and session.resumed.turns == agent.turns:
            view.note(
                f"continuing session {agent.session_id[:8]} (turn {agent.turns + 1}; the "
                "kernel's variables from before are gone)"
            )
        if session.path is None:
            view.note(f"{session.how}: the agent works on a scratch notebook")
        previous = agent.approval
        agent.set_approval(approval or self.settings.approval)
        session.cell_id = self.cell_id() if in_cell else None
        session.in_background = background
        if background:
            self.background = True
            future = self.agent_loop.submit(
                self._turn(session, message, model=model, effort=effort, live=True)
            )
            self._running = future

            def finished(done: concurrent.futures.Future[Any]) -> None:
                self.main.post(lambda: self._background_done(session, done, previous))

            future.add_done_callback(finished)
            return
        try:
            with self.main.hold():  # the first events are served here, not after the cell
                future = self.agent_loop.submit(
                    self._turn(session, message, model=model, effort=effort, live=False)
                )
                self._serve(future, session)
        finally:
            agent.set_approval(previous)
        if session.view is not None:
            session.turns.append(session.view.log)

    def refuse_if_working(self) -> None:
        """A turn (or operation) is running: nothing else may start or switch the session."""
        running = self._running is not None and not self._running.done()
        if self.background or running or (self.session is not None and self.session.agent.busy):
            raise CodexmaxError(
                "the agent is working on a turn (wait for it, or %agent stop stops it)"
            )

    async def _turn(
        self,
        session: NotebookSession,
        message: str,
        *,
        model: str | None,
        effort: str | None,
        live: bool,
    ) -> Any:
        """On the agent's thread: the right document for this turn, then the turn."""
        agent = session.agent
        try:
            if live:
                await self._use_live(session)
            elif session.live is not None:
                self._use_detached(session)
        except CodexmaxError as exc:
            # The turn could not start (the frontend did not give the notebook): said like
            # any failed turn, in the panel, the summary and to the frontend.
            turn = agent.turns + 1
            text = agent.redact(f"could not start: {exc}")
            agent.emit(ev.TurnStarted(turn, message))
            agent.emit(ev.ErrorEvent(text))
            agent.emit(ev.TurnFinished(turn, "failed", error=text))
            raise
        return await agent.run_turn(message, model=model, effort=effort)

    async def _use_live(self, session: NotebookSession) -> None:
        from ..notebook.live import LiveNotebook
        from ..runners.frontend import FrontendRunner
        from ..session.journal import remember_notebook
        from ..session.store import METADATA_KEY

        assert self.bridge is not None
        live = await LiveNotebook.fetch(self.bridge.call, Path.cwd())

        async def save(record: dict[str, Any]) -> None:
            if self.settings.journal and session.path is not None:
                remember_notebook(session.path, record)
            session.record = record
            await live.set_metadata(METADATA_KEY, record)
            await live.save()

        runner = FrontendRunner(self.bridge.call, kernel_name=_kernel_name(self.shell))
        session.agent.use_notebook(live, runner, save)
        session.live = live

    def _use_detached(self, session: NotebookSession) -> None:
        """No bridge any more: back to the working copy of the file (read again)."""
        from ..notebook.detached import DetachedNotebook

        if session.path is not None:
            session.doc = DetachedNotebook.open(session.path)
        session.agent.use_notebook(
            session.doc, session.runner, session.saver, saver_writes_notebook=False
        )
        session.live = None

    def _background_done(
        self, session: NotebookSession, future: concurrent.futures.Future[Any], previous: str
    ) -> None:
        self.background = False
        self._running = None
        session.agent.set_approval(previous)
        if session.view is not None:
            session.turns.append(session.view.log)
        exc = future.exception()
        if exc is not None:
            log.warning("the background turn failed: %s", exc)
            if session.view is not None:
                session.view.note(f"error: {exc}")

    def cell_id(self) -> str | None:
        """The id of the cell being run, as the frontend sent it (JupyterLab does)."""
        header = getattr(self.shell, "parent_header", None) or {}
        value = (header.get("metadata") or {}).get("cellId")
        return value if isinstance(value, str) and value else None

    def _bridge_turn(self, params: dict[str, Any]) -> dict[str, Any]:
        """``agent.turn`` from the frontend (a sidebar chat): a turn in the background."""
        message = str(params.get("message") or "").strip()
        if not message:
            raise CodexmaxError("agent.turn needs a message")
        if self.background:
            raise CodexmaxError("the agent is working on a turn")
        self.run_turn(
            message,
            model=params.get("model"),
            effort=params.get("effort"),
            approval=params.get("approval"),
            in_cell=False,
        )
        session = self.session
        assert session is not None
        return {"session_id": session.agent.session_id, "turn": session.agent.turns + 1}

    def _serve(
        self,
        future: concurrent.futures.Future[Any],
        session: NotebookSession,
        *,
        cancel: bool = False,
    ) -> None:
        """Serve the agent's requests until ``future`` is done. The first interrupt stops the
        agent (``cancel``: cancels the operation), a second one stops waiting for it (after
        serving a little longer, so the agent can finish stopping)."""
        interrupts = 0

        def on_interrupt() -> bool:
            nonlocal interrupts
            interrupts += 1
            view = session.view
            if interrupts == 1:
                if cancel:
                    future.cancel()
                else:
                    self.agent_loop.call(session.agent.stop)
                if view is not None:
                    view.note("stopping (interrupt again to stop waiting)")
                return True
            if view is not None:
                view.note("stopped waiting; the agent is still stopping")
            return False

        self._running = future
        try:
            if not self.main.serve(future, on_interrupt, give_up_after=STOP_WAIT):
                return
            if future.cancelled():
                raise CodexmaxError("stopped")
            exc = future.exception()
            if exc is not None:
                raise exc
        finally:
            self._running = None

    def operation(self, name: str) -> str:
        """``%agent compact`` or ``%agent undo``, shown in the cell like a turn. On the live
        notebook (a bridge) it runs in the background, as turns do: it needs the frontend's
        answers, which a busy kernel could not read."""
        self.refuse_if_working()
        session = self.open_session()
        agent = session.agent
        if session.live is not None and not self.bridged:
            self._use_detached(session)  # the frontend went away: back to the working copy
        make = agent.compact if name == "compact" else agent.undo
        if session.live is not None:
            return self._background_operation(session, name, make)
        view = make_view(widgets=False, title=name, interactive=False)
        view.log.label = name
        self._begin(session, view)
        with self.main.hold():
            future = self.agent_loop.submit(make())
            try:
                self._serve(future, session, cancel=True)
                result = str(future.result())
                view.log.status = "done"
            except CodexmaxError as exc:
                result = str(exc)
                view.log.status = "failed"
                view.log.error = result
        view.log.turn = agent.turns
        view.log.answer = result
        view.log.finished = view.log.started
        self._show(session, final=True)
        if view.log.status == "failed":
            raise CodexmaxError(result)
        return result

    def _background_operation(self, session: NotebookSession, name: str, make: Any) -> str:
        from .views import LogView

        view = LogView()
        view.log.label = name
        session.view = view
        session.cell_id = self.cell_id()
        session.in_background = True
        self.background = True
        future = self.agent_loop.submit(make())
        self._running = future

        def finished(done: concurrent.futures.Future[Any]) -> None:
            def report() -> None:
                self.background = False
                self._running = None
                try:
                    view.log.answer = str(done.result())
                    view.log.status = "done"
                except BaseException as exc:  # an error, or cancelled
                    view.log.status = "failed"
                    view.log.error = str(exc) or type(exc).__name__
                view.log.turn = session.agent.turns
                view.log.finished = view.log.started
                if self.bridge is not None:
                    self.bridge.notify(
                        "event", event=ev.to_json(ev.Notice(f"{name}: {view.log.plain()}"))
                    )
                self._summary_to_frontend(session)

            self.main.post(report)

        future.add_done_callback(finished)
        return f"{name}: working in the background; its result replaces this output"

    def stop(self) -> bool:
        session = self.session
        if session is None or not session.agent.busy:
            return False
        self.agent_loop.call(session.agent.stop)
        return True

    def current(self) -> NotebookSession | None:
        """The session, opening the notebook's stored one (after a restart) if there is a
        notebook to find."""
        if self.session is not None:
            return self.session
        from .locate import locate_notebook

        path, _ = locate_notebook(self.shell, None, self.cell_source())
        return self.open_session() if path is not None else None

    def status(self) -> str:
        from ..agent.accounting import price_for

        session = self.current()
        settings = self.settings
        if session is None:
            return "no session yet: %%agent starts one"
        agent = session.agent
        window = agent.meter.window
        used = agent.context_tokens()
        usage = agent.usage_total
        cost = (
            f"about ${agent.cost:.2f}"
            if price_for(settings.model, settings.prices) is not None
            else "cost unknown (no price for this model: c.CodexMax.prices)"
        )
        if self.bridged and self.bridge is not None:
            client = self.bridge.peer.get("client") or "a frontend"
            where = f"{session.path}, live in {client} (bridge): edits and runs go there"
        elif session.path:
            where = f"{session.path} (found by {session.how}; not written: edits are proposals)"
        else:
            where = f"none: {session.how}"
        lines = [
            f"session {agent.session_id} · turn {agent.turns} · "
            f"{'working' if agent.busy else 'idle'}",
            f"notebook: {where}",
            f"model: {settings.model} ({settings.provider}), effort "
            f"{settings.reasoning_effort or 'default'}, approval {settings.approval}",
            f"context: {format_tokens(used)} of {format_tokens(window)} tokens "
            f"({used / window:.0%}; {format_tokens(max(0, window - used))} left; "
            f"compaction at {settings.compaction_threshold:.0%}); "
            f"{agent.compactions} compaction{'s' if agent.compactions != 1 else ''}",
            f"usage: {usage.input_tokens:,} in ({usage.cached_input_tokens:,} cached), "
            f"{usage.output_tokens:,} out ({usage.reasoning_tokens:,} reasoning); {cost}",
        ]
        proposals = session.doc.proposals() if session.live is None else []
        if proposals:
            lines.append(
                f"proposed changes not applied: {len(proposals)} (%agent proposals lists them)"
            )
        return "\n".join(lines)

    def status_data(self) -> dict[str, Any]:
        """The status for a frontend (``agent.status``)."""
        session = self.current()
        settings = self.settings
        data: dict[str, Any] = {
            "model": settings.model,
            "effort": settings.reasoning_effort,
            "approval": settings.approval,
            "busy": self.background,
        }
        if session is None:
            return {**data, "session_id": None}
        agent = session.agent
        usage = agent.usage_total
        return {
            **data,
            "session_id": agent.session_id,
            "turns": agent.turns,
            "busy": agent.busy,
            "context_tokens": agent.context_tokens(),
            "context_window": agent.meter.window,
            "compactions": agent.compactions,
            "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
            "cost_usd": round(agent.cost, 6),
            "pending_approvals": list(getattr(agent.approver, "pending", [])),
        }

    def history(self) -> str:
        session = self.current()
        if session is None:
            return "no session yet"
        lines = []
        if session.resumed is not None:
            lines.append(
                f"(turns 1-{session.resumed.turns} ran before this kernel started; the "
                "ledger below covers them)"
            )
        for log_ in session.turns:
            task = " ".join(log_.task.split())
            lines.append(f"turn {log_.turn}: {task[:100]} -> {log_.status}, {log_.steps} steps")
            for record in log_.calls:
                lines.append(f"  {record.title}")
        lines.append(session.agent.ledger.render())
        return "\n".join(lines)

    def proposals(self) -> str:
        session = self.current()
        if session is None:
            return "no session yet"
        found = session.doc.proposals()
        if not found:
            return "no proposed changes"
        blocks = []
        for number, proposal in enumerate(found, 1):
            blocks.append(f"{number}. {describe_proposal(proposal)}")
            blocks.append(proposal.diff or proposal.source)
        return "\n".join(blocks)

    def apply(self, number: int) -> str:
        """Put proposal ``number`` into a new cell below (``set_next_input``)."""
        session = self.session
        found = session.doc.proposals() if session else []
        if not 1 <= number <= len(found):
            raise CodexmaxError(f"no proposal {number} (there are {len(found)})")
        proposal = found[number - 1]
        if proposal.action == "delete":
            return f"proposal {number} deletes a cell: delete cell {proposal.cell_id} yourself"
        if proposal.cell_type != "code":
            return (
                f"proposal {number} is a {proposal.cell_type} cell; a new cell below would be "
                f"code: copy it from %agent proposals\n\n{proposal.source}"
            )
        self.shell.set_next_input(proposal.source, replace=False)
        return (
            f"proposal {number} ({describe_proposal(proposal)}) is in a new cell below; "
            "replace the old cell with it"
        )

    def resolve(self, request_id: str | None, decision: str) -> str:
        if decision not in ("approve", "approve_session", "deny"):
            raise CodexmaxError(
                f"decision must be approve, approve_session or deny, not {decision!r}"
            )
        session = self.session
        if session is None:
            return "no session"
        approver = session.agent.approver
        pending = approver.pending if isinstance(approver, FutureApprover) else []
        target = request_id or (pending[0] if len(pending) == 1 else None)
        if target is None:
            return "no approval is waiting" if not pending else f"which one: {', '.join(pending)}"
        if target not in pending:
            raise CodexmaxError(f"no approval {target} is waiting")
        self.agent_loop.call(session.agent.resolve_approval, target, decision)
        return f"{decision}: {target}"


def _kernel_name(shell: Any) -> str:
    kernel = getattr(shell, "kernel", None)
    name = getattr(kernel, "implementation", None)
    return "python3" if name in (None, "ipython") else str(name)


def _title(settings: CodexMax, model: str | None, effort: str | None) -> str:
    effort = effort or settings.reasoning_effort
    return f"jupyter-codexmax · {model or settings.model}" + (f" · {effort}" if effort else "")
