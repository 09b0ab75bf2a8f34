"""The OpenAI Responses API: ``POST /responses`` (streamed) and ``POST /responses/compact``.

Requests are stateless (``store: false``, except on Azure): the whole history goes in
``input`` each time, and reasoning comes back encrypted
(``include: ["reasoning.encrypted_content"]``) so it can be sent back verbatim.

Stream events read (others are ignored, as new ones appear all the time):

- ``response.created`` / ``response.in_progress``: the response id and model;
- ``response.output_item.added``: a function call begins;
- ``response.output_text.delta``, ``response.reasoning_summary_text.delta``,
  ``response.reasoning_text.delta``: text as it is written;
- ``response.output_item.done``: a finished item, kept verbatim;
- ``response.completed`` / ``response.incomplete``: the end, with usage;
- ``response.failed`` and ``error``: errors, in the spec's flat shape
  (``{"type": "error", "code", "message"}``) and the nested one real servers send
  (``{"type": "error", "error": {...}}``).

A stream that ends without one of the final events was cut, and is retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from ..errors import ModelError, ProtocolError, StreamInterrupted
from .base import (
    CompactResult,
    Completed,
    Item,
    ModelRequest,
    OutputItem,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallStarted,
    ToolSpec,
    Usage,
)
from .common import HttpProvider
from .http import error_from_payload
from .items import load_json, message_text
from .sse import ServerSentEvent

__all__ = ["ResponsesProvider", "events_from_response_object"]


def tool_json(tool: ToolSpec) -> dict[str, Any]:
    """A function tool as the Responses API takes it (``strict`` and ``parameters`` always)."""
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
        "strict": tool.strict,
    }


class ResponsesProvider(HttpProvider):
    """The OpenAI Responses API, and servers that implement it."""

    name = "responses"
    path = "responses"

    @property
    def supports_remote_compaction(self) -> bool:
        return True

    def _input(self, items: list[Item]) -> list[Item]:
        """Items as the server accepts them. Items the server produced go back verbatim;
        two kinds are adjusted:

        - reasoning without ``encrypted_content`` (from a chat server) is left out: the
          Responses API can only use reasoning it can decrypt or has stored;
        - an assistant message without an ``id`` (made locally, or by a chat server) is
          sent as an easy input message with text content, the form the spec allows for
          messages the server did not produce.
        """
        prepared = []
        for item in items:
            kind = item.get("type", "message")
            if kind == "reasoning" and not item.get("encrypted_content"):
                continue
            if kind == "message" and item.get("role") == "assistant" and not item.get("id"):
                prepared.append(
                    {"type": "message", "role": "assistant", "content": message_text(item)}
                )
            else:
                prepared.append(item)
        return prepared

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        s = self.settings
        model = request.model or s.model
        effort = s.effort_for(model, request.effort)
        body: dict[str, Any] = {"model": model}
        if request.instructions:
            body["instructions"] = request.instructions
        body["input"] = self._input(request.input)
        if request.tools:
            body["tools"] = [tool_json(t) for t in request.tools]
            body["tool_choice"] = "auto"
            body["parallel_tool_calls"] = request.parallel_tool_calls
        if effort is not None:
            reasoning: dict[str, Any] = {"effort": effort}
            if s.reasoning_summary != "none" and effort != "none":
                reasoning["summary"] = s.reasoning_summary
            body["reasoning"] = reasoning
            body["include"] = ["reasoning.encrypted_content"]
        body["store"] = s.store_value
        body["stream"] = True
        if request.prompt_cache_key:
            body["prompt_cache_key"] = request.prompt_cache_key[:64]
        if request.max_output_tokens:
            body["max_output_tokens"] = request.max_output_tokens
        return body

    def build_compact_body(self, request: ModelRequest) -> dict[str, Any]:
        model = request.model or self.settings.model
        body: dict[str, Any] = {"model": model, "input": self._input(request.input)}
        if request.instructions:
            body["instructions"] = request.instructions
        if request.prompt_cache_key:
            body["prompt_cache_key"] = request.prompt_cache_key[:64]
        return body

    async def compact(self, request: ModelRequest) -> CompactResult:
        """``POST /responses/compact``: the server's compacted history, kept verbatim."""
        body = self.build_compact_body(request)
        self.settings.require_api_key()
        attempt = 0
        while True:
            try:
                payload = await self.http.post_json(
                    "responses/compact", body, timeout=self.settings.request_timeout
                )
                return parse_compact_response(payload)
            except ModelError as exc:
                attempt += 1
                delay = self.retry.delay(attempt, exc)
                if delay is None:
                    raise
            await asyncio.sleep(delay)

    async def parse_stream(
        self, events: AsyncIterator[ServerSentEvent]
    ) -> AsyncGenerator[StreamEvent, None]:
        state = _StreamState()
        foreign: list[str] = []
        async for sse in events:
            if sse.data == "[DONE]":
                continue
            try:
                data = load_json(sse.data)
            except ValueError as exc:
                raise ProtocolError(
                    f"the server sent an event that is not JSON: {sse.data[:120]!r}"
                ) from exc
            if not isinstance(data, dict):
                raise ProtocolError(
                    f"the server sent an event that is not an object: {sse.data[:120]!r}"
                )
            kind = str(data.get("type") or sse.event)
            if not (kind.startswith("response.") or kind == "error") and len(foreign) < 4:
                foreign.append(kind)
            for event in state.handle(kind, data):
                yield event
            if state.finished:
                return
        if foreign and not state.seen_response_events:
            raise ProtocolError(
                "the server's stream has no Responses API events (it sent "
                f"{', '.join(foreign)}); is the base URL an OpenAI-compatible Responses "
                "endpoint?"
            )
        raise StreamInterrupted("the stream closed before the response was complete")

    def parse_json_body(self, payload: Any) -> list[StreamEvent]:
        if (
            isinstance(payload, dict)
            and isinstance(payload.get("error"), dict)
            and not payload.get("output")
        ):
            raise error_from_payload(payload["error"])
        return events_from_response_object(payload)


