"""The agent inside a kernel: what ``%%agent`` and ``%agent`` drive.

One :class:`KernelHost` per kernel. It finds the notebook (:mod:`.locate`), keeps one
:class:`~.sessions.NotebookSession` (the agent, its working copy of the notebook, the
in-process runner), carries the session across kernel restarts, and renders each operation
in the cell that asked for it (:mod:`.views`, :mod:`.output`). Approvals are
:mod:`.approver`'s; what ``%agent status``, ``history`` and ``proposals`` print is
:mod:`.reports`'.

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
import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import events as ev
from ..agent.approvals import FutureApprover
from ..config import APPROVALS
from ..errors import CodexmaxError
from . import output, reports
from .approver import KernelApprover
from .sessions import NotebookSession
from .threads import AgentLoop, MainThread
from .turnlog import Heading, describe_proposal
from .views import View, make_view

if TYPE_CHECKING:
    from ..config import CodexMax
    from .bridge import Bridge

__all__ = ["KernelHost"]

log = logging.getLogger("jupyter_codexmax.kernel")

#: Seconds between two refreshes of a working panel's clock.
TICK = 1.0

#: Seconds a stop waits for the agent's loop to cancel the turn (it takes well under 1 ms).
STOP_APPLIED = 2.0

#: Seconds a frontend's request waits for a finished background turn's thread to end.
SETTLE_WAIT = 2.0

#: Seconds a second interrupt waits for the agent to stop before the cell gives up on it.
STOP_WAIT = 10.0


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
        #: A stop came while the submitted turn was still being set up.
        self._stop_pending = False
        #: The background turn's (session, future, approval before it), and whether its
        #: TurnFinished was sent: what :meth:`_settle` needs.
        self._ending: tuple[NotebookSession, concurrent.futures.Future[Any], str] | None = None
        self._turn_over = False
        self.bridge = bridge
        if bridge is not None:
            self.attach(bridge)

    # -- the bridge ---------------------------------------------------------------------------

    def attach(self, bridge: Bridge) -> None:
        """Answer the frontend's requests (a sidebar chat's turns, stop, approvals)."""
        from .chat import check_params, session_data

        self.bridge = bridge
        handlers: dict[str, Any] = {
            "agent.session": lambda params: session_data(self),
            "agent.turn": self._bridge_turn,
            "agent.stop": lambda params: {"stopped": self.stop()},
            "agent.approve": lambda params: {
                "result": self.resolve(params.get("request_id"), str(params.get("decision")))
            },
            "agent.status": lambda params: self.status_data(),
        }

        def checked(method: str, handler: Any) -> Any:
            return lambda params: handler(check_params(method, params))

        bridge.handlers = {name: checked(name, h) for name, h in handlers.items()}

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
            current.refresh()  # this kernel's notebook, found before
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
            current.refresh()
            return current
        if current is not None:
            self.close_session()
        self.session = self._new_session(path, how, new)
        return self.session

    def _new_session(self, path: Path | None, how: str, new: bool) -> NotebookSession:
        return NotebookSession.create(
            settings=self.settings,
            shell=self.shell,
            path=path,
            how=how,
            new=new,
            # Cells run on the main thread as user code: an interrupt stops them.
            main_call=functools.partial(self.main.call, interruptible=True),
            interrupt=self.main.interrupt,
            approver=KernelApprover(self),
            on_event=self._event,
            save=self._save,
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
        if isinstance(event, ev.TurnFinished):
            self._turn_over = True  # before the frontend hears of it (see _settle)
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
                output.show(session, final=True)

    def _summary_to_frontend(self, session: NotebookSession) -> None:
        output.summary_to_frontend(session, self.bridge, self.agent_loop.submit)

    async def _save(self, session: NotebookSession, record: dict[str, Any]) -> None:
        """The agent's session saver: this machine's index, then the cell's output."""
        from ..session.journal import remember_notebook

        if self.settings.journal and session.path is not None:
            try:
                remember_notebook(session.path, record, session.doc.ids)
            except OSError as exc:  # the cell's output still gets the session
                log.warning("this machine's copy of the session was not kept: %s", exc)
        session.record = record
        await self.main.call(lambda: output.show(session, final=False))

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
        background = self.bridged and not wait
        view = make_view(
            widgets=(self.widgets() or background) and in_cell,
            title=_heading(self.settings, model, effort),
            interactive=background,
            on_decision=self.resolve,
            on_stop=self.stop,
            silent=not in_cell,
        )
        # The panel shows at once; the notebook and the session are read after it (the
        # first time in a kernel, that imports the agent).
        shown = output.open_panel(view) if in_cell else None
        try:
            session = self.open_session(notebook, new)
        except BaseException:
            if shown is not None:
                output.close_panel(shown)  # the error is the cell's one line
            raise
        agent = session.agent
        if agent.served_model and not view.log.served_model:
            view.log.served_model = agent.served_model  # known from the stored session
            view.refresh()
        if in_cell:
            output.begin(session, view, shown)
        else:
            session.view = view
        if session.resumed is not None and session.resumed.turns == agent.turns:
            view.note(
                f"continuing session {agent.session_id[:8]} (turn {agent.turns + 1}; the "
                "kernel's variables from before are gone)"
            )
            if agent.foreign:
                view.note(
                    "continuing a session from another machine or person (not verified: its "
                    "history goes to the model as quoted text, not instructions)"
                )
            if agent.reapplied:
                view.note(agent.reapplied)
        if not background and in_cell:
            self._check_saved(session, view)
        if session.path is None:
            view.note(f"{session.how}: the agent works on a scratch notebook")
        previous = agent.approval
        agent.set_approval(approval or self.settings.approval)
        session.cell_id = self.cell_id() if in_cell else None
        session.in_background = background
        self._stop_pending = False
        if background:
            self.background = True
            self._turn_over = False
            future = self.agent_loop.submit(
                self._turn(session, message, model=model, effort=effort, live=True)
            )
            self._running = future
            self._tick(view, future)

            def finished(done: concurrent.futures.Future[Any]) -> None:
                self.main.post(lambda: self._background_done(session, done, previous))

            future.add_done_callback(finished)
            self._ending = (session, future, previous)
            return
        try:
            with self.main.hold():  # the first events are served here, not after the cell
                future = self.agent_loop.submit(
                    self._turn(session, message, model=model, effort=effort, live=False)
                )
                self._tick(view, future)
                self._serve(future, session)
        finally:
            agent.set_approval(previous)
        if session.view is not None:
            session.turns.append(session.view.log)

    def _check_saved(self, session: NotebookSession, view: View) -> None:
        """Without a bridge the agent reads the notebook as saved: when the cell running
        ``%%agent`` is not in that file, what is on screen was not saved. Said to the user,
        and to the model (what it reads is older than what the user sees)."""
        cell_id, doc = self.cell_id(), session.doc
        if cell_id is None or not doc.exists or not doc.has_own_ids or cell_id in doc.ids:
            return
        name = doc.path.name
        view.note(
            f"this cell is not in {name} as saved: the agent reads the saved file, so your "
            "latest changes are not in what it sees; save the notebook (Ctrl+S) and run the "
            "cell again to include them"
        )
        if session.agent.busy:
            return
        session.agent.add_note(
            f"The user's notebook has unsaved changes: the cell they ran %%agent from is not "
            f"in {name} as saved, which is what you read and edit (as proposals). Cells they "
            "added or changed since their last save are not in it; if the task needs them, "
            "ask the user to save the notebook and run %%agent again."
        )

    def _tick(self, view: View, until: concurrent.futures.Future[Any]) -> None:
        """Refresh the panel's clock every second until ``until`` is done: it tells wall
        time through stalls and approval waits, when no event comes."""
        main = self.main

        async def tick() -> None:
            while not until.done():
                await asyncio.sleep(TICK)
                if not until.done():
                    main.post(view.refresh)

        self.agent_loop.submit(tick())

    def refuse_if_working(self) -> None:
        """A turn (or operation) is running: nothing else may start or switch the session.
        A background turn that has just finished is settled first (:meth:`_settle`)."""
        self._settle()
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
                assert self.bridge is not None
                await session.use_live(self.bridge, self.settings, self.shell)
            elif session.live is not None:
                session.use_detached()
        except CodexmaxError as exc:
            # The turn could not start (the frontend did not give the notebook): said like
            # any failed turn, in the panel, the summary and to the frontend.
            turn = agent.turns + 1
            text = agent.redact(f"could not start: {exc}")
            agent.emit(ev.TurnStarted(turn, message))
            agent.emit(ev.ErrorEvent(text))
            agent.emit(ev.TurnFinished(turn, "failed", error=text))
            raise
        if self._stop_pending:
            # Stopped while the turn was being set up (reading the notebook on screen takes
            # a moment): it ends as it starts, said like any stopped turn. No await between
            # this check and the turn's start, so a stop is either this or the agent's.
            self._stop_pending = False
            from ..agent.core import TurnResult

            turn = agent.turns + 1
            agent.emit(ev.TurnStarted(turn, message))
            agent.emit(ev.TurnFinished(turn, "stopped"))
            return TurnResult("stopped")
        return await agent.run_turn(message, model=model, effort=effort)

    def _background_done(
        self, session: NotebookSession, future: concurrent.futures.Future[Any], previous: str
    ) -> None:
        if self._running is not future and self._running is not None:
            return  # handled already (by _settle), and another turn runs
        if not self.background:
            return  # handled already
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

    def _settle(self) -> None:
        """A background turn that has finished (the frontend heard its ``TurnFinished``)
        but whose end this thread has not handled yet: handled now, so a request sent on
        hearing it (the sidebar's next message) is not refused as "working". Its thread
        finishes within milliseconds of the event; a turn still running is left alone."""
        ending = self._ending
        if not self.background or not self._turn_over or ending is None:
            return
        session, future, previous = ending
        try:
            future.exception(timeout=SETTLE_WAIT)
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
            return
        self._background_done(session, future, previous)

    def cell_id(self) -> str | None:
        """The id of the cell being run, as the frontend sent it (JupyterLab does)."""
        header = getattr(self.shell, "parent_header", None) or {}
        value = (header.get("metadata") or {}).get("cellId")
        return value if isinstance(value, str) and value else None

    def _bridge_turn(self, params: dict[str, Any]) -> dict[str, Any]:
        """``agent.turn`` from the frontend (a sidebar chat): a turn in the background,
        continuing the notebook's session (params checked by :func:`.chat.check_params`)."""
        from .chat import BUSY

        if not self.bridged:
            raise CodexmaxError("no frontend holds the notebook")
        try:
            self.refuse_if_working()
        except CodexmaxError:
            raise CodexmaxError(BUSY) from None
        self.run_turn(
            str(params["message"]).strip(),
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
                    view.note("stopping (interrupt again to stop waiting)", transient=True)
                return True
            if view is not None:
                view.note("stopped waiting; the agent is still stopping", transient=True)
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
            session.use_detached()  # the frontend went away: back to the working copy
        make = agent.compact if name == "compact" else agent.undo
        if session.live is not None:
            return self._background_operation(session, name, make)
        view = make_view(widgets=False, title=name, interactive=False)
        view.log.label = name
        output.begin(session, view)
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
        output.show(session, final=True)
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
        """Stop the running turn. Returns once the agent's task is cancelled (no more of its
        answer comes; the turn then saves its session and ends with ``TurnFinished``), so a
        frontend can say "stopped" at once."""
        session = self.session
        running = self._running is not None and not self._running.done()
        if session is None or not (session.agent.busy or running):
            return False
        agent = session.agent

        async def stop_now() -> bool:
            # On the agent's loop, so it is ordered with the turn's start (_turn).
            if agent.busy:
                return agent.stop()
            self._stop_pending = True  # the turn is being set up: it ends as it starts
            return True

        try:
            self.agent_loop.submit(stop_now()).result(timeout=STOP_APPLIED)
        except concurrent.futures.TimeoutError:
            log.debug("the agent's loop did not take the stop within %s s", STOP_APPLIED)
        return True

    def current(self) -> NotebookSession | None:
        """The session, opening the notebook's stored one (after a restart) if there is a
        notebook to find."""
        if self.session is not None:
            return self.session
        if self._bridge_notebook():
            return self.open_session()  # the notebook the frontend holds
        from .locate import locate_notebook

        path, _ = locate_notebook(self.shell, None, self.cell_source())
        return self.open_session() if path is not None else None

    def status(self) -> str:
        session = self.current()
        if session is None:
            return "no session yet: %%agent starts one"
        return reports.status_text(session, self.settings, self.bridge)

    def status_data(self) -> dict[str, Any]:
        """The status for a frontend (``agent.status``)."""
        return reports.status_data(self.current(), self.settings, self.background)

    def history(self) -> str:
        session = self.current()
        return "no session yet" if session is None else reports.history_text(session)

    def proposals(self) -> str:
        session = self.current()
        return "no session yet" if session is None else reports.proposals_text(session)

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
        then = (
            "move it where it belongs"
            if proposal.action == "insert"
            else f"it replaces cell {proposal.cell_id}: delete the old one"
        )
        return f"proposal {number} ({describe_proposal(proposal)}) is in a new cell below; {then}"

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


def _heading(settings: CodexMax, model: str | None, effort: str | None) -> Heading:
    from urllib.parse import urlsplit

    from ..config import DEFAULT_BASE_URL

    endpoint = None
    if settings.base_url != DEFAULT_BASE_URL:
        endpoint = urlsplit(settings.base_url).netloc or settings.base_url
    return Heading(model or settings.model, effort or settings.reasoning_effort, endpoint)
