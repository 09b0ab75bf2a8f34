"""The provider interface: requests and items in, stream events and usage out.

The core speaks in *items*, in the Responses API's input-item shape (plain dicts, so items
the server returns are replayed verbatim: encrypted reasoning, compaction items):

- ``{"type": "message", "role": "user" | "assistant" | "developer", "content": [...]}``
- ``{"type": "function_call", "call_id", "name", "arguments"}`` and
  ``{"type": "function_call_output", "call_id", "output"}``
- ``{"type": "reasoning", "id", "summary", "encrypted_content"}``
- ``{"type": "compaction", "encrypted_content"}``

Each provider turns these into its wire format (the Chat Completions provider converts
them to messages) and turns the server's stream back into :data:`StreamEvent` values.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ..config import CodexMax

__all__ = [
    "CompactResult",
    "Completed",
    "EndpointCheck",
    "Item",
    "ModelRequest",
    "ModelResponse",
    "ModelStream",
    "OutputItem",
    "Provider",
    "ReasoningDelta",
    "Retrying",
    "StreamEvent",
    "TextDelta",
    "ToolCallStarted",
    "ToolSpec",
    "Usage",
]

Item = dict[str, Any]

#: The header the scripted model server puts on every answer (so clients can tell).
SCRIPTED_SERVER_HEADER = "x-codexmax-scripted"


@dataclass(frozen=True)
class ToolSpec:
    """A function tool the model may call."""

    name: str
    description: str
    parameters: dict[str, Any]
    strict: bool = False


@dataclass
class ModelRequest:
    """One sampling request. ``model`` and ``effort`` override the settings when given."""

    input: list[Item]
    instructions: str = ""
    tools: list[ToolSpec] = field(default_factory=list)
    model: str | None = None
    effort: str | None = None
    prompt_cache_key: str | None = None
    parallel_tool_calls: bool = False
    max_output_tokens: int | None = None


@dataclass(frozen=True)
class Usage:
    """Token counts as the server reported them."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0

    def to_json(self) -> dict[str, int]:
        """The counts as reports and records keep them."""
        return {
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "total_tokens": self.total_tokens,
        }

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.total_tokens + other.total_tokens,
        )

    @classmethod
    def from_responses(cls, data: Any) -> Usage | None:
        """From a Responses API ``usage`` object (tolerant of nulls and gaps)."""
        if not isinstance(data, dict):
            return None
        inp = _int(data.get("input_tokens"))
        out = _int(data.get("output_tokens"))
        return cls(
            input_tokens=inp,
            cached_input_tokens=_int(_get(data, "input_tokens_details", "cached_tokens")),
            output_tokens=out,
            reasoning_tokens=_int(_get(data, "output_tokens_details", "reasoning_tokens")),
            total_tokens=_int(data.get("total_tokens")) or inp + out,
        )

    @classmethod
    def from_chat(cls, data: Any) -> Usage | None:
        """From a Chat Completions ``usage`` object (tolerant of nulls and gaps)."""
        if not isinstance(data, dict):
            return None
        inp = _int(data.get("prompt_tokens"))
        out = _int(data.get("completion_tokens"))
        return cls(
            input_tokens=inp,
            cached_input_tokens=_int(_get(data, "prompt_tokens_details", "cached_tokens")),
            output_tokens=out,
            reasoning_tokens=_int(_get(data, "completion_tokens_details", "reasoning_tokens")),
            total_tokens=_int(data.get("total_tokens")) or inp + out,
        )


def _get(data: dict[str, Any], outer: str, inner: str) -> Any:
    sub = data.get(outer)
    return sub.get(inner) if isinstance(sub, dict) else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# -- stream events ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer's text, as it arrives."""

    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    """A piece of reasoning: the summary (Responses) or raw reasoning text (chat servers)."""

    text: str
    kind: Literal["summary", "text"] = "summary"


@dataclass(frozen=True)
class ToolCallStarted:
    """The model has begun a function call; its arguments follow in the finished item."""

    call_id: str
    name: str


@dataclass(frozen=True)
class OutputItem:
    """A finished output item, exactly as it must be sent back later."""

    item: Item


