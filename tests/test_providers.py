"""Both providers against the scripted model server: what streams out, what is sent."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from jupyter_codexmax.config import CodexMax
from jupyter_codexmax.providers import (
    Completed,
    ModelRequest,
    OutputItem,
    ReasoningDelta,
    TextDelta,
    ToolCallStarted,
    ToolSpec,
    open_provider,
)
from jupyter_codexmax.providers.items import (
    function_call_output,
    parse_tool_arguments,
    user_message,
)
from jupyter_codexmax.testing import ScriptedModelServer, decode_scripted

pytestmark = pytest.mark.anyio

Validator = Callable[[str, dict[str, Any]], list[str]]

RUN_CELL = ToolSpec(
    name="run_cell",
    description="Run a notebook cell and return its outputs.",
    parameters={
        "type": "object",
        "properties": {"cell_id": {"type": "string"}},
        "required": ["cell_id"],
        "additionalProperties": False,
    },
    strict=True,
)

STEP = {
    "reasoning": ["First, look at the notebook.", "Then run the cell."],
    "text": "I will run the first cell now.",
    "calls": [{"name": "run_cell", "arguments": {"cell_id": "abc123"}, "id": "call_1"}],
    "usage": {
        "input_tokens": 1500,
        "cached_tokens": 1024,
        "output_tokens": 80,
        "reasoning_tokens": 30,
    },
    "chunk": 5,
}

IMAGE = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9Q"
    "DwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


async def collect_events(settings: CodexMax, request: ModelRequest) -> list[Any]:
    async with open_provider(settings) as provider, provider.stream(request) as stream:
        return [event async for event in stream]


@pytest.mark.parametrize("provider", ["responses", "chat"])
async def test_stream_text_reasoning_calls_usage(
    provider: str, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_settings.provider = provider
    scripted_server.load([STEP])
    request = ModelRequest(
        input=[user_message("Run the first cell")], instructions="Be useful.", tools=[RUN_CELL]
    )
    events = await collect_events(scripted_settings, request)

    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "I will run the first cell now."
    assert sum(isinstance(e, TextDelta) for e in events) > 3, "text arrives in pieces"
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert reasoning == "First, look at the notebook.\n\nThen run the cell."
    assert [(e.call_id, e.name) for e in events if isinstance(e, ToolCallStarted)] == [
        ("call_1", "run_cell")
    ]
    items = [e.item for e in events if isinstance(e, OutputItem)]
    assert [i["type"] for i in items] == ["reasoning", "message", "function_call"]
    call = items[-1]
    assert call["call_id"] == "call_1"
    assert parse_tool_arguments(call) == {"cell_id": "abc123"}
    done = events[-1]
    assert isinstance(done, Completed)
    assert done.status == "completed"
    assert done.usage is not None
    assert (
        done.usage.input_tokens,
        done.usage.cached_input_tokens,
        done.usage.output_tokens,
        done.usage.reasoning_tokens,
        done.usage.total_tokens,
    ) == (1500, 1024, 80, 30, 1580)
    assert done.model == "scripted:gpt-5.1-codex-max"


async def test_responses_request_shape(
    scripted_settings: CodexMax, scripted_server: ScriptedModelServer, spec_validator: Validator
) -> None:
    scripted_server.load([STEP, {"text": "Done."}])
    request = ModelRequest(
        input=[user_message("Look at this plot", images=[IMAGE])],
        instructions="You are a notebook agent.",
        tools=[RUN_CELL],
        prompt_cache_key="session-1234",
    )
    async with open_provider(scripted_settings) as provider:
        first = await provider.complete(request)
        reasoning = first.items[0]
        assert decode_scripted(reasoning["encrypted_content"]) == {
            "reasoning": ["First, look at the notebook.", "Then run the cell."]
        }
        follow = ModelRequest(
            input=[*request.input, *first.items, function_call_output("call_1", "Out[1]: 42")],
            instructions=request.instructions,
            tools=[RUN_CELL],
            prompt_cache_key="session-1234",
        )
        second = await provider.complete(follow)
    assert second.text == "Done."

    sent = [r.body for r in scripted_server.requests_to("responses")]
    body = sent[0]
    assert body["model"] == "gpt-5.1-codex-max"
    assert body["instructions"] == "You are a notebook agent."
    assert body["stream"] is True
    assert body["store"] is False
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert body["prompt_cache_key"] == "session-1234"
    assert body["tools"] == [
        {
            "type": "function",
            "name": "run_cell",
            "description": RUN_CELL.description,
            "parameters": RUN_CELL.parameters,
            "strict": True,
        }
    ]
    assert body["input"][0]["content"][1] == {
        "type": "input_image",
        "image_url": IMAGE,
        "detail": "auto",
    }
    # The second request carries the first answer's items verbatim, encrypted reasoning too.
    assert sent[1]["input"][1:4] == first.items
    for number, sent_body in enumerate(sent):
        assert spec_validator("CreateResponse", sent_body) == [], number
    headers = scripted_server.requests[0].headers
    assert headers["authorization"] == "********"
    assert headers["user-agent"].startswith("jupyter-codexmax/")


async def test_chat_request_shape(
    scripted_settings: CodexMax, scripted_server: ScriptedModelServer, spec_validator: Validator
) -> None:
    scripted_settings.provider = "chat"
    scripted_settings.model = "gpt-5"
    scripted_server.load([STEP, {"text": "Done."}])
    request = ModelRequest(
        input=[user_message("Look", images=[IMAGE])],
        instructions="You are a notebook agent.",
        tools=[RUN_CELL],
    )
    async with open_provider(scripted_settings) as provider:
        first = await provider.complete(request)
        follow = ModelRequest(
            input=[*request.input, *first.items, function_call_output("call_1", "42")],
            instructions=request.instructions,
            tools=[RUN_CELL],
        )
        await provider.complete(follow)
    sent = [r.body for r in scripted_server.requests_to("chat")]
    assert sent[0]["stream_options"] == {"include_usage": True}
    assert sent[0]["reasoning_effort"] == "medium"
    assert sent[0]["messages"][0] == {"role": "system", "content": "You are a notebook agent."}
    assert sent[0]["messages"][1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": IMAGE, "detail": "auto"},
    }
    assert sent[1]["messages"][2:] == [
        {
            "role": "assistant",
            "content": "I will run the first cell now.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "run_cell", "arguments": '{"cell_id": "abc123"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    ]
    for sent_body in sent:
        assert spec_validator("CreateChatCompletionRequest", sent_body) == []


async def test_compact_request_and_result(
    scripted_settings: CodexMax, scripted_server: ScriptedModelServer, spec_validator: Validator
) -> None:
    scripted_server.load(
        {
            "steps": [{"text": "after compaction"}],
            "compactions": [{"summary": "We plotted the data."}],
        }
    )
    history = [
        user_message("Plot the data"),
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Plotted.", "annotations": []}],
        },
    ]
    async with open_provider(scripted_settings) as provider:
        assert provider.supports_remote_compaction
        result = await provider.compact(ModelRequest(input=history, instructions="Agent."))
        item = result.compaction_item
        assert item is not None
        assert decode_scripted(item["encrypted_content"])["summary"] == "We plotted the data."
        assert [i.get("role") for i in result.items[:-1]] == ["user"]
        answer = await provider.complete(ModelRequest(input=result.items, instructions="Agent."))
    assert answer.text == "after compaction"
    compact_body = scripted_server.requests_to("compact")[0].body
    assert spec_validator("CompactResponseMethodPublicBody", compact_body) == []
    next_body = scripted_server.requests_to("responses")[0].body
    assert next_body["input"][-1] == item, "the compaction item goes back verbatim"
    assert spec_validator("CreateResponse", next_body) == []


async def test_every_reasoning_effort_body_validates(
    scripted_settings: CodexMax, spec_validator: Validator
) -> None:
    for model, effort in [
        ("gpt-5.1-codex-max", "xhigh"),
        ("gpt-5.1", "none"),
        ("gpt-5", "minimal"),
        ("gpt-5.1-codex-max", "low"),
    ]:
        for name in ("responses", "chat"):
            scripted_settings.provider = name
            provider = open_provider(scripted_settings)
            body = provider.build_body(
                ModelRequest(input=[user_message("hi")], model=model, effort=effort)
            )
            schema = "CreateResponse" if name == "responses" else "CreateChatCompletionRequest"
            assert spec_validator(schema, body) == [], (model, effort, name)
            await provider.aclose()


async def test_non_reasoning_model_sends_no_reasoning(scripted_settings: CodexMax) -> None:
    provider = open_provider(scripted_settings)
    body = provider.build_body(ModelRequest(input=[user_message("hi")], model="gpt-4o"))
    assert "reasoning" not in body
    assert "include" not in body
    await provider.aclose()


@pytest.mark.parametrize(
    "options",
    [
        {"reasoning_field": "reasoning"},
        {"whole_tool_calls": True},
        {"comments": True},
        {"no_done": True},
    ],
)
async def test_chat_server_variants(
    options: dict[str, Any], scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_settings.provider = "chat"
    scripted_server.load([{**STEP, "chat": options}])
    async with open_provider(scripted_settings) as provider:
        result = await provider.complete(ModelRequest(input=[user_message("go")]))
    assert result.text == "I will run the first cell now."
    assert parse_tool_arguments(result.function_calls[0]) == {"cell_id": "abc123"}
    assert result.items[0]["content"][0]["text"].startswith("First, look")
    assert result.usage is not None
    assert result.usage.input_tokens == 1500


@pytest.mark.parametrize("provider", ["responses", "chat"])
async def test_non_streamed_json_answer_is_accepted(
    provider: str, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    """Some servers ignore ``stream: true`` and answer with one JSON object."""
    from jupyter_codexmax.testing import render
    from jupyter_codexmax.testing.script import Reply, load_script

    reply = load_script([STEP]).steps[0]
    assert isinstance(reply, Reply)
    body = {"model": "m", "include": ["reasoning.encrypted_content"]}
    whole = (
        render.responses_object(reply, body, "resp_1", 10)
        if provider == "responses"
        else render.chat_object(reply, body, "chatcmpl_1", 10)
    )
    scripted_settings.provider = provider
    scripted_server.load(
        [{"raw": {"status": 200, "content_type": "application/json", "body": whole}}]
    )
    async with open_provider(scripted_settings) as provider_obj:
        result = await provider_obj.complete(ModelRequest(input=[user_message("go")]))
    assert result.text == "I will run the first cell now."
    assert parse_tool_arguments(result.function_calls[0]) == {"cell_id": "abc123"}


async def test_incomplete_response(
    scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_server.load([{"text": "cut sh", "status": "incomplete"}])
    async with open_provider(scripted_settings) as provider:
        result = await provider.complete(ModelRequest(input=[user_message("go")]))
    assert (result.status, result.incomplete_reason, result.text) == (
        "incomplete",
        "max_output_tokens",
        "cut sh",
    )


async def test_azure_style_request(
    scripted_settings: CodexMax,
    scripted_server: ScriptedModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The key in ``api-key``, the api-version query, a deployment name as the model."""
    scripted_server.load([{"text": "hello from azure"}])
    scripted_server.api_key = "azure-key-abcdef123456"
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key-abcdef123456")
    scripted_settings.api_key_env = "AZURE_OPENAI_API_KEY"
    scripted_settings.api_key_header = "api-key"
    scripted_settings.extra_query = {"api-version": "preview"}
    scripted_settings.model = "my-deployment"
    async with open_provider(scripted_settings) as provider:
        result = await provider.complete(ModelRequest(input=[user_message("hi")]))
    assert result.text == "hello from azure"
    record = scripted_server.requests[0]
    assert record.query == {"api-version": ["preview"]}
    assert record.headers["api-key"] == "********"
    assert "authorization" not in record.headers


