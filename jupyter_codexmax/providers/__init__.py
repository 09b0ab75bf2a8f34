"""Model providers: the Responses API and Chat Completions, behind one interface."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import (
    CompactResult,
    Completed,
    EndpointCheck,
    Item,
    ModelRequest,
    ModelResponse,
    ModelStream,
    OutputItem,
    Provider,
    ReasoningDelta,
    Retrying,
    StreamEvent,
    TextDelta,
    ToolCallStarted,
    ToolSpec,
    Usage,
)

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
    "open_provider",
]


def open_provider(settings: CodexMax, transport: Any = None) -> Provider:
    """The provider the settings choose (``CodexMax.provider``). ``transport``, an
    ``httpx.AsyncBaseTransport``, replaces the network (for tests and benchmarks)."""
    if settings.provider == "chat":
        from .chat import ChatProvider

        return ChatProvider(settings, transport)
    from .responses import ResponsesProvider

    return ResponsesProvider(settings, transport)
