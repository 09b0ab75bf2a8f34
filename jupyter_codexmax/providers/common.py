"""What the HTTP providers share: sending with retries, reading the event stream, checking
the endpoint."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import ModelError, ProtocolError, RateLimitError, ResponseTimeout
from .base import (
    SCRIPTED_SERVER_HEADER,
    EndpointCheck,
    ModelRequest,
    ModelStream,
    Provider,
    Retrying,
    StreamEvent,
)
from .http import (
    HttpClient,
    convert_transport_error,
    describe_body,
    error_from_response,
    iter_bytes,
)
from .retry import RetryPolicy
from .sse import ServerSentEvent, SSEDecoder

if TYPE_CHECKING:
    from ..config import CodexMax

log = logging.getLogger("jupyter_codexmax.providers")

#: After the final event, the rest of a response body is read (up to this much, for this
#: long) so the connection goes back to the pool instead of being thrown away.
DRAIN_BYTES = 256 * 1024
DRAIN_SECONDS = 1.0


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read what is left of a response body (the end of the chunked body, ``[DONE]``)
    through the iterator that read the rest, so httpx can reuse the connection."""

    async def read() -> None:
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > DRAIN_BYTES:
                break

    with contextlib.suppress(Exception):
        await asyncio.wait_for(read(), DRAIN_SECONDS)


async def _until(
    chunks: AsyncIterator[bytes], deadline: float, too_slow: Callable[[], ModelError]
) -> AsyncGenerator[bytes, None]:
    """``chunks`` as they come, until ``deadline`` (the loop's clock): then ``too_slow()``
    is raised, whether the chunks stopped coming or kept trickling in."""
    loop = asyncio.get_running_loop()
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise too_slow()
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), remaining)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError as exc:
            raise too_slow() from exc
        yield chunk