async def test_tool_arguments_cut_off_are_an_error_for_the_model(
    scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    from jupyter_codexmax.errors import ToolArgumentsError

    scripted_server.load([{"calls": [{"name": "run_cell", "arguments": '{"cell_id": "ab'}]}])
    async with open_provider(scripted_settings) as provider:
        result = await provider.complete(ModelRequest(input=[user_message("go")]))
    call = result.function_calls[0]
    assert call["arguments"] == '{"cell_id": "ab'
    with pytest.raises(ToolArgumentsError, match="cut off") as info:
        parse_tool_arguments(call)
    assert info.value.tool == "run_cell"
    with pytest.raises(ToolArgumentsError, match="must be a JSON object"):
        parse_tool_arguments({"name": "x", "arguments": "[1, 2]"})


def test_items_to_messages_edge_cases() -> None:
    from jupyter_codexmax.providers.chat import items_to_messages

    items: list[dict[str, Any]] = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "d"}]},
        {"role": "user", "content": "plain string content"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x"},
        {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "b", "name": "g", "arguments": "{}"},
        function_call_output(
            "a",
            [
                {"type": "input_text", "text": "out a"},
                {"type": "input_image", "image_url": IMAGE, "detail": "low"},
            ],
        ),
        function_call_output("b", "out b"),
        {"type": "compaction", "encrypted_content": "opaque"},
        user_message("next"),
    ]
    messages = items_to_messages("sys", items, images_ok=True)
    # One system message, first; user and assistant alternate (tool messages between).
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "tool", "user"]
    assert messages[0]["content"] == "sys\n\nd"
    assert "content" not in messages[2]
    assert len(messages[2]["tool_calls"]) == 2
    last = messages[5]["content"]
    assert last[1]["image_url"]["detail"] == "low", "tool images, merged with the next user text"
    assert last[-1] == {"type": "text", "text": "next"}
    no_images = items_to_messages("", items, images_ok=False)
    assert "left out" in json.dumps(no_images)