@dataclass(frozen=True)
class Retrying:
    """The request failed and will be sent again after ``delay`` seconds.

    Everything streamed since the request began is void: discard partial text and items.
    """

    attempt: int
    max_retries: int
    delay: float
    reason: str
    #: The server said "too many requests" (HTTP 429): a shared rate limit slows every
    #: agent down, not only this one (:mod:`jupyter_codexmax.scale.limiter`).
    rate_limited: bool = False


@dataclass(frozen=True)
class Completed:
    """The response ended. ``status`` is ``completed`` or ``incomplete``."""

    usage: Usage | None
    response_id: str | None = None
    status: Literal["completed", "incomplete"] = "completed"
    incomplete_reason: str | None = None
    model: str | None = None


StreamEvent = TextDelta | ReasoningDelta | ToolCallStarted | OutputItem | Retrying | Completed


@dataclass
class ModelResponse:
    """Everything one request produced, gathered from its stream."""

    items: list[Item] = field(default_factory=list)
    usage: Usage | None = None
    response_id: str | None = None
    status: str = "completed"
    incomplete_reason: str | None = None
    model: str | None = None
    retries: int = 0

    @property
    def text(self) -> str:
        """The answer's text: every assistant message's output text, in order."""
        parts: list[str] = []
        for item in self.items:
            if item.get("type") == "message" and item.get("role") == "assistant":
                for part in item.get("content") or []:
                    if isinstance(part, dict) and part.get("type") == "output_text":
                        parts.append(str(part.get("text", "")))
        return "".join(parts)

    @property
    def function_calls(self) -> list[Item]:
        return [item for item in self.items if item.get("type") == "function_call"]


class ModelStream:
    """An open response stream: iterate it for events, or :meth:`collect` it.

    Closing it (``async with``, :meth:`aclose`, or cancelling the task that reads it)
    closes the HTTP response and its connection at once.
    """

    def __init__(self, events: AsyncGenerator[StreamEvent, None]) -> None:
        self._events = events

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self

    async def __anext__(self) -> StreamEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        await self._events.aclose()

    async def __aenter__(self) -> ModelStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def collect(self) -> ModelResponse:
        """Read the stream to its end and gather the finished items and usage."""
        result = ModelResponse()
        async with self:
            async for event in self:
                if isinstance(event, Retrying):
                    result = ModelResponse(retries=event.attempt)
                elif isinstance(event, OutputItem):
                    result.items.append(event.item)
                elif isinstance(event, Completed):
                    result.usage = event.usage
                    result.response_id = event.response_id
                    result.status = event.status
                    result.incomplete_reason = event.incomplete_reason
                    result.model = event.model
        return result


@dataclass(frozen=True)
class CompactResult:
    """What the compaction endpoint returned: the new history's items, and usage."""

    items: list[Item]
    usage: Usage | None
    response_id: str | None = None

    @property
    def compaction_item(self) -> Item | None:
        for item in self.items:
            if item.get("type") == "compaction":
                return item
        return None


@dataclass(frozen=True)
class EndpointCheck:
    """Whether the endpoint answered, for ``doctor``."""

    ok: bool
    detail: str
    seconds: float
    scripted: bool = False


class Provider(abc.ABC):
    """A model API. Created from settings; one instance can serve many requests."""

    #: ``responses`` or ``chat``.
    name: str

    def __init__(self, settings: CodexMax) -> None:
        self.settings = settings

    @property
    def supports_remote_compaction(self) -> bool:
        """Whether :meth:`compact` calls a server-side compaction endpoint."""
        return False

    @abc.abstractmethod
    def stream(self, request: ModelRequest) -> ModelStream:
        """Send ``request`` and stream the response. Nothing is sent until iterated."""

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Send ``request`` and gather the whole response."""
        return await self.stream(request).collect()

    async def compact(self, request: ModelRequest) -> CompactResult:
        """Compact ``request.input`` on the server. Only where supported."""
        raise NotImplementedError(f"the {self.name} provider has no compaction endpoint")

    @abc.abstractmethod
    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        """The JSON body :meth:`stream` sends for ``request`` (validated before sending)."""

    @abc.abstractmethod
    async def check_endpoint(self) -> EndpointCheck:
        """Ask the server something cheap, to see that it answers and accepts the key."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close connections."""

    async def __aenter__(self) -> Provider:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