class HttpProvider(Provider):
    """A provider that POSTs JSON and reads server-sent events back."""

    #: Path of the streaming endpoint, below the base URL.
    path: str

    def __init__(
        self, settings: CodexMax, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(settings)
        self.http = HttpClient(settings, transport)
        self.retry = RetryPolicy(
            max_retries=settings.max_retries,
            base_delay=settings.retry_base_delay,
            max_delay=settings.retry_max_delay,
            retry_after_limit=settings.retry_after_limit,
        )

    def stream(self, request: ModelRequest) -> ModelStream:
        # Build (and so validate) the body now: configuration mistakes surface before
        # anything is sent, and in the caller's frame.
        body = self.build_body(request)
        self.settings.require_api_key()
        return ModelStream(self._events(body))

    async def _events(self, body: dict[str, Any]) -> AsyncGenerator[StreamEvent, None]:
        attempt = 0
        while True:
            limit = self.settings.response_time_limit
            deadline = asyncio.get_running_loop().time() + limit
            try:
                async with contextlib.AsyncExitStack() as stack:
                    opening = stack.enter_async_context(self.http.post_stream(self.path, body))
                    try:
                        response = await asyncio.wait_for(opening, limit)
                    except asyncio.TimeoutError as exc:
                        raise self._too_slow(limit) from exc
                    idle = self.settings.stream_idle_timeout
                    chunks = await stack.enter_async_context(
                        aclosing(iter_bytes(response, idle=idle))
                    )
                    timed = _until(chunks, deadline, functools.partial(self._too_slow, limit))
                    async with (
                        aclosing(timed),
                        aclosing(self._parse_response(response, timed)) as events,
                    ):
                        async for event in events:
                            yield event
                    await _drain(chunks)
                return
            except ModelError as exc:
                failure = exc
            attempt += 1
            delay = self.retry.delay(attempt, failure)
            if delay is None:
                limit = self.retry.retry_after_limit
                if failure.retry_after is not None and failure.retry_after > limit:
                    failure.args = (
                        f"{failure} (the server asks to wait {failure.retry_after:g} s, longer "
                        f"than CodexMax.retry_after_limit = {limit:g} s)",
                    )
                elif attempt > 1 and failure.retryable:
                    log.info("giving up after %d attempts: %s", attempt, failure)
                raise failure
            # Surfaces say it (the Retrying event); the log keeps it for --log-level=INFO.
            log.info(
                "retrying in %.2f s (%d/%d): %s", delay, attempt, self.retry.max_retries, failure
            )
            yield Retrying(
                attempt,
                self.retry.max_retries,
                delay,
                str(failure),
                rate_limited=isinstance(failure, RateLimitError),
            )
            await asyncio.sleep(delay)

    def _too_slow(self, limit: float) -> ResponseTimeout:
        return ResponseTimeout(
            f"the response from {self.http.url(self.path)} did not finish within {limit:g} s "
            "(CodexMax.response_time_limit)"
        )

    async def _parse_response(
        self, response: httpx.Response, chunks: AsyncIterator[bytes]
    ) -> AsyncGenerator[StreamEvent, None]:
        content_type = response.headers.get("content-type", "").lower()
        if "text/event-stream" in content_type:
            async with (
                aclosing(self._sse(chunks)) as sse,
                aclosing(self.parse_stream(sse)) as parsed,
            ):
                async for event in parsed:
                    yield event
            return
        raw = b"".join([chunk async for chunk in chunks])
        text = raw.decode("utf-8", "replace")
        if "json" in content_type or text.lstrip()[:1] == "{":
            try:
                payload = json.loads(text)
            except ValueError as exc:
                raise ProtocolError(
                    f"{self.path}: the server answered with broken JSON instead of an event "
                    f"stream: {text[:120]!r}"
                ) from exc
            for event in self.parse_json_body(payload):
                yield event
            return
        raise ProtocolError(
            f"{self.path}: expected an event stream, got {content_type or 'no content type'}: "
            f"{describe_body(text, content_type)}"
        )

    async def _sse(self, chunks: AsyncIterator[bytes]) -> AsyncGenerator[ServerSentEvent, None]:
        """Events from the body's bytes. Leaves ``chunks`` open: what follows the final
        event is drained by the caller."""
        decoder = SSEDecoder()
        async for chunk in chunks:
            for event in decoder.feed(chunk):
                yield event
        for event in decoder.end():
            yield event

    @abc.abstractmethod
    def parse_stream(
        self, events: AsyncIterator[ServerSentEvent]
    ) -> AsyncGenerator[StreamEvent, None]:
        """Our events from the server's SSE events. Raises when the stream ends early."""

    @abc.abstractmethod
    def parse_json_body(self, payload: Any) -> list[StreamEvent]:
        """Our events from a whole (non-streamed) response body."""

    async def check_endpoint(self) -> EndpointCheck:
        """GET ``/models``: cheap, needs the key, spends no tokens."""
        started = time.monotonic()
        try:
            response, body = await self.http.get("models")
        except ModelError as exc:
            return EndpointCheck(False, str(exc), time.monotonic() - started)
        except httpx.HTTPError as exc:  # pragma: no cover - converted in http.get
            err = convert_transport_error(exc, self.http.url("models"))
            return EndpointCheck(False, str(err), time.monotonic() - started)
        seconds = time.monotonic() - started
        scripted = SCRIPTED_SERVER_HEADER in response.headers
        status = response.status_code
        if status == 200:
            count = ""
            try:
                data = json.loads(body).get("data")
                if isinstance(data, list):
                    count = f", {len(data)} models listed"
            except (ValueError, AttributeError):
                pass
            what = "the scripted model server (not a model)" if scripted else "answers"
            return EndpointCheck(True, f"{what}: HTTP 200 on /models{count}", seconds, scripted)
        err = error_from_response(status, response.headers, body, self.http.url("models"))
        if status in (404, 405):
            return await self._probe_endpoint(started)
        return EndpointCheck(False, str(err), seconds, scripted)

    async def _probe_endpoint(self, started: float) -> EndpointCheck:
        """No ``/models`` (some compatible servers have none): ask the model endpoint itself
        with an empty body, which a real endpoint refuses as invalid (spending nothing) and
        a wrong base URL answers with 404."""
        url = self.http.url(self.path)
        try:
            response, body = await self.http.post_raw(self.path, {})
        except ModelError as exc:
            return EndpointCheck(False, str(exc), time.monotonic() - started)
        seconds = time.monotonic() - started
        if response.status_code in (404, 405):
            return EndpointCheck(
                False,
                f"no /models and no /{self.path} at {self.settings.base_url} (HTTP "
                f"{response.status_code}); does the base URL end with /v1?",
                seconds,
            )
        if response.status_code in (401, 403):
            err = error_from_response(response.status_code, response.headers, body, url)
            return EndpointCheck(False, str(err), seconds)
        return EndpointCheck(
            True,
            f"answers (no /models; /{self.path} is there: HTTP {response.status_code})",
            seconds,
        )

    async def aclose(self) -> None:
        await self.http.aclose()
