"""Scripts for the scripted model server: what to answer, request by request.

A script is JSON (the format is written down in ``docs/scripted-server.md``)::

    {"steps": [
        {"reasoning": "Look at the data first.", "text": "Hello!",
         "usage": {"input_tokens": 1200, "output_tokens": 40}},
        {"calls": [{"name": "run_cell", "arguments": {"code": "1 + 1"}}]},
        {"fault": "http", "status": 429, "headers": {"retry-after": "1"}},
        {"fault": "drop", "after": 3}
     ],
     "compactions": [{"summary": "We loaded the data and fixed the plot."}]}

Model requests (``/responses``, ``/chat/completions``) take the next step; compaction
requests (``/responses/compact``) take the next entry of ``compactions``, or, when there
is none, a compaction made up from the request. The same step renders as Responses API
events or Chat Completions chunks, whichever endpoint asked.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

__all__ = [
    "Compaction",
    "Fault",
    "Reply",
    "Script",
    "ScriptError",
    "decode_scripted",
    "load_script",
]

ENCRYPTED_PREFIX = "scripted:"

_REPLY_KEYS = {
    "reasoning",
    "text",
    "calls",
    "output",
    "usage",
    "status",
    "incomplete_reason",
    "chunk",
    "delay",
    "repeat",
    "expect",
    "chat",
    "comment",
}
_FAULT_KEYS = {
    "fault",
    "status",
    "headers",
    "body",
    "content_type",
    "after",
    "seconds",
    "data",
    "code",
    "message",
    "type",
    "shape",
    "repeat",
    "expect",
    "comment",
    "text",
    "reasoning",
    "calls",
    "chunk",
    "delay",
}
_FAULTS = ("http", "drop", "stall", "malformed", "stream_error")
_CHAT_KEYS = {"reasoning_field", "whole_tool_calls", "comments", "no_done"}
_EXPECT_KEYS = {"endpoint", "model", "contains", "effort", "tools"}
_USAGE_KEYS = {"input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens"}


class ScriptError(ConfigError):
    """A script the scripted server cannot follow."""


def encode_scripted(payload: Mapping[str, Any]) -> str:
    """Opaque-looking content that the scripted server (and tests) can read back."""
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return ENCRYPTED_PREFIX + base64.urlsafe_b64encode(raw).decode()


def decode_scripted(content: str) -> dict[str, Any]:
    """What :func:`encode_scripted` put into encrypted content (reasoning, compaction)."""
    if not content.startswith(ENCRYPTED_PREFIX):
        raise ValueError("not content made by the scripted server")
    data = json.loads(base64.urlsafe_b64decode(content[len(ENCRYPTED_PREFIX) :]))
    if not isinstance(data, dict):
        raise ValueError("scripted content is not an object")
    return data


@dataclass(frozen=True)
class Part:
    """One output item of a reply: ``reasoning`` (summary parts), ``text``, or ``call``."""

    kind: str
    texts: tuple[str, ...] = ()
    name: str = ""
    arguments: str = ""
    call_id: str = ""


@dataclass(frozen=True)
class Reply:
    """A scripted answer."""

    parts: tuple[Part, ...]
    usage: Mapping[str, int] | None = None
    status: str = "completed"
    incomplete_reason: str = "max_output_tokens"
    chunk: int = 12
    delay: float = 0.0
    expect: Mapping[str, Any] = field(default_factory=dict)
    chat: Mapping[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "".join(t for p in self.parts if p.kind == "text" for t in p.texts)

    @property
    def reasoning(self) -> str:
        return "\n\n".join(t for p in self.parts if p.kind == "reasoning" for t in p.texts)

    def usage_for(self, request_bytes: int) -> dict[str, int]:
        """The usage to report: the scripted numbers, else an estimate from sizes."""
        out_chars = len(self.text) + sum(len(p.arguments) + len(p.name) for p in self.parts)
        reasoning = math.ceil(len(self.reasoning) / 4)
        usage = {
            "input_tokens": math.ceil(request_bytes / 4),
            "cached_tokens": 0,
            "output_tokens": math.ceil(out_chars / 4) + reasoning,
            "reasoning_tokens": reasoning,
        }
        usage.update(self.usage or {})
        return usage


@dataclass(frozen=True)
class Fault:
    """A scripted failure."""

    kind: str
    status: int = 500
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    content_type: str | None = None
    after: int = 0
    seconds: float = 3600.0
    data: str = "{this is not json"
    code: str | None = None
    message: str = "scripted error"
    type: str | None = None
    shape: str = "nested"
    reply: Reply | None = None
    expect: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Compaction:
    """A scripted answer to ``/responses/compact``."""

    summary: str | None = None
    keep_user_messages: bool = True
    usage: Mapping[str, int] | None = None
    fault: Fault | None = None


Step = Reply | Fault


@dataclass
class Conversation:
    """Steps for the requests whose input contains ``match`` (one agent among several)."""

    match: str
    steps: list[Step]
    position: int = 0


@dataclass
class Script:
    """A parsed script: the model steps and the compaction answers, in order."""

    steps: list[Step] = field(default_factory=list)
    compactions: list[Compaction] = field(default_factory=list)
    after_last: str = "error"
    conversations: list[Conversation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._next_step = 0
        self._next_compaction = 0

    @property
    def remaining(self) -> int:
        return (
            len(self.steps)
            - self._next_step
            + sum(len(c.steps) - c.position for c in self.conversations)
        )

    def next_step(self, request_text: str = "") -> Step | None:
        """The next step for a request: from the first conversation whose ``match`` is in
        the request, else from the main steps."""
        for conversation in self.conversations:
            if conversation.match in request_text:
                if conversation.position < len(conversation.steps):
                    conversation.position += 1
                    return conversation.steps[conversation.position - 1]
                if self.after_last == "repeat" and conversation.steps:
                    return conversation.steps[-1]
                return None
        if self._next_step < len(self.steps):
            step = self.steps[self._next_step]
            self._next_step += 1
            return step
        if self.after_last == "repeat" and self.steps:
            return self.steps[-1]
        return None

    def next_compaction(self) -> Compaction:
        if self._next_compaction < len(self.compactions):
            entry = self.compactions[self._next_compaction]
            self._next_compaction += 1
            return entry
        return Compaction()


def load_script(source: Any, *, name: str = "script") -> Script:
    """A :class:`Script` from parsed JSON (a dict or a bare list of steps), a JSON string,
    or a path. Mistakes raise :class:`ScriptError` naming the step and the key."""
    if isinstance(source, Script):
        return source
    if isinstance(source, (str, bytes)) and not str(source).lstrip().startswith(("{", "[")):
        path = str(source)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise ScriptError(f"cannot read script {path}: {exc.strerror or exc}") from exc
        return load_script(_parse_json(text, path), name=path)
    if isinstance(source, (str, bytes)):
        return load_script(_parse_json(source, name), name=name)
    if isinstance(source, list):
        source = {"steps": source}
    if not isinstance(source, dict):
        raise ScriptError(f'{name}: a script is a JSON object with "steps" (or a list of steps)')
    unknown = set(source) - {"steps", "compactions", "after_last", "comment", "conversations"}
    if unknown:
        raise ScriptError(
            f"{name}: unknown key(s) {sorted(unknown)}; use steps, compactions, after_last"
        )
    steps = _steps(source.get("steps", []), name)
    conversations: list[Conversation] = []
    raw_conversations = source.get("conversations", [])
    if not isinstance(raw_conversations, list):
        raise ScriptError(f'{name}: "conversations" must be a list')
    for number, raw in enumerate(raw_conversations, 1):
        where = f"{name}: conversation {number}"
        if not isinstance(raw, dict) or not isinstance(raw.get("match"), str) or not raw["match"]:
            raise ScriptError(f'{where}: needs "match" (text found in its requests) and "steps"')
        _check_keys(raw, {"match", "steps", "comment"}, where)
        conversations.append(Conversation(raw["match"], _steps(raw.get("steps", []), where)))
    compactions_raw = source.get("compactions", [])
    if not isinstance(compactions_raw, list):
        raise ScriptError(f'{name}: "compactions" must be a list')
    compactions = [
        _compaction(raw, f"{name}: compaction {number}")
        for number, raw in enumerate(compactions_raw, 1)
    ]
    after_last = source.get("after_last", "error")
    if after_last not in ("error", "repeat"):
        raise ScriptError(f'{name}: "after_last" is "error" or "repeat"')
    return Script(steps, compactions, after_last, conversations)


def _steps(steps_raw: Any, name: str) -> list[Step]:
    if not isinstance(steps_raw, list):
        raise ScriptError(f'{name}: "steps" must be a list')
    steps: list[Step] = []
    for number, raw in enumerate(steps_raw, 1):
        where = f"{name}: step {number}"
        if isinstance(raw, dict) and "raw" in raw:
            step: Step = _raw(raw, where)
        elif isinstance(raw, dict) and "fault" in raw:
            step = _fault(raw, where)
        else:
            step = _reply(raw, where)
        repeat = raw.get("repeat", 1) if isinstance(raw, dict) else 1
        if not isinstance(repeat, int) or repeat < 1:
            raise ScriptError(f'{where}: "repeat" must be a whole number of at least 1')
        steps.extend([step] * repeat)
    return steps


def _parse_json(text: str | bytes, name: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ScriptError(f"{name} is not valid JSON: {exc}") from exc


def _check_keys(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise ScriptError(
            f"{where}: unknown key(s) {sorted(unknown)} (known: {', '.join(sorted(allowed))})"
        )


def _texts(value: Any, where: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ScriptError(f'{where}: "{key}" must be text or a list of texts')


def _call(raw: Any, where: str, number: int) -> Part:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise ScriptError(f'{where}: each call needs a "name" (and "arguments")')
    _check_keys(raw, {"name", "arguments", "id"}, where)
    arguments = raw.get("arguments", {})
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    call_id = raw.get("id") or f"call_scripted_{number}"
    return Part("call", name=raw["name"], arguments=arguments, call_id=str(call_id))


def _reply(raw: Any, where: str) -> Reply:
    if isinstance(raw, str):
        raw = {"text": raw}
    if not isinstance(raw, dict):
        raise ScriptError(f"{where}: a step is an object (or a text answer)")
    _check_keys(raw, _REPLY_KEYS, where)
    parts: list[Part] = []
    if "output" in raw:
        if any(k in raw for k in ("reasoning", "text", "calls")):
            raise ScriptError(f'{where}: use either "output" or reasoning/text/calls, not both')
        if not isinstance(raw["output"], list):
            raise ScriptError(f'{where}: "output" must be a list')
        for entry in raw["output"]:
            if not isinstance(entry, dict) or len(entry) != 1:
                raise ScriptError(
                    f"{where}: each output entry is one of "
                    '{"reasoning": ...}, {"text": ...}, {"call": {...}}'
                )
            ((kind, value),) = entry.items()
            if kind in ("reasoning", "text"):
                parts.append(Part(kind, _texts(value, where, kind)))
            elif kind == "call":
                parts.append(_call(value, where, len(parts) + 1))
            else:
                raise ScriptError(f"{where}: unknown output entry {kind!r}")
    else:
        if "reasoning" in raw:
            parts.append(Part("reasoning", _texts(raw["reasoning"], where, "reasoning")))
        if "text" in raw:
            parts.append(Part("text", ("".join(_texts(raw["text"], where, "text")),)))
        calls = raw.get("calls", [])
        if not isinstance(calls, list):
            raise ScriptError(f'{where}: "calls" must be a list')
        parts.extend(_call(c, where, i) for i, c in enumerate(calls, 1))
    usage = raw.get("usage")
    if usage is not None:
        if not isinstance(usage, dict):
            raise ScriptError(f'{where}: "usage" must be an object')
        _check_keys(usage, _USAGE_KEYS, f"{where} usage")
        if not all(isinstance(v, int) and v >= 0 for v in usage.values()):
            raise ScriptError(f"{where}: usage numbers must be whole numbers")
    chat = raw.get("chat", {})
    if not isinstance(chat, dict):
        raise ScriptError(f'{where}: "chat" must be an object')
    _check_keys(chat, _CHAT_KEYS, f"{where} chat")
    expect = raw.get("expect", {})
    if not isinstance(expect, dict):
        raise ScriptError(f'{where}: "expect" must be an object')
    _check_keys(expect, _EXPECT_KEYS, f"{where} expect")
    status = raw.get("status", "completed")
    if status not in ("completed", "incomplete"):
        raise ScriptError(f'{where}: "status" is "completed" or "incomplete"')
    chunk = raw.get("chunk", 12)
    delay = raw.get("delay", 0.0)
    if not isinstance(chunk, int) or chunk < 1:
        raise ScriptError(f'{where}: "chunk" must be a whole number of characters, at least 1')
    if not isinstance(delay, (int, float)) or delay < 0:
        raise ScriptError(f'{where}: "delay" must be seconds, not negative')
    return Reply(
        parts=tuple(parts),
        usage=usage,
        status=status,
        incomplete_reason=str(raw.get("incomplete_reason", "max_output_tokens")),
        chunk=chunk,
        delay=float(delay),
        expect=expect,
        chat=chat,
    )


def _fault(raw: dict[str, Any], where: str) -> Fault:
    _check_keys(raw, _FAULT_KEYS, where)
    kind = raw["fault"]
    if kind not in _FAULTS:
        raise ScriptError(f"{where}: unknown fault {kind!r} (known: {', '.join(_FAULTS)})")
    reply_fields = {k: raw[k] for k in ("text", "reasoning", "calls", "chunk", "delay") if k in raw}
    reply = _reply(
        reply_fields or {"text": "This partial answer comes from the scripted server."}, where
    )
    headers = raw.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ScriptError(f'{where}: "headers" must map names to text values')
    status = raw.get("status", 500)
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise ScriptError(f'{where}: "status" must be an HTTP status code')
    after = raw.get("after", 0)
    if not isinstance(after, int) or after < 0:
        raise ScriptError(f'{where}: "after" must be a number of events, not negative')
    shape = raw.get("shape", "nested")
    if shape not in ("flat", "nested", "failed"):
        raise ScriptError(f'{where}: "shape" is flat, nested or failed')
    seconds = raw.get("seconds", 3600.0)
    if not isinstance(seconds, (int, float)) or seconds < 0:
        raise ScriptError(f'{where}: "seconds" must not be negative')
    return Fault(
        kind=kind,
        status=status,
        headers=headers,
        body=raw.get("body"),
        content_type=raw.get("content_type"),
        after=after,
        seconds=float(seconds),
        data=str(raw.get("data", "{this is not json")),
        code=raw.get("code"),
        message=str(raw.get("message", "scripted error")),
        type=raw.get("type"),
        shape=shape,
        reply=reply,
        expect=raw.get("expect", {}),
    )


def _raw(raw: dict[str, Any], where: str) -> Fault:
    """A step that sends an exact HTTP answer: ``{"raw": {"status", "headers",
    "content_type", "body"}}``, e.g. to replay recorded traffic."""
    _check_keys(raw, {"raw", "repeat", "expect", "comment"}, where)
    spec = raw["raw"]
    if not isinstance(spec, dict):
        raise ScriptError(f'{where}: "raw" is an object with status, headers, content_type, body')
    _check_keys(spec, {"status", "headers", "content_type", "body"}, f"{where} raw")
    fields = {k: spec[k] for k in ("headers", "content_type", "body") if k in spec}
    return _fault(
        {
            "fault": "http",
            "status": spec.get("status", 200),
            **fields,
            "expect": raw.get("expect", {}),
        },
        where,
    )


def _compaction(raw: Any, where: str) -> Compaction:
    if not isinstance(raw, dict):
        raise ScriptError(f"{where}: a compaction is an object")
    if "fault" in raw:
        return Compaction(fault=_fault(raw, where))
    _check_keys(raw, {"summary", "keep_user_messages", "usage", "comment"}, where)
    summary = raw.get("summary")
    if summary is not None and not isinstance(summary, str):
        raise ScriptError(f'{where}: "summary" must be text')
    return Compaction(
        summary=summary,
        keep_user_messages=bool(raw.get("keep_user_messages", True)),
        usage=raw.get("usage"),
    )


def chunks(text: str, size: int) -> Iterator[str]:
    """``text`` in pieces of ``size`` characters (at least one piece, even if empty)."""
    if not text:
        return
    for start in range(0, len(text), size):
        yield text[start : start + size]