def test_late_developer_messages_become_user_messages() -> None:
    from jupyter_codexmax.providers.chat import items_to_messages

    messages = items_to_messages(
        "sys",
        [
            user_message("first"),
            {"type": "message", "role": "assistant", "content": "ok"},
            user_message("second"),
            user_message("note from the agent", role="developer"),
        ],
    )
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[-1]["content"] == "second\n\n[developer instructions]\nnote from the agent"


async def test_chat_tool_call_ids_arriving_late_and_calls_without_index(
    scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    """Two server quirks: the call's id only in a later delta; two calls in one chunk with
    neither index nor id."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        body = {
            "id": "c",
            "object": "chat.completion.chunk",
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(body)}\n\n"

    stream = "".join(
        [
            chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": ""}}]}),
            chunk(
                {"tool_calls": [{"index": 0, "id": "call_late", "function": {"arguments": "{}"}}]}
            ),
            chunk({}, "tool_calls"),
            "data: [DONE]\n\n",
        ]
    )
    scripted_settings.provider = "chat"
    scripted_server.load(
        [{"raw": {"status": 200, "content_type": "text/event-stream", "body": stream}}]
    )
    async with open_provider(scripted_settings) as provider:
        result = await provider.complete(ModelRequest(input=[user_message("go")]))
    assert [c["call_id"] for c in result.function_calls] == ["call_late"]

    stream = "".join(
        [
            chunk(
                {
                    "tool_calls": [
                        {"function": {"name": "a", "arguments": '{"x": 1}'}},
                        {"function": {"name": "b", "arguments": '{"y": 2}'}},
                    ]
                }
            ),
            chunk({}, "tool_calls"),
            "data: [DONE]\n\n",
        ]
    )
    scripted_server.load(
        [{"raw": {"status": 200, "content_type": "text/event-stream", "body": stream}}]
    )
    async with open_provider(scripted_settings) as provider:
        result = await provider.complete(ModelRequest(input=[user_message("go")]))
    calls = result.function_calls
    assert [(c["name"], parse_tool_arguments(c)) for c in calls] == [
        ("a", {"x": 1}),
        ("b", {"y": 2}),
    ]
    assert calls[0]["call_id"] != calls[1]["call_id"]
