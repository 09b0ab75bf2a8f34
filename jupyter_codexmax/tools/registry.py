"""Tools: one class each (name, JSON schema, what kind of access it needs, a handler), and
the registry that dispatches a model's function call to one.

Errors are split as the Codex CLI splits them:

- every call's arguments are checked against its tool's schema before it runs
  (:mod:`.schema`: types, ranges, finite numbers, lengths, depth);
- :class:`ToolError` (and the model-fixable errors of other modules: a cell id that does
  not exist, a path outside the workspace, arguments that are not JSON) becomes the tool's
  output, and the turn goes on: the model reads it and tries again. So does any other
  failure inside a tool (an ``OSError``, a bug): the dispatcher gives it back as the call's
  output. Only the provider, the user's stop and a broken invariant of our own (a notebook
  changed on disk by someone else) end a turn.
"""

from __future__ import annotations

import abc
import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ..errors import CodexmaxError, ToolArgumentsError
from ..providers.base import ToolSpec

if TYPE_CHECKING:
    from ..config import CodexMax
    from ..events import Event
    from ..notebook.document import NotebookDocument
    from ..notebook.view import Image
    from ..runners.base import CellRunner
    from ..workspace import Workspace

__all__ = [
    "Access",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "check_arguments",
    "in_thread",
]

T = TypeVar("T")

#: What a call needs permission for. ``read`` is always allowed.
Access = Literal["read", "notebook_edit", "run", "shell", "write"]


class ToolError(CodexmaxError):
    """A mistake the model can fix; becomes the tool's output."""


@dataclass
class ToolResult:
    """What a tool call produced."""

    output: str
    summary: str = ""
    ok: bool = True
    images: list[Image] = field(default_factory=list)


@dataclass
class ToolContext:
    """What tools work with. ``emit`` sends events to the surfaces."""

    settings: CodexMax
    workspace: Workspace
    doc: NotebookDocument | None
    runner: CellRunner | None
    emit: Callable[[Event], None]
    redact: Callable[[str], str]
    image_ok: bool = True
    #: True when the approval level makes edits proposals (not applied).
    propose_only: bool = False
    #: Called with a file's path before a tool changes it (for undo).
    before_file_change: Callable[[Any], None] = lambda path: None
    #: Things the session keeps between calls (the plan, cells run and their status).
    state: dict[str, Any] = field(default_factory=dict)
    #: Seconds a cell may run.
    cell_timeout: float = 600.0


class Tool(abc.ABC):
    """One function tool."""

    name: str
    description: str
    parameters: dict[str, Any]
    access: Access = "read"

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters, strict=False)

    def access_for(self, args: dict[str, Any]) -> Access:
        """The access this particular call needs (some tools vary with their arguments)."""
        return self.access

    def summarize(self, args: dict[str, Any]) -> str:
        """A short line saying what the call does, for logs and approval prompts."""
        return self.name

    def check(self, args: dict[str, Any]) -> None:  # noqa: B027 (optional: none by default)
        """Rules the schema cannot say, checked with it before the call goes on: raise
        :class:`ToolError` with a message the model can act on."""

    def approval_detail(self, ctx: ToolContext, args: dict[str, Any]) -> str:
        """What a person deciding on the call should see (the code to run, the command)."""
        import json

        return json.dumps(args, indent=1, ensure_ascii=False)

    @abc.abstractmethod
    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult: ...


def check_arguments(schema: dict[str, Any], value: Any, where: str = "arguments") -> None:
    """Check ``value`` against a tool's schema and the limits that hold for every argument
    (:mod:`.schema`). Raises :class:`ToolError` with a message for the model."""
    from .schema import ArgumentError
    from .schema import check_arguments as check

    try:
        check(schema, value, where)
    except ArgumentError as exc:
        raise ToolError(str(exc)) from exc


class ToolRegistry:
    """The tools the model is offered, by name."""

    def __init__(self, tools: Iterable[Tool]) -> None:
        self.tools = {tool.name: tool for tool in tools}

    def specs(self) -> list[ToolSpec]:
        return [tool.spec() for tool in self.tools.values()]

    def get(self, name: str) -> Tool:
        tool = self.tools.get(name)
        if tool is None:
            from .schema import MAX_NAME, clip

            raise ToolError(
                f"there is no tool {clip(name, MAX_NAME)}; the tools are: {', '.join(self.tools)}"
            )
        return tool

    def prepare(self, name: str, raw_arguments: Any) -> tuple[Tool, dict[str, Any]]:
        """The tool and its arguments, checked against its schema before it runs, or
        :class:`ToolError`."""
        from ..providers.items import parse_tool_arguments
        from .schema import MAX_ARGUMENTS

        tool = self.get(name)
        if isinstance(raw_arguments, str) and len(raw_arguments) > MAX_ARGUMENTS:
            raise ToolError(
                f"the arguments for {name} are {len(raw_arguments):,} characters of JSON; at "
                f"most {MAX_ARGUMENTS:,} are accepted"
            )
        try:
            args = parse_tool_arguments({"name": name, "arguments": raw_arguments})
        except ToolArgumentsError as exc:
            raise ToolError(str(exc)) from exc
        check_arguments(tool.parameters, args)
        tool.check(args)
        return tool, args


async def in_thread(work: Callable[[threading.Event], T]) -> T:
    """Run blocking ``work`` in a thread, so the event loop stays free and the call can be
    cancelled (a stop, the run's time limit). ``work`` gets an event that is set when the
    call is cancelled, and checks it between files or lines to end soon after."""
    cancelled = threading.Event()
    try:
        return await asyncio.to_thread(work, cancelled)
    except asyncio.CancelledError:
        cancelled.set()
        raise


def timed() -> Callable[[], float]:
    started = time.monotonic()
    return lambda: time.monotonic() - started
