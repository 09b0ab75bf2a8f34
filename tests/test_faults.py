"""Faults injected by the scripted server, and what the client makes of each."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from jupyter_codexmax import errors
from jupyter_codexmax.config import CodexMax
from jupyter_codexmax.providers import ModelRequest, Retrying, TextDelta, open_provider
from jupyter_codexmax.providers.items import user_message
from jupyter_codexmax.testing import ScriptedModelServer

pytestmark = pytest.mark.anyio

OK = {"text": "Recovered and answered.", "usage": {"input_tokens": 10, "output_tokens": 4}}
REQUEST = ModelRequest(input=[user_message("hello")])
BOTH = pytest.mark.parametrize("provider", ["responses", "chat"])


async def run(settings: CodexMax) -> tuple[str, list[Any]]:
    events: list[Any] = []
    async with open_provider(settings) as provider, provider.stream(REQUEST) as stream:
        async for event in stream:
            events.append(event)
    retry_at = max((i for i, e in enumerate(events) if isinstance(e, Retrying)), default=-1)
    text = "".join(e.text for e in events[retry_at + 1 :] if isinstance(e, TextDelta))
    return text, events


@BOTH
async def test_429_with_retry_after_then_success(
    provider: str, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_settings.provider = provider
    scripted_server.load(
        [
            {
                "fault": "http",
                "status": 429,
                "headers": {"retry-after": "1"},
                "code": "rate_limit_exceeded",
                "message": "Rate limit reached for requests",
            },
            OK,
        ]
    )
    started = time.monotonic()
    text, events = await run(scripted_settings)
    elapsed = time.monotonic() - started
    assert text == "Recovered and answered."
    assert elapsed >= 1.0, "the client waited as the server asked"
    retries = [e for e in events if isinstance(e, Retrying)]
    assert len(retries) == 1
    assert retries[0].delay == 1.0
    assert "rate limited" in retries[0].reason
    assert len(scripted_server.requests) == 2


async def test_retry_after_ms_wins_over_retry_after(
    scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_server.load(
        [
            {
                "fault": "http",
                "status": 429,
                "headers": {"retry-after-ms": "150", "retry-after": "30"},
            },
            OK,
        ]
    )
    text, events = await run(scripted_settings)
    assert text == OK["text"]
    assert [e.delay for e in events if isinstance(e, Retrying)] == [0.15]


async def test_retry_after_longer_than_the_limit_fails_at_once(
    scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_server.load([{"fault": "http", "status": 429, "headers": {"retry-after": "3600"}}, OK])
    with pytest.raises(errors.RateLimitError) as info:
        await run(scripted_settings)
    assert info.value.retry_after == 3600
    assert len(scripted_server.requests) == 1


@BOTH
async def test_503_html_page_then_success(
    provider: str, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_settings.provider = provider
    page = (
        "<html><head><title>503 Service Unavailable</title></head>"
        "<body><h1>Service Unavailable</h1>The proxy is overloaded.</body></html>"
    )
    scripted_server.load([{"fault": "http", "status": 503, "body": page}, OK])
    text, events = await run(scripted_settings)
    assert text == OK["text"]
    (retry,) = [e for e in events if isinstance(e, Retrying)]
    assert "503 Service Unavailable" in retry.reason
    assert "HTML page" in retry.reason


async def test_repeated_500s_give_a_typed_error_after_the_retries(
    scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_settings.max_retries = 3
    scripted_server.load([{"fault": "http", "status": 500, "repeat": 10}])
    with pytest.raises(errors.ServerError) as info:
        await run(scripted_settings)
    assert info.value.status == 500
    assert info.value.retryable
    assert len(scripted_server.requests) == 4, "one request and three retries"


@pytest.mark.parametrize(
    ("provider", "where"),
    [
        ("responses", "http"),
        ("responses", "flat"),
        ("responses", "nested"),
        ("responses", "failed"),
        ("chat", "http"),
        ("chat", "nested"),
    ],
)
async def test_insufficient_quota_is_not_retried(
    provider: str, where: str, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    """In-stream, the Responses API has three error shapes; chat servers have one."""
    scripted_settings.provider = provider
    message = "You exceeded your current quota, please check your plan and billing details."
    if where == "http":
        fault = {
            "fault": "http",
            "status": 429,
            "code": "insufficient_quota",
            "type": "insufficient_quota",
            "message": message,
        }
    else:
        fault = {
            "fault": "stream_error",
            "after": 3,
            "shape": where,
            "code": "insufficient_quota",
            "message": message,
        }
    scripted_server.load([fault, OK])
    with pytest.raises(errors.QuotaExceededError) as info:
        await run(scripted_settings)
    assert "quota" in str(info.value)
    assert not info.value.retryable
    assert len(scripted_server.requests) == 1


@BOTH
async def test_connection_dropped_mid_stream_is_retried(
    provider: str, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_settings.provider = provider
    scripted_server.load(
        [{"fault": "drop", "after": 4, "text": "This answer will be cut", "chunk": 3}, OK]
    )
    text, events = await run(scripted_settings)
    assert text == OK["text"]
    (retry,) = [e for e in events if isinstance(e, Retrying)]
    assert "cut mid-response" in retry.reason
    assert len(scripted_server.requests) == 2


@BOTH
async def test_stall_is_an_idle_timeout(
    provider: str, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_settings.provider = provider
    scripted_settings.stream_idle_timeout = 0.5
    scripted_settings.max_retries = 1
    scripted_server.load([{"fault": "stall", "after": 3, "seconds": 30, "repeat": 2}])
    started = time.monotonic()
    with pytest.raises(errors.StreamIdleTimeout, match=r"sent nothing for 0.5 s"):
        await run(scripted_settings)
    assert time.monotonic() - started < 5
    assert len(scripted_server.requests) == 2, "a stall counts as a dropped stream: retried once"


@BOTH
@pytest.mark.parametrize("where", ["http", "stream"])
async def test_context_length_exceeded_has_its_own_type(
    provider: str, where: str, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_settings.provider = provider
    message = "Your input exceeds the context window of this model."
    fault: dict[str, Any] = (
        {
            "fault": "http",
            "status": 400,
            "code": "context_length_exceeded",
            "type": "invalid_request_error",
            "message": message,
        }
        if where == "http"
        else {
            "fault": "stream_error",
            "code": "context_length_exceeded",
            "message": message,
            "shape": "failed" if provider == "responses" else "nested",
        }
    )
    scripted_server.load([fault, OK])
    with pytest.raises(errors.ContextLengthExceeded):
        await run(scripted_settings)
    assert len(scripted_server.requests) == 1


@BOTH
async def test_malformed_event_is_a_protocol_error(
    provider: str, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_settings.provider = provider
    scripted_server.load([{"fault": "malformed", "after": 2, "data": '{"type": "response.ou'}, OK])
    with pytest.raises(errors.ProtocolError, match="not JSON"):
        await run(scripted_settings)
    assert len(scripted_server.requests) == 1


@BOTH
async def test_a_proxy_login_page_with_status_200(
    provider: str, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_settings.provider = provider
    scripted_server.load(
        [
            {
                "raw": {
                    "status": 200,
                    "body": "<html><title>Corporate login</title><form>...</form></html>",
                }
            }
        ]
    )
    with pytest.raises(errors.ProtocolError, match="Corporate login"):
        await run(scripted_settings)


async def test_no_api_key_fails_before_sending(
    scripted_settings: CodexMax,
    scripted_server: ScriptedModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    scripted_settings.base_url = "https://api.openai.com/v1"
    with pytest.raises(errors.MissingAPIKeyError, match="OPENAI_API_KEY"):
        await run(scripted_settings)
    assert scripted_server.requests == []


async def test_wrong_key_is_an_authentication_error(
    scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_server.api_key = "the-right-key-123456"
    scripted_server.load([OK])
    with pytest.raises(errors.AuthenticationError, match="refused the credentials"):
        await run(scripted_settings)
    assert len(scripted_server.requests) == 1


async def test_unreachable_server_is_a_connect_error(scripted_settings: CodexMax) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    scripted_settings.base_url = f"http://127.0.0.1:{port}/v1"
    scripted_settings.max_retries = 1
    with pytest.raises(errors.ConnectError, match="could not connect"):
        await run(scripted_settings)


async def _pool_connections(provider: Any) -> list[Any]:
    client = provider.http._client
    return list(client._transport._pool.connections) if client is not None else []


@BOTH
async def test_cancelling_leaves_no_connection_or_task_behind(
    provider: str, scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_settings.provider = provider
    scripted_server.load([{"text": "word " * 200, "chunk": 5, "delay": 0.02}])
    tasks_before = asyncio.all_tasks()
    seen = asyncio.Event()

    async with open_provider(scripted_settings) as model:

        async def consume() -> None:
            async with model.stream(REQUEST) as stream:
                async for event in stream:
                    if isinstance(event, TextDelta):
                        seen.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(seen.wait(), 5)
        assert scripted_server.active_requests == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The streaming connection was closed, not returned to the pool.
        assert all(c.is_closed() or c.is_idle() for c in await _pool_connections(model))
        for _ in range(100):
            if scripted_server.active_requests == 0:
                break
            await asyncio.sleep(0.02)
        assert scripted_server.active_requests == 0, "the server saw the client leave"
    assert asyncio.all_tasks() == tasks_before
    assert scripted_server.failures == []


async def test_breaking_out_of_a_stream_closes_it(
    scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_server.load([{"text": "word " * 200, "chunk": 5, "delay": 0.02}])
    async with open_provider(scripted_settings) as model:
        async with model.stream(REQUEST) as stream:
            async for event in stream:
                if isinstance(event, TextDelta):
                    break
        assert all(c.is_closed() or c.is_idle() for c in await _pool_connections(model))
    for _ in range(100):
        if scripted_server.active_requests == 0:
            break
        await asyncio.sleep(0.02)
    assert scripted_server.active_requests == 0


async def test_script_exhausted_is_reported_clearly(
    scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_server.load([])
    with pytest.raises(errors.InvalidRequestError, match="no step left"):
        await run(scripted_settings)
    assert scripted_server.failures
    assert "no step left" in scripted_server.failures[0]


async def test_proxy_from_the_environment_is_used(
    scripted_settings: CodexMax,
    scripted_server: ScriptedModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP_PROXY is honoured: the scripted server doubles as a forward proxy (it answers
    by path, and a proxy request's path is the absolute URL), so a request to a host that
    does not exist succeeds only if it went through the proxy."""
    scripted_server.load([OK])
    scripted_settings.base_url = "http://model.invalid/v1"
    scripted_settings.max_retries = 0
    monkeypatch.setenv("HTTP_PROXY", scripted_server.url)
    monkeypatch.setenv("NO_PROXY", "")
    text, _ = await run(scripted_settings)
    assert text == OK["text"]
    assert scripted_server.requests[0].path == "/v1/responses"

    monkeypatch.setenv("NO_PROXY", "model.invalid")
    with pytest.raises(errors.ConnectError):
        await run(scripted_settings)


