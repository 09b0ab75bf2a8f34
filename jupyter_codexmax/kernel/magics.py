"""``%%agent`` and ``%agent``: thin magics, as IPython's own; the work is the host's.

Registered by ``%load_ext jupyter_codexmax`` (or ``c.InteractiveShellApp.extensions``, or
lazily with ``c.MagicsManager.lazy_magics = {"agent": "jupyter_codexmax"}``). Loading
imports nothing heavy: the agent, the model client and the widgets are imported by the first
``%%agent``.

Settings are :class:`~jupyter_codexmax.config.CodexMax` traits on an instance created with
``parent=shell``: ``c.CodexMax.model = ...`` in an IPython config file and
``%config CodexMax.model = ...`` both reach it. How the magics show their work is
``AgentMagics.panel`` (``%config AgentMagics.panel = "text"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Enum

from ..config import APPROVALS
from ..models import EFFORTS

if TYPE_CHECKING:
    from ..config import CodexMax
    from .bridge import Bridge
    from .host import KernelHost
    from .threads import MainThread

__all__ = ["AgentMagics"]


HELP = """jupyter-codexmax: a coding agent in this notebook.

%%agent [--effort E] [--model M] [--approval A] [--new] [--wait] [--notebook PATH]
<the task, on the lines below>
    Give the agent a task. It reads the notebook, edits it, runs code in this kernel, and
    continues the notebook's session (--new starts a new one). In JupyterLab with the
    jupyter-codexmax extension it works live on the notebook on screen; elsewhere it reads
    the notebook as last saved and its edits are proposals (%agent proposals, apply).
    --effort: none, minimal, low, medium, high, xhigh. --approval: read-only, ask, auto.
    --notebook: the notebook's path, where the kernel cannot tell (nbclient, papermill).
    --wait: the cell waits for the turn to end. With the JupyterLab extension a turn
    otherwise runs in the background, on the open notebook, and the cell returns at once.
    Interrupt the kernel to stop a turn in the cell.

%agent status       the session, model and effort, context used and left, usage and cost
%agent history      what the agent did
%agent proposals    the edits it proposed that are not applied
%agent apply N      put proposal N into a new cell below
%agent compact      compact the session's context now
%agent undo         take back the last turn's edits (and file changes)
%agent review [--base REF] [--focus TEXT]
                    review this notebook (as saved), read-only: findings by cell and a
                    verdict; --base: only the cells changed since a git commit
%agent new          start a new session
%agent stop         stop a turn running in the background
%agent approve [ID] / %agent deny [ID]
                    answer an approval of a turn running in the background
%agent help         this text

