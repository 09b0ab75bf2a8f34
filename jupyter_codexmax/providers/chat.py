"""Chat Completions (``POST /chat/completions``, streamed), for any OpenAI-compatible server.

Items are converted to messages: the instructions become a system message, consecutive
function calls one assistant message with ``tool_calls``, each output a ``tool`` message
(images in tool output follow in a user message, as chat servers take images only there),
reasoning and compaction items are left out (chat servers do not take them back).

What servers differ in, and what is accepted:

- tool-call deltas are assembled by ``index`` (or by ``id`` where a server leaves the index
  out); a whole call in one chunk works the same; arguments sent as an object are encoded;
- reasoning arrives as ``reasoning_content`` (vLLM, DeepSeek) or ``reasoning`` (Ollama,
  OpenRouter);
- usage comes in a final chunk with empty ``choices`` (``stream_options.include_usage``);
- SSE comment lines are skipped; ``data: [DONE]`` ends the stream, and so does the end of
  the body after a ``finish_reason``;
- an error object inside an HTTP 200 stream is raised as the matching error;
- only choice 0 is read.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from ..errors import ProtocolError, StreamInterrupted
from .base import (
    Completed,
    Item,
    ModelRequest,
    OutputItem,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallStarted,
    Usage,
)
from .common import HttpProvider
from .http import error_from_payload
from .items import load_json
from .sse import ServerSentEvent

__all__ = ["ChatProvider", "items_to_messages"]

_FINISH_TO_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


class ChatProvider(HttpProvider):
    """Chat Completions: vLLM, Ollama, llama.cpp, LM Studio, OpenRouter, OpenAI."""

    name = "chat"
    path = "chat/completions"

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        s = self.settings
        model = request.model or s.model
        effort = s.effort_for(model, request.effort)
        info = s.model_info(model)
        body: dict[str, Any] = {
            "model": model,
            "messages": items_to_messages(request.instructions, request.input, info.images),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                        "strict": t.strict,
                    },
                }
                for t in request.tools
            ]
            body["tool_choice"] = "auto"
        if effort is not None:
            body["reasoning_effort"] = effort
        if request.max_output_tokens:
            body["max_completion_tokens"] = request.max_output_tokens
        return body

    async def parse_stream(
        self, events: AsyncIterator[ServerSentEvent]
    ) -> AsyncGenerator[StreamEvent, None]:
        state = _ChatState()
        async for sse in events:
            data = sse.data.strip()
            if data == "[DONE]":
                for event in state.finish():
                    yield event
                return
            if not data:
                continue
            try:
                chunk = load_json(data)
            except ValueError as exc:
                raise ProtocolError(
                    f"the server sent an event that is not JSON: {data[:120]!r}"
                ) from exc
            if not isinstance(chunk, dict):
                raise ProtocolError(
                    f"the server sent an event that is not an object: {data[:120]!r}"
                )
            for event in state.handle(chunk):
                yield event
        if state.finish_reason is None:
            if state.foreign and not state.seen_chunks:
                raise ProtocolError(
                    "the server's stream has no Chat Completions chunks (its events had "
                    f"keys {state.foreign}); is the base URL an OpenAI-compatible endpoint?"
                )
            raise StreamInterrupted("the stream closed before the answer was finished")
        for event in state.finish():
            yield event

    def parse_json_body(self, payload: Any) -> list[StreamEvent]:
        if not isinstance(payload, dict):
            raise ProtocolError("the server's answer is not a JSON object")
        if isinstance(payload.get("error"), dict):
            raise error_from_payload(payload["error"])
        choices = payload.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ProtocolError("the server's answer has no choices; is this Chat Completions?")
        state = _ChatState()
        events: list[StreamEvent] = []
        choice = choices[0] if isinstance(choices[0], dict) else {}
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        chunk = {
            "id": payload.get("id"),
            "model": payload.get("model"),
            "usage": payload.get("usage"),
            "choices": [
                {
                    "index": 0,
                    "delta": message,
                    "finish_reason": choice.get("finish_reason") or "stop",
                }
            ],
        }
        events.extend(state.handle(chunk))
        events.extend(state.finish())
        return events


class _ChatState:
    """What one chat stream has said so far."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.response_id: str | None = None
        self.model: str | None = None
        self.seen_chunks = False
        self.foreign: list[str] = []
        self.announced: set[int] = set()

    def handle(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        if "choices" in chunk:
            self.seen_chunks = True
        elif not self.foreign:
            self.foreign = sorted(chunk)[:6]
        if chunk.get("error"):
            error = chunk["error"]
            raise error_from_payload(error if isinstance(error, dict) else {"message": str(error)})
        self.response_id = chunk.get("id") or self.response_id
        self.model = chunk.get("model") or self.model
        usage = Usage.from_chat(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        events: list[StreamEvent] = []
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                events.extend(self._delta(delta))
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        return events

    def _delta(self, delta: dict[str, Any]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for key in ("reasoning_content", "reasoning"):
            piece = delta.get(key)
            if isinstance(piece, str) and piece:
                self.reasoning.append(piece)
                events.append(ReasoningDelta(piece, "text"))
                break
        content = delta.get("content")
        if isinstance(content, str) and content:
            self.text.append(content)
            events.append(TextDelta(content))
        for position, call in enumerate(delta.get("tool_calls") or []):
            if isinstance(call, dict):
                started = self._tool_call(call, first_in_chunk=position == 0)
                if started is not None:
                    events.append(started)
        return events

    def _tool_call(self, call: dict[str, Any], *, first_in_chunk: bool) -> ToolCallStarted | None:
        index = call.get("index")
        call_id = call.get("id")
        if not isinstance(index, int):
            # Servers that leave the index out: the id says which call, or else a new
            # entry in the same chunk is a new call and the first continues the last one.
            known = [i for i, c in self.calls.items() if call_id and c["id"] == call_id]
            if known:
                index = known[0]
            elif call_id or not self.calls or not first_in_chunk:
                index = max(self.calls, default=-1) + 1
            else:
                index = max(self.calls)
        entry = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        if call_id and not entry["id"]:
            entry["id"] = str(call_id)
        raw_function = call.get("function")
        function: dict[str, Any] = raw_function if isinstance(raw_function, dict) else {}
        name = function.get("name")
        if isinstance(name, str) and name and name != entry["name"]:
            entry["name"] = name if not entry["name"] else entry["name"] + name
        arguments = function.get("arguments")
        if isinstance(arguments, (dict, list)):
            entry["arguments"] += json.dumps(arguments, ensure_ascii=False)
        elif isinstance(arguments, str):
            entry["arguments"] += arguments
        if entry["name"] and index not in self.announced:
            self.announced.add(index)
            return ToolCallStarted(entry["id"], entry["name"])
        return None

    def finish(self) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        if self.reasoning:
            item: Item = {
                "type": "reasoning",
                "id": "rs_" + uuid.uuid4().hex[:24],
                "summary": [],
                "content": [{"type": "reasoning_text", "text": "".join(self.reasoning)}],
            }
            events.append(OutputItem(item))
        if self.text:
            events.append(
                OutputItem(
                    {
                        "type": "message",
                        "role": "assistant",
                        "content": [
                            {"type": "output_text", "text": "".join(self.text), "annotations": []}
                        ],
                    }
                )
            )
        for index in sorted(self.calls):
            entry = self.calls[index]
            if not entry["id"]:
                entry["id"] = "call_" + uuid.uuid4().hex[:24]
            events.append(
                OutputItem(
                    {
                        "type": "function_call",
                        "call_id": entry["id"],
                        "name": entry["name"],
                        "arguments": entry["arguments"],
                    }
                )
            )
        reason = _FINISH_TO_INCOMPLETE.get(self.finish_reason or "")
        events.append(
            Completed(
                usage=self.usage,
                response_id=self.response_id,
                status="incomplete" if reason else "completed",
                incomplete_reason=reason,
                model=self.model,
            )
        )
        return events


def _parts_text(content: Any) -> tuple[str, list[dict[str, Any]]]:
    """The text of message content (a string or a list of parts), and its image parts."""
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for part in content or []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text", "refusal"):
            texts.append(str(part.get("text") or part.get("refusal") or ""))
        elif kind == "input_image" and part.get("image_url"):
            images.append(part)
    return "".join(texts), images


def _image_part(part: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "image_url",
        "image_url": {"url": part["image_url"], "detail": part.get("detail") or "auto"},
    }


def _user_content(text: str, images: list[dict[str, Any]], images_ok: bool) -> Any:
    if not images:
        return text
    if not images_ok:
        note = f"[{len(images)} image(s) left out: this model does not take images]"
        return f"{text}\n{note}" if text else note
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    return parts + [_image_part(p) for p in images]


def items_to_messages(
    instructions: str, items: list[Item], images_ok: bool = True
) -> list[dict[str, Any]]:
    """Responses-style items as Chat Completions messages, shaped so that strict chat
    templates (Mistral, Gemma, Llama on vLLM) accept them: one system message, first;
    later developer or system messages become user messages; no two user messages in a
    row (they are merged)."""
    messages: list[dict[str, Any]] = []
    system: list[str] = [instructions] if instructions else []
    assistant: dict[str, Any] | None = None
    tool_images: list[dict[str, Any]] = []

    def flush_assistant() -> None:
        nonlocal assistant
        if assistant is not None:
            if assistant.get("content") is None:
                assistant.pop("content")
            messages.append(assistant)
            assistant = None

    def flush_images() -> None:
        if tool_images:
            add_user(
                _user_content("(images from the tool results above)", list(tool_images), images_ok)
            )
            tool_images.clear()

    def add_user(content: Any) -> None:
        if messages and messages[-1]["role"] == "user":
            messages[-1]["content"] = _merge_content(messages[-1]["content"], content)
        else:
            messages.append({"role": "user", "content": content})

    for item in items:
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            role = str(item.get("role", "user"))
            text, images = _parts_text(item.get("content"))
            if role == "assistant":
                flush_images()
                if assistant is not None:
                    flush_assistant()
                assistant = {"role": "assistant", "content": text}
                continue
            flush_assistant()
            flush_images()
            if role in ("system", "developer"):
                if not messages:
                    system.append(text)
                else:
                    add_user(f"[{role} instructions]\n{text}")
                continue
            add_user(_user_content(text, images, images_ok))
        elif kind == "function_call":
            flush_images()
            if assistant is None:
                assistant = {"role": "assistant", "content": None}
            assistant.setdefault("tool_calls", []).append(
                {
                    "id": str(item.get("call_id", "")),
                    "type": "function",
                    "function": {
                        "name": str(item.get("name", "")),
                        "arguments": str(item.get("arguments", "")),
                    },
                }
            )
        elif kind == "function_call_output":
            flush_assistant()
            output = item.get("output")
            text, images = _parts_text(output)
            tool_images.extend(images)
            messages.append(
                {"role": "tool", "tool_call_id": str(item.get("call_id", "")), "content": text}
            )
        # reasoning, compaction and other item types have no chat form: left out.
    flush_assistant()
    flush_images()
    if system:
        messages.insert(0, {"role": "system", "content": "\n\n".join(system)})
    return messages


def _merge_content(first: Any, second: Any) -> Any:
    """Two user messages' contents as one (text joined; parts concatenated)."""
    if isinstance(first, str) and isinstance(second, str):
        return f"{first}\n\n{second}" if first else second
    as_parts = [
        [{"type": "text", "text": c}] if isinstance(c, str) else list(c) for c in (first, second)
    ]
    return as_parts[0] + as_parts[1]
