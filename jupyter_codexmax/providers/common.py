"""What the HTTP providers share: sending with retries, reading the event stream, checking
the endpoint."""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import ModelError, ProtocolError
from .base import (
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

SCRIPTED_SERVER_HEADER = "x-codexmax-scripted"


class HttpProvider(Provider):
    """A provider that POSTs JSON and reads server-sent events back."""

    #: Path of the streaming endpoint, below the base URL.
    path: str

    def __init__(self, settings: CodexMax) -> None:
        super().__init__(settings)
        self.http = HttpClient(settings)
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
            try:
                async with self.http.post_stream(self.path, body) as response:
                    async for event in self._parse_response(response):
                        yield event
                return
            except ModelError as exc:
                failure = exc
            attempt += 1
            delay = self.retry.delay(attempt, failure)
            if delay is None:
                if attempt > 1 and failure.retryable:
                    log.warning("giving up after %d attempts: %s", attempt, failure)
                raise failure
            log.warning(
                "retrying in %.2f s (%d/%d): %s", delay, attempt, self.retry.max_retries, failure
            )
            yield Retrying(attempt, self.retry.max_retries, delay, str(failure))
            await asyncio.sleep(delay)

    async def _parse_response(self, response: httpx.Response) -> AsyncIterator[StreamEvent]:
        content_type = response.headers.get("content-type", "").lower()
        if "text/event-stream" in content_type:
            async for event in self.parse_stream(self._sse(response)):
                yield event
            return
        raw = b"".join([chunk async for chunk in iter_bytes(response)])
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

    async def _sse(self, response: httpx.Response) -> AsyncIterator[ServerSentEvent]:
        decoder = SSEDecoder()
        async for chunk in iter_bytes(response, idle=self.settings.stream_idle_timeout):
            for event in decoder.feed(chunk):
                yield event
        for event in decoder.end():
            yield event

    @abc.abstractmethod
    def parse_stream(self, events: AsyncIterator[ServerSentEvent]) -> AsyncIterator[StreamEvent]:
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
            # Reachable and speaking HTTP; some compatible servers have no /models.
            return EndpointCheck(True, f"answers, but has no /models (HTTP {status})", seconds)
        return EndpointCheck(False, str(err), seconds, scripted)

    async def aclose(self) -> None:
        await self.http.aclose()
