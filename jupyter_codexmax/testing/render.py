"""Rendering a scripted reply in each API's wire format.

The shapes follow what the real servers send (see ``../shared/recorded/``): Responses API
events with ``sequence_number``, items added then done, usage in ``response.completed``;
Chat Completions chunks with ``choices[].delta``, a usage chunk with empty ``choices``,
and ``data: [DONE]``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..models import SCRIPTED_MODEL_PREFIX
from .script import Compaction, Fault, Part, Reply, chunks, encode_scripted

__all__ = [
    "chat_object",
    "chat_stream",
    "compact_object",
    "error_object",
    "responses_object",
    "responses_stream",
]

COMMENT = ": scripted keep-alive"


def _model(body: dict[str, Any]) -> str:
    return SCRIPTED_MODEL_PREFIX + str(body.get("model") or "none")


def _responses_usage(usage: dict[str, int]) -> dict[str, Any]:
    return {
        "input_tokens": usage["input_tokens"],
        "input_tokens_details": {"cached_tokens": usage["cached_tokens"]},
        "output_tokens": usage["output_tokens"],
        "output_tokens_details": {"reasoning_tokens": usage["reasoning_tokens"]},
        "total_tokens": usage["input_tokens"] + usage["output_tokens"],
    }


def _chat_usage(usage: dict[str, int]) -> dict[str, Any]:
    return {
        "prompt_tokens": usage["input_tokens"],
        "completion_tokens": usage["output_tokens"],
        "total_tokens": usage["input_tokens"] + usage["output_tokens"],
        "prompt_tokens_details": {"cached_tokens": usage["cached_tokens"]},
        "completion_tokens_details": {"reasoning_tokens": usage["reasoning_tokens"]},
    }


def _final_item(part: Part, item_id: str, encrypted: bool) -> dict[str, Any]:
    if part.kind == "reasoning":
        item: dict[str, Any] = {
            "id": item_id,
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": t} for t in part.texts],
        }
        if encrypted:
            item["encrypted_content"] = encode_scripted({"reasoning": list(part.texts)})
        return item
    if part.kind == "text":
        return {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {
                    "type": "output_text",
                    "text": "".join(part.texts),
                    "annotations": [],
                    "logprobs": [],
                }
            ],
        }
    return {
        "id": item_id,
        "type": "function_call",
        "status": "completed",
        "arguments": part.arguments,
        "call_id": part.call_id,
        "name": part.name,
    }


def _item_id(part: Part, response_id: str, index: int) -> str:
    prefix = {"reasoning": "rs", "text": "msg", "call": "fc"}[part.kind]
    return f"{prefix}_{response_id.removeprefix('resp_')}_{index}"


def _response_shell(body: dict[str, Any], response_id: str, status: str) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": _model(body),
        "output": [],
        "usage": None,
        "store": body.get("store", True),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
    }


def responses_stream(
    reply: Reply, body: dict[str, Any], response_id: str, request_bytes: int
) -> list[dict[str, Any]]:
    """The events of a streamed Responses API answer."""
    encrypted = "reasoning.encrypted_content" in (body.get("include") or [])
    events: list[dict[str, Any]] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append({"type": kind, "sequence_number": len(events), **fields})

    emit("response.created", response=_response_shell(body, response_id, "in_progress"))
    emit("response.in_progress", response=_response_shell(body, response_id, "in_progress"))
    done_items: list[dict[str, Any]] = []
    for index, part in enumerate(reply.parts):
        item_id = _item_id(part, response_id, index)
        final = _final_item(part, item_id, encrypted)
        if part.kind == "reasoning":
            emit(
                "response.output_item.added",
                output_index=index,
                item={"id": item_id, "type": "reasoning", "summary": []},
            )
            for s_index, text in enumerate(part.texts):
                emit(
                    "response.reasoning_summary_part.added",
                    item_id=item_id,
                    output_index=index,
                    summary_index=s_index,
                    part={"type": "summary_text", "text": ""},
                )
                for piece in chunks(text, reply.chunk):
                    emit(
                        "response.reasoning_summary_text.delta",
                        item_id=item_id,
                        output_index=index,
                        summary_index=s_index,
                        delta=piece,
                    )
                emit(
                    "response.reasoning_summary_text.done",
                    item_id=item_id,
                    output_index=index,
                    summary_index=s_index,
                    text=text,
                )
                emit(
                    "response.reasoning_summary_part.done",
                    item_id=item_id,
                    output_index=index,
                    summary_index=s_index,
                    part={"type": "summary_text", "text": text},
                )
        elif part.kind == "text":
            text = "".join(part.texts)
            emit(
                "response.output_item.added",
                output_index=index,
                item={
                    "id": item_id,
                    "type": "message",
                    "status": "in_progress",
                    "role": "assistant",
                    "content": [],
                },
            )
            emit(
                "response.content_part.added",
                item_id=item_id,
                output_index=index,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
            )
            for piece in chunks(text, reply.chunk):
                emit(
                    "response.output_text.delta",
                    item_id=item_id,
                    output_index=index,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
            emit(
                "response.output_text.done",
                item_id=item_id,
                output_index=index,
                content_index=0,
                text=text,
                logprobs=[],
            )
            emit(
                "response.content_part.done",
                item_id=item_id,
                output_index=index,
                content_index=0,
                part=final["content"][0],
            )
        else:
            emit(
                "response.output_item.added",
                output_index=index,
                item={**final, "status": "in_progress", "arguments": ""},
            )
            for piece in chunks(part.arguments, reply.chunk):
                emit(
                    "response.function_call_arguments.delta",
                    item_id=item_id,
                    output_index=index,
                    delta=piece,
                )
            emit(
                "response.function_call_arguments.done",
                item_id=item_id,
                output_index=index,
                name=part.name,
                arguments=part.arguments,
            )
        emit("response.output_item.done", output_index=index, item=final)
        done_items.append(final)
    final_response = _response_shell(body, response_id, reply.status)
    final_response["output"] = done_items
    final_response["usage"] = _responses_usage(reply.usage_for(request_bytes))
    if reply.status == "incomplete":
        final_response["incomplete_details"] = {"reason": reply.incomplete_reason}
        emit("response.incomplete", response=final_response)
    else:
        emit("response.completed", response=final_response)
    return events


def responses_object(
    reply: Reply, body: dict[str, Any], response_id: str, request_bytes: int
) -> dict[str, Any]:
    """A whole Response object, for ``stream: false``."""
    final: dict[str, Any] = responses_stream(reply, body, response_id, request_bytes)[-1][
        "response"
    ]
    return final


def responses_error_event(fault: Fault, sequence: int) -> dict[str, Any]:
    """An in-stream error, in the shape the fault asks for."""
    error = {
        "type": fault.type or _default_type(fault.code),
        "code": fault.code,
        "message": fault.message,
        "param": None,
    }
    if fault.shape == "flat":
        return {
            "type": "error",
            "sequence_number": sequence,
            "code": fault.code,
            "message": fault.message,
            "param": None,
        }
    if fault.shape == "failed":
        return {
            "type": "response.failed",
            "sequence_number": sequence,
            "response": {
                "id": "resp_failed",
                "object": "response",
                "status": "failed",
                "error": {"code": fault.code, "message": fault.message},
                "output": [],
                "usage": None,
            },
        }
    return {"type": "error", "sequence_number": sequence, "error": error}


def _default_type(code: str | None) -> str:
    if code == "insufficient_quota":
        return "insufficient_quota"
    if code in ("rate_limit_exceeded",):
        return "requests"
    if code in ("context_length_exceeded",):
        return "invalid_request_error"
    return "server_error"


def chat_stream(
    reply: Reply, body: dict[str, Any], completion_id: str, request_bytes: int
) -> list[str]:
    """The ``data:`` payloads of a streamed Chat Completions answer (and comments)."""
    options = reply.chat
    comments = bool(options.get("comments"))
    reasoning_field = str(options.get("reasoning_field", "reasoning_content"))
    created = int(time.time())
    model = _model(body)
    out: list[str] = []

    def chunk(delta: dict[str, Any], finish: str | None = None) -> None:
        out.append(
            json.dumps(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "scripted",
                    "choices": [
                        {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                    ],
                }
            )
        )
        if comments:
            out.append(COMMENT)

    if comments:
        out.append(COMMENT)
    chunk({"role": "assistant", "content": ""})
    call_index = 0
    for part in reply.parts:
        if part.kind == "reasoning":
            for piece in chunks("\n\n".join(part.texts), reply.chunk):
                chunk({reasoning_field: piece})
        elif part.kind == "text":
            for piece in chunks("".join(part.texts), reply.chunk):
                chunk({"content": piece})
        else:
            whole = bool(options.get("whole_tool_calls"))
            head = {
                "index": call_index,
                "id": part.call_id,
                "type": "function",
                "function": {"name": part.name, "arguments": part.arguments if whole else ""},
            }
            if whole:
                chunk({"tool_calls": [head]})
            else:
                chunk({"tool_calls": [head]})
                for piece in chunks(part.arguments, reply.chunk):
                    chunk({"tool_calls": [{"index": call_index, "function": {"arguments": piece}}]})
            call_index += 1
    if reply.status == "incomplete":
        finish = "length" if reply.incomplete_reason == "max_output_tokens" else "content_filter"
    else:
        finish = "tool_calls" if call_index else "stop"
    chunk({}, finish)
    stream_options = body.get("stream_options") or {}
    if stream_options.get("include_usage"):
        out.append(
            json.dumps(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": _chat_usage(reply.usage_for(request_bytes)),
                }
            )
        )
    if not options.get("no_done"):
        out.append("[DONE]")
    return out


def chat_object(
    reply: Reply, body: dict[str, Any], completion_id: str, request_bytes: int
) -> dict[str, Any]:
    """A whole ``chat.completion``, for ``stream: false``."""
    calls = [
        {
            "id": p.call_id,
            "type": "function",
            "function": {"name": p.name, "arguments": p.arguments},
        }
        for p in reply.parts
        if p.kind == "call"
    ]
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.reasoning:
        message[str(reply.chat.get("reasoning_field", "reasoning_content"))] = reply.reasoning
    if calls:
        message["tool_calls"] = calls
    finish = "length" if reply.status == "incomplete" else ("tool_calls" if calls else "stop")
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": _model(body),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": _chat_usage(reply.usage_for(request_bytes)),
    }


def chat_error_payload(fault: Fault) -> dict[str, Any]:
    """An error object inside a 200 chat stream, as vLLM and OpenRouter send them."""
    return {
        "error": {
            "message": fault.message,
            "type": fault.type or _default_type(fault.code),
            "param": None,
            "code": fault.code,
        }
    }


def error_object(message: str, *, code: str | None, etype: str) -> dict[str, Any]:
    """An OpenAI-shaped HTTP error body."""
    return {"error": {"message": message, "type": etype, "param": None, "code": code}}


def compact_object(
    entry: Compaction, body: dict[str, Any], response_id: str, request_bytes: int
) -> dict[str, Any]:
    """A ``response.compaction`` object: kept user messages, then the compaction item."""
    items = [i for i in (body.get("input") or []) if isinstance(i, dict)]
    kept: list[dict[str, Any]] = []
    if entry.keep_user_messages:
        for number, item in enumerate(items):
            if item.get("role") == "user" and item.get("type", "message") == "message":
                content = item.get("content")
                if isinstance(content, str):
                    content = [{"type": "input_text", "text": content}]
                kept.append(
                    {
                        "id": f"msg_{response_id.removeprefix('resp_')}_{number}",
                        "type": "message",
                        "status": "completed",
                        "role": "user",
                        "content": content,
                    }
                )
    summary = (
        entry.summary
        if entry.summary is not None
        else (f"Scripted compaction of {len(items)} items.")
    )
    compaction = {
        "id": f"cmp_{response_id.removeprefix('resp_')}",
        "type": "compaction",
        "encrypted_content": encode_scripted({"summary": summary, "items": len(items)}),
    }
    usage = {
        "input_tokens": (request_bytes + 3) // 4,
        "cached_tokens": 0,
        "output_tokens": (len(summary) + 3) // 4,
        "reasoning_tokens": 0,
    }
    usage.update(entry.usage or {})
    return {
        "id": response_id,
        "object": "response.compaction",
        "created_at": int(time.time()),
        "output": [*kept, compaction],
        "usage": _responses_usage(usage),
    }
