"""Tools: one class each (name, JSON schema, what kind of access it needs, a handler), and
the registry that dispatches a model's function call to one.

Errors are split as the Codex CLI splits them:

- :class:`ToolError` (and the model-fixable errors of other modules: a cell id that does
  not exist, a path outside the workspace, arguments that are not JSON) becomes the tool's
  output, and the turn goes on: the model reads it and tries again;
- anything else is a bug or a failure of the machine, and ends the turn.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

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
]

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

    def approval_detail(self, ctx: ToolContext, args: dict[str, Any]) -> str:
        """What a person deciding on the call should see (the code to run, the command)."""
        import json

        return json.dumps(args, indent=1, ensure_ascii=False)

    @abc.abstractmethod
    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult: ...


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def check_arguments(schema: dict[str, Any], value: Any, where: str = "arguments") -> None:
    """Check ``value`` against the subset of JSON Schema our tools use (types, required,
    enums, nested properties and items, no unknown keys). Raises :class:`ToolError` with a
    message for the model."""
    expected = schema.get("type")
    if expected:
        kinds = expected if isinstance(expected, list) else [expected]
        allowed = tuple(t for kind in kinds for t in _TYPES.get(kind, ()))
        is_bool = isinstance(value, bool)
        if allowed and (not isinstance(value, allowed) or (is_bool and bool not in allowed)):
            if value is None and "null" in kinds:
                return
            raise ToolError(f"{where} must be {' or '.join(kinds)}, not {_kind(value)}")
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(repr(c) for c in schema["enum"])
        raise ToolError(f"{where} must be one of {choices}, not {value!r}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                raise ToolError(f"{where} is missing {name!r}")
        if schema.get("additionalProperties") is False:
            unknown = sorted(set(value) - set(properties))
            if unknown:
                raise ToolError(
                    f"{where} has unknown key(s) {unknown}; known: {', '.join(properties)}"
                )
        for name, sub in properties.items():
            if name in value:
                check_arguments(
                    sub, value[name], f"{name!r}" if where == "arguments" else f"{where}.{name}"
                )
    if isinstance(value, list) and "items" in schema:
        for number, item in enumerate(value):
            check_arguments(schema["items"], item, f"{where}[{number}]")


def _kind(value: Any) -> str:
    for name, types in _TYPES.items():
        if isinstance(value, types) and not (isinstance(value, bool) and name != "boolean"):
            return name
    return "null" if value is None else type(value).__name__


class ToolRegistry:
    """The tools the model is offered, by name."""

    def __init__(self, tools: Iterable[Tool]) -> None:
        self.tools = {tool.name: tool for tool in tools}

    def specs(self) -> list[ToolSpec]:
        return [tool.spec() for tool in self.tools.values()]

    def get(self, name: str) -> Tool:
        tool = self.tools.get(name)
        if tool is None:
            raise ToolError(f"there is no tool {name!r}; the tools are: {', '.join(self.tools)}")
        return tool

    def prepare(self, name: str, raw_arguments: Any) -> tuple[Tool, dict[str, Any]]:
        """The tool and its checked arguments, or :class:`ToolError`."""
        from ..providers.items import parse_tool_arguments

        tool = self.get(name)
        try:
            args = parse_tool_arguments({"name": name, "arguments": raw_arguments})
        except ToolArgumentsError as exc:
            raise ToolError(str(exc)) from exc
        check_arguments(tool.parameters, args)
        return tool, args


def timed() -> Callable[[], float]:
    started = time.monotonic()
    return lambda: time.monotonic() - started
