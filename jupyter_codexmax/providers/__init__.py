"""Model providers: the Responses API and Chat Completions, behind one interface."""

from __future__ import annotations

from typing import TYPE_CHECKING

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


def open_provider(settings: CodexMax) -> Provider:
    """The provider the settings choose (``CodexMax.provider``)."""
    if settings.provider == "chat":
        from .chat import ChatProvider

        return ChatProvider(settings)
    from .responses import ResponsesProvider

    return ResponsesProvider(settings)