Settings: %config CodexMax (model, reasoning_effort, approval, base_url, ...); how the
magics show their work: %config AgentMagics.panel = "auto" | "widgets" | "text".
"""


@magic_arguments()
@argument("--effort", choices=EFFORTS, help="reasoning effort for this turn")
@argument("--model", help="the model for this turn")
@argument("--approval", choices=APPROVALS, help="the approval level for this turn")
@argument("--new", action="store_true", help="start a new session")
@argument("--wait", action="store_true", help="run the turn to completion in the cell")
@argument("--notebook", help="the notebook's path (where the kernel cannot tell)")
def _cell_options(line: str) -> None:
    """Options of %%agent."""


def _cell_help() -> str:
    """``%%agent --help``: its options, from the parser that reads them."""
    lines = ["%%agent [options]", "<the task, on the lines below>", "", "options:"]
    for action in _cell_options.parser._actions:
        if not action.option_strings:
            continue
        name = action.option_strings[0]
        if action.choices:
            name += " {" + ",".join(map(str, action.choices)) + "}"
        elif action.nargs != 0:
            name += f" {action.dest.upper()}"
        lines.append(f"  {name:<46} {action.help}")
    lines += ["", "%agent help: the other commands"]
    return "\n".join(lines)


@magics_class
class AgentMagics(Magics):
    """The ``agent`` line and cell magic."""

    panel = Enum(
        ("auto", "widgets", "text"),
        "auto",
        help="""How %%agent shows its work: ``widgets`` (the ipywidgets panel), ``text``
        (lines on the cell's output), or ``auto``: widgets where someone is watching (a
        frontend that takes input), text in terminal IPython and in nbclient or papermill
        runs.""",
    ).tag(config=True)

    def __init__(self, shell: Any, settings: CodexMax | None, settings_error: str | None) -> None:
        super().__init__(shell=shell)
        self.settings = settings
        self.settings_error = settings_error
        self._host: KernelHost | None = None
        self.main: MainThread | None = None
        self.bridge: Bridge | None = None

    def start_bridge(self) -> None:
        """Offer the frontend the bridge now, so it can answer before the first %%agent."""
        import asyncio

        from .._version import __version__
        from .bridge import Bridge
        from .threads import MainThread

        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        self.main = MainThread(loop)
        self.bridge = Bridge(self.main, __version__)
        self.bridge.make_host = self._host_for_frontend
        kernel = getattr(self.shell, "kernel", None)
        if kernel is not None:
            # Offered where someone watches (the frontend sends input: JupyterLab, VS Code);
            # a frontend can always open it itself.
            self.bridge.start(offer=bool(getattr(kernel, "_allow_stdin", False)))

    @property
    def host(self) -> KernelHost:
        if self.settings is None:
            raise UsageError(f"jupyter-codexmax is not configured: {self.settings_error}")
        if self._host is None:
            from .host import KernelHost

            self._host = KernelHost(
                self.shell, self.settings, panel=self.panel, main=self.main, bridge=self.bridge
            )
        self._host.panel = self.panel
        return self._host

    def _host_for_frontend(self) -> KernelHost:
        """The host, for a frontend's request: a settings mistake is its one-line error."""
        from ..errors import CodexmaxError

        try:
            return self.host
        except UsageError as exc:
            raise CodexmaxError(str(exc)) from None

    @line_cell_magic
    def agent(self, line: str, cell: str | None = None) -> None:
        """Talk to the agent: ``%%agent`` with a task, ``%agent help`` for the commands."""
        if self.main is not None:
            self.main.adopt_loop()
        if cell is None:
            return self._command(line)
        return self._turn(line, cell)

    # -- %%agent ------------------------------------------------------------------------------

    def _turn(self, line: str, cell: str) -> None:
        if {"-h", "--help"} & set(line.split()):
            # IPython's magic parsers have no --help of their own: the options, no turn
            print(_cell_help())
            return
        try:
            options = parse_argstring(_cell_options, line)
        except UsageError:
            raise
        except SystemExit as exc:  # argparse's own exit on a bad option
            raise UsageError(f"%%agent: {exc}") from None
        message = cell.strip()
        if not message:
            raise UsageError("%%agent needs a task: write it on the lines below %%agent")
        self._guarded(
            lambda: self.host.run_turn(
                message,
                notebook=options.notebook,
                new=options.new,
                model=options.model,
                effort=options.effort,
                approval=options.approval,
                wait=options.wait,
            )
        )

    # -- %agent ...----------------------------------------------------------------------------

    def _command(self, line: str) -> None:
        words = line.split()
        if not words or words[0] in ("help", "-h", "--help"):
            print(HELP)
            return
        name, rest = words[0], words[1:]
        commands = {
            "status": self._status,
            "history": self._history,
            "proposals": self._proposals,
            "apply": self._apply,
            "compact": self._compact,
            "undo": self._undo,
            "new": self._new,
            "stop": self._stop,
            "approve": lambda args: self._decide(args, "approve"),
            "deny": lambda args: self._decide(args, "deny"),
            "review": lambda args: self._review(line.strip()[len("review") :]),
        }
        if name not in commands:
            raise UsageError(
                f"%agent {name}: unknown command (one of {', '.join(sorted(commands))}, "
                "help); a task goes in a %%agent cell"
            )
        self._guarded(lambda: commands[name](rest))

    def _guarded(self, action: Any) -> None:
        """Mistakes and known failures as one line, never a traceback."""
        from ..errors import CodexmaxError

        try:
            action()
        except CodexmaxError as exc:
            raise UsageError(str(exc)) from None

    def _no_args(self, name: str, args: list[str]) -> None:
        if args:
            raise UsageError(f"%agent {name} takes no arguments")

    def _status(self, args: list[str]) -> None:
        self._no_args("status", args)
        print(self.host.status())

    def _history(self, args: list[str]) -> None:
        self._no_args("history", args)
        print(self.host.history())

    def _proposals(self, args: list[str]) -> None:
        self._no_args("proposals", args)
        print(self.host.proposals())

    def _apply(self, args: list[str]) -> None:
        if len(args) != 1 or not args[0].isdigit():
            raise UsageError("%agent apply N: the number of a proposal (%agent proposals)")
        print(self.host.apply(int(args[0])))

    def _compact(self, args: list[str]) -> None:
        self._no_args("compact", args)
        self._operation("compact")

    def _undo(self, args: list[str]) -> None:
        self._no_args("undo", args)
        self._operation("undo")

    def _operation(self, name: str) -> None:
        result = self.host.operation(name)
        if self.host.background:  # in the cell otherwise: its summary is the output
            print(result)

    def _new(self, args: list[str]) -> None:
        self._no_args("new", args)
        host = self.host
        session = host.open_session(new=True)
        print(f"new session {session.agent.session_id}; the next %%agent starts it")

    def _stop(self, args: list[str]) -> None:
        self._no_args("stop", args)
        print("stopping" if self.host.stop() else "nothing is running")

    def _review(self, rest: str) -> None:
        from .review import review_notebook

        review_notebook(self.host, rest)

    def _decide(self, args: list[str], decision: str) -> None:
        if len(args) > 1:
            raise UsageError(f"%agent {decision} [REQUEST_ID]")
        print(self.host.resolve(args[0] if args else None, decision))