async def test_proxy_setting_overrides_the_environment(
    scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_server.load([OK])
    scripted_settings.base_url = "http://model.invalid/v1"
    scripted_settings.proxy = scripted_server.url
    text, _ = await run(scripted_settings)
    assert text == OK["text"]


async def test_connections_are_reused_and_nothing_is_left_running(
    scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    """After the final event the rest of the body is read, so the connection goes back to
    the pool; every generator inside the stream is closed."""
    scripted_server.load([OK, OK, OK])
    opened_before = scripted_server.connections_opened
    tasks_before = asyncio.all_tasks()
    async with open_provider(scripted_settings) as model:
        for _ in range(3):
            result = await model.complete(REQUEST)
            assert result.text == OK["text"]
        pool = await _pool_connections(model)
        assert len(pool) == 1
        assert pool[0].is_idle()
    assert scripted_server.connections_opened - opened_before == 1
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == tasks_before


async def test_chat_connections_are_reused_too(
    scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_settings.provider = "chat"
    scripted_server.load([OK, OK])
    opened_before = scripted_server.connections_opened
    async with open_provider(scripted_settings) as model:
        for _ in range(2):
            assert (await model.complete(REQUEST)).text == OK["text"]
    assert scripted_server.connections_opened - opened_before == 1


async def test_a_wait_longer_than_the_limit_is_in_the_message(
    scripted_settings: CodexMax, scripted_server: ScriptedModelServer
) -> None:
    scripted_server.load([{"fault": "http", "status": 429, "headers": {"retry-after": "600"}}])
    with pytest.raises(errors.RateLimitError, match=r"asks to wait 600 s, longer than"):
        await run(scripted_settings)


async def test_azure_endpoint_through_a_proxy(
    scripted_settings: CodexMax,
    scripted_server: ScriptedModelServer,
    monkeypatch: pytest.MonkeyPatch,
    spec_validator: Any,
) -> None:
    """An Azure host name (reached through the scripted server acting as a forward proxy):
    the key goes in ``api-key`` by default, ``store`` is true, the query is kept."""
    scripted_server.load([{"text": "hello from azure"}])
    scripted_server.api_key = "azure-key-abcdef123456"
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key-abcdef123456")
    monkeypatch.setenv("HTTP_PROXY", scripted_server.url)
    monkeypatch.setenv("NO_PROXY", "")
    scripted_settings.base_url = "http://my-resource.openai.azure.com/openai/v1"
    scripted_settings.api_key_env = "AZURE_OPENAI_API_KEY"
    scripted_settings.extra_query = {"api-version": "preview"}
    scripted_settings.model = "my-gpt-5-deployment"
    assert scripted_settings.is_azure
    text, _ = await run(scripted_settings)
    assert text == "hello from azure"
    record = scripted_server.requests[0]
    assert record.path == "/openai/v1/responses"
    assert record.query == {"api-version": ["preview"]}
    assert record.headers["api-key"] == "********"
    assert "authorization" not in record.headers
    assert record.body["store"] is True
    assert spec_validator("CreateResponse", record.body) == []