class _StreamState:
    """What one response stream has said so far."""

    def __init__(self) -> None:
        self.response_id: str | None = None
        self.model: str | None = None
        self.items: dict[int, Item] = {}
        self.streamed_text: set[str] = set()
        self.streamed_reasoning: set[str] = set()
        self.finished = False
        self.seen_response_events = False

    def handle(self, kind: str, data: dict[str, Any]) -> list[StreamEvent]:
        if kind.startswith("response."):
            self.seen_response_events = True
        if kind in ("response.created", "response.in_progress"):
            response = data.get("response")
            if isinstance(response, dict):
                self.response_id = response.get("id") or self.response_id
                self.model = response.get("model") or self.model
            return []
        if kind == "response.output_text.delta":
            self.streamed_text.add(str(data.get("item_id")))
            return [TextDelta(str(data.get("delta", "")))]
        if kind == "response.reasoning_summary_text.delta":
            self.streamed_reasoning.add(str(data.get("item_id")))
            return [ReasoningDelta(str(data.get("delta", "")), "summary")]
        if kind == "response.reasoning_summary_part.added":
            if data.get("summary_index", 0):
                return [ReasoningDelta("\n\n", "summary")]
            return []
        if kind == "response.reasoning_text.delta":
            self.streamed_reasoning.add(str(data.get("item_id")))
            return [ReasoningDelta(str(data.get("delta", "")), "text")]
        if kind == "response.output_item.added":
            item = data.get("item")
            if isinstance(item, dict) and item.get("type") == "function_call":
                return [ToolCallStarted(str(item.get("call_id", "")), str(item.get("name", "")))]
            return []
        if kind == "response.output_item.done":
            item = data.get("item")
            if not isinstance(item, dict):
                raise ProtocolError("response.output_item.done without an item")
            index = data.get("output_index")
            self.items[index if isinstance(index, int) else len(self.items)] = item
            return [*self._unstreamed(item), OutputItem(item)]
        if kind in ("response.completed", "response.incomplete"):
            return self._finish(data.get("response"), kind)
        if kind == "response.failed":
            response = data.get("response") if isinstance(data.get("response"), dict) else {}
            error = response.get("error") if isinstance(response, dict) else None
            raise error_from_payload(
                error if isinstance(error, dict) else {"message": "the response failed"}
            )
        if kind == "error":
            nested = data.get("error")
            raise error_from_payload(nested if isinstance(nested, dict) else data)
        return []

    def _unstreamed(self, item: Item) -> list[StreamEvent]:
        """Deltas for an item whose text arrived only in its finished form."""
        item_id = str(item.get("id"))
        if item.get("type") == "message" and item_id not in self.streamed_text:
            text = "".join(
                str(p.get("text", ""))
                for p in item.get("content") or []
                if isinstance(p, dict) and p.get("type") == "output_text"
            )
            return [TextDelta(text)] if text else []
        if item.get("type") == "reasoning" and item_id not in self.streamed_reasoning:
            parts = [
                str(p.get("text", ""))
                for p in item.get("summary") or []
                if isinstance(p, dict) and p.get("text")
            ]
            return [ReasoningDelta("\n\n".join(parts), "summary")] if parts else []
        return []

    def _finish(self, response: Any, kind: str) -> list[StreamEvent]:
        self.finished = True
        events: list[StreamEvent] = []
        response = response if isinstance(response, dict) else {}
        if not self.items:
            # Some servers only put the output in the final event.
            for item in response.get("output") or []:
                if isinstance(item, dict):
                    events.extend(self._unstreamed(item))
                    events.append(OutputItem(item))
        incomplete = kind == "response.incomplete" or response.get("status") == "incomplete"
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        events.append(
            Completed(
                usage=Usage.from_responses(response.get("usage")),
                response_id=response.get("id") or self.response_id,
                status="incomplete" if incomplete else "completed",
                incomplete_reason=str(reason) if incomplete and reason else None,
                model=response.get("model") or self.model,
            )
        )
        return events


def events_from_response_object(payload: Any) -> list[StreamEvent]:
    """Events for a whole Response object (a non-streamed answer)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("output"), list):
        raise ProtocolError("the server's answer has no output list; is this the Responses API?")
    if payload.get("status") == "failed" and isinstance(payload.get("error"), dict):
        raise error_from_payload(payload["error"])
    state = _StreamState()
    return state.handle(
        "response.incomplete" if payload.get("status") == "incomplete" else "response.completed",
        {"response": payload},
    )


def parse_compact_response(payload: Any) -> CompactResult:
    """A ``response.compaction`` object: its output items (verbatim) and usage."""
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        raise error_from_payload(payload["error"])
    if not isinstance(payload, dict) or not isinstance(payload.get("output"), list):
        raise ProtocolError("the compaction endpoint's answer has no output list")
    items = [item for item in payload["output"] if isinstance(item, dict)]
    if not any(item.get("type") == "compaction" for item in items):
        raise ProtocolError("the compaction endpoint's answer has no compaction item")
    return CompactResult(
        items=items,
        usage=Usage.from_responses(payload.get("usage")),
        response_id=payload.get("id"),
    )
