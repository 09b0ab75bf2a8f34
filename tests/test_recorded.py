"""Real traffic recorded by other projects (../shared/recorded/), replayed byte for byte
through the scripted server, parses into the right items; our own request bodies for the
same conversations match what those clients sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from jupyter_codexmax import errors
from jupyter_codexmax.config import CodexMax
from jupyter_codexmax.providers import ModelRequest, ModelResponse, open_provider
from jupyter_codexmax.providers.chat import items_to_messages
from jupyter_codexmax.providers.items import (
    function_call_output,
    parse_tool_arguments,
    user_message,
)
from jupyter_codexmax.testing import ScriptedModelServer

pytestmark = pytest.mark.anyio


def interactions(shared: Path, name: str) -> list[dict[str, Any]]:
    data = yaml.safe_load((shared / "recorded" / name).read_text())
    return list(data["interactions"])


def raw_step(response: dict[str, Any]) -> dict[str, Any]:
    """A scripted step that sends a recorded response exactly."""
    status = response["status"]["code"]
    content_type = response.get("headers", {}).get("content-type", ["application/json"])[0]
    if "parsed_body" in response:
        body: Any = json.dumps(response["parsed_body"])
    else:
        body = response["body"]["string"]
    return {"raw": {"status": status, "content_type": content_type, "body": body}}


async def replay(
    settings: CodexMax,
    server: ScriptedModelServer,
    steps: list[dict[str, Any]],
    provider: str,
    request: ModelRequest | None = None,
) -> ModelResponse:
    settings.provider = provider
    settings.max_retries = 0
    server.load(steps)
    async with open_provider(settings) as model:
        return await model.complete(request or ModelRequest(input=[user_message("hi")]))


def sse_file(shared: Path, name: str) -> dict[str, Any]:
    return {
        "raw": {
            "status": 200,
            "content_type": "text/event-stream",
            "body": (shared / "recorded" / name).read_text(),
        }
    }


# -- Chat Completions ------------------------------------------------------------------------


async def test_chat_single_tool_call(
    shared: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    result = await replay(
        scripted_settings,
        scripted_server,
        [sse_file(shared, "oaipy_chat_stream_single_tool_call.sse")],
        "chat",
    )
    (call,) = result.function_calls
    assert call["name"] == "get_weather"
    assert call["call_id"] == "call_4XzlGBLtUe9dy3GVNV4jhq7h"
    assert parse_tool_arguments(call) == {"city": "New York City"}
    assert result.usage is not None
    assert result.usage.total_tokens > 0


async def test_chat_parallel_tool_calls(
    shared: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    result = await replay(
        scripted_settings,
        scripted_server,
        [sse_file(shared, "oaipy_chat_stream_parallel_tool_calls.sse")],
        "chat",
    )
    calls = result.function_calls
    assert len(calls) == 2
    assert all(c["name"] and c["call_id"].startswith("call_") for c in calls)
    assert [sorted(parse_tool_arguments(c)) for c in calls] == [
        sorted(json.loads(c["arguments"])) for c in calls
    ]
    assert calls[0]["call_id"] != calls[1]["call_id"]


async def test_chat_text(
    shared: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    raw = (shared / "recorded" / "oaipy_chat_stream_text.sse").read_text()
    expected = "".join(
        (json.loads(line[6:])["choices"] or [{}])[0].get("delta", {}).get("content") or ""
        for line in raw.splitlines()
        if line.startswith("data: {")
    )
    result = await replay(
        scripted_settings, scripted_server, [sse_file(shared, "oaipy_chat_stream_text.sse")], "chat"
    )
    assert result.text == expected
    assert expected
    assert result.status == "completed"
    assert result.usage is not None
    assert result.usage.input_tokens > 0


async def test_chat_finish_length_is_incomplete(
    shared: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    result = await replay(
        scripted_settings,
        scripted_server,
        [sse_file(shared, "oaipy_chat_stream_finish_length.sse")],
        "chat",
    )
    assert (result.status, result.incomplete_reason) == ("incomplete", "max_output_tokens")
    assert result.usage is not None
    assert result.usage.output_tokens == 1


async def test_chat_n3_choices_reads_choice_zero(
    shared: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    raw = (shared / "recorded" / "oaipy_chat_stream_n3_choices.sse").read_text()
    expected = ""
    for line in raw.splitlines():
        if line.startswith("data: {"):
            for choice in json.loads(line[6:])["choices"]:
                if choice["index"] == 0:
                    expected += choice["delta"].get("content") or ""
    result = await replay(
        scripted_settings,
        scripted_server,
        [sse_file(shared, "oaipy_chat_stream_n3_choices.sse")],
        "chat",
    )
    assert result.text == expected


async def test_chat_2026_tool_call_round_trip(
    shared: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    turns = interactions(shared, "pai_chat_stream_tool_call_2026.yaml")
    first = await replay(
        scripted_settings, scripted_server, [raw_step(turns[0]["response"])], "chat"
    )
    (call,) = first.function_calls
    assert (call["name"], parse_tool_arguments(call)) == ("get_capital", {"country": "UK"})
    # Our messages for the next turn are the ones the recorded client sent.
    question = turns[0]["request"]["parsed_body"]["messages"][0]["content"]
    items = [user_message(question), call, function_call_output(call["call_id"], "London")]
    ours = items_to_messages("", items)
    recorded = turns[1]["request"]["parsed_body"]["messages"]
    recorded[1].pop("content")  # they send content: null; we leave it out (spec-valid both ways)
    assert ours == recorded
    second = await replay(
        scripted_settings, scripted_server, [raw_step(turns[1]["response"])], "chat"
    )
    assert "London" in second.text


# -- Responses API ---------------------------------------------------------------------------


async def test_responses_function_call_then_text(
    shared: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    turns = interactions(shared, "pai_resp_stream_fc_gpt4o.yaml")
    first = await replay(
        scripted_settings, scripted_server, [raw_step(turns[0]["response"])], "responses"
    )
    (call,) = first.function_calls
    recorded_call = turns[1]["request"]["parsed_body"]["input"][1]
    assert call["name"] == recorded_call["name"]
    assert json.loads(call["arguments"]) == json.loads(recorded_call["arguments"])
    assert first.usage is not None
    assert first.usage.total_tokens > 0
    second = await replay(
        scripted_settings, scripted_server, [raw_step(turns[1]["response"])], "responses"
    )
    assert second.text
    assert second.items[0]["type"] == "message"


async def test_responses_reasoning_keeps_final_encrypted_content(
    shared: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    (turn,) = interactions(shared, "pai_resp_stream_reasoning_fc_gpt5.yaml")
    events = [
        json.loads(line[6:])
        for line in turn["response"]["body"]["string"].splitlines()
        if line.startswith("data: ")
    ]
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    added = [e["item"] for e in events if e["type"] == "response.output_item.added"]
    assert added[0]["encrypted_content"] != done[0]["encrypted_content"]
    usage = next(e for e in events if e["type"] == "response.completed")["response"]["usage"]

    result = await replay(
        scripted_settings, scripted_server, [raw_step(turn["response"])], "responses"
    )
    reasoning, call = result.items
    assert reasoning == done[0], "the finished item, verbatim (not the one from .added)"
    assert call == done[1]
    assert parse_tool_arguments(call) == json.loads(done[1]["arguments"])
    assert result.usage is not None
    assert result.usage.reasoning_tokens == usage["output_tokens_details"]["reasoning_tokens"] > 0
    assert result.usage.input_tokens == usage["input_tokens"]


async def test_responses_non_streamed_reasoning_replay(
    shared: Path,
    scripted_settings: CodexMax,
    scripted_server: ScriptedModelServer,
    spec_validator: Any,
) -> None:
    turns = interactions(shared, "pai_resp_reasoning_fc_replay_gpt5.yaml")
    first = await replay(
        scripted_settings, scripted_server, [raw_step(turns[0]["response"])], "responses"
    )
    reasoning, call = first.items
    assert reasoning["type"] == "reasoning"
    assert reasoning["encrypted_content"].startswith("gAAAA")
    assert call["type"] == "function_call"
    assert first.usage is not None
    # The recorded client's next request replays these items and adds the output: ours too.
    recorded_input = turns[1]["request"]["parsed_body"]["input"]
    ours = scripted_settings
    ours.model = "gpt-5"
    provider = open_provider(ours)
    body = provider.build_body(
        ModelRequest(
            input=[
                user_message(recorded_input[0]["content"]),
                reasoning,
                call,
                function_call_output(call["call_id"], recorded_input[3]["output"]),
            ]
        )
    )
    await provider.aclose()
    assert body["input"][1] == recorded_input[1], "reasoning replayed exactly"
    # pydantic-ai drops the call's "status"; we send the item verbatim, status included.
    assert {k: v for k, v in body["input"][2].items() if k != "status"} == recorded_input[2]
    assert body["input"][3]["output"] == recorded_input[3]["output"]
    assert spec_validator("CreateResponse", body) == []


async def test_compact_endpoint(
    shared: Path,
    scripted_settings: CodexMax,
    scripted_server: ScriptedModelServer,
    spec_validator: Any,
) -> None:
    turns = interactions(shared, "pai_resp_compact_endpoint.yaml")
    compact_turn = next(t for t in turns if t["request"]["uri"].endswith("/compact"))
    recorded_output = compact_turn["response"]["parsed_body"]["output"]
    scripted_settings.max_retries = 0
    scripted_server.load(
        {
            "steps": [],
            "compactions": [
                {"fault": "http", "status": 200, "body": compact_turn["response"]["parsed_body"]}
            ],
        }
    )
    history = [
        {"role": m["role"], "content": m["content"]}
        for m in compact_turn["request"]["parsed_body"]["input"]
    ]
    async with open_provider(scripted_settings) as provider:
        result = await provider.compact(ModelRequest(input=history))
    assert result.items == recorded_output
    item = result.compaction_item
    assert item is not None
    assert item["encrypted_content"] == recorded_output[-1]["encrypted_content"]
    assert result.usage is not None
    assert result.usage.input_tokens > 0
    # The next request sends the compaction item back as the recorded client did.
    next_turn = turns[-1]["request"]["parsed_body"]
    body = open_provider(scripted_settings).build_body(ModelRequest(input=result.items))
    assert item in next_turn["input"]
    assert item in body["input"]
    assert spec_validator("CreateResponse", body) == []


async def test_http_400_error(
    shared: Path, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    (turn,) = interactions(shared, "pai_resp_http_400_error.yaml")
    with pytest.raises(errors.InvalidRequestError) as info:
        await replay(scripted_settings, scripted_server, [raw_step(turn["response"])], "responses")
    err = info.value
    assert (err.status, err.code, err.param, err.type) == (
        400,
        "decimal_below_min_value",
        "temperature",
        "invalid_request_error",
    )
    assert "Invalid 'temperature'" in str(err)
    assert len(scripted_server.requests) == 1


async def test_input_image_request_and_answer(
    shared: Path,
    scripted_settings: CodexMax,
    scripted_server: ScriptedModelServer,
    spec_validator: Any,
) -> None:
    (turn,) = interactions(shared, "pai_resp_input_image_url.yaml")
    recorded = turn["request"]["parsed_body"]["input"][0]
    url = recorded["content"][1]["image_url"]
    message = user_message("hello", images=[url])
    assert message["content"] == recorded["content"]
    result = await replay(
        scripted_settings,
        scripted_server,
        [raw_step(turn["response"])],
        "responses",
        ModelRequest(input=[message]),
    )
    assert "potato" in result.text
    assert spec_validator("CreateResponse", scripted_server.requests[0].body) == []


# -- Anthropic: not an API we speak; a clear error, not a hang or a retry loop ---------------


@pytest.mark.parametrize(
    "name", ["pai_anthropic_stream_thinking.yaml", "pai_anthropic_stream_input_json_delta.yaml"]
)
@pytest.mark.parametrize("provider", ["responses", "chat"])
async def test_anthropic_streams_are_refused_clearly(
    name: str,
    provider: str,
    shared: Path,
    scripted_settings: CodexMax,
    scripted_server: ScriptedModelServer,
) -> None:
    (turn, *_) = interactions(shared, name)
    scripted_settings.max_retries = 3
    with pytest.raises(errors.ProtocolError, match="OpenAI-compatible"):
        await replay(scripted_settings, scripted_server, [raw_step(turn["response"])], provider)
    assert len(scripted_server.requests) == 1


def test_every_recorded_file_is_covered(shared: Path) -> None:
    names = {p.name for p in (shared / "recorded").iterdir() if p.suffix in (".sse", ".yaml")}
    source = Path(__file__).read_text()
    assert {n for n in names if n not in source} == set()
