"""The HTTP boundary: the one place that touches httpx and turns its errors into ours.

:class:`HttpClient` owns one ``httpx.AsyncClient`` (connection pool, proxies from the
environment, timeouts from the settings), adds credentials to each request at the last
moment, and converts every failure, most specific first and with the cause chained, into
the tree in :mod:`jupyter_codexmax.errors`. HTTP error bodies are read whatever they are:
an OpenAI-style JSON error, another server's JSON, an HTML page from a proxy, or text.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx

from .. import secrets
from .._version import __version__
from ..errors import (
    APIError,
    AuthenticationError,
    ConfigError,
    ConnectError,
    ContextLengthExceeded,
    InvalidRequestError,
    ModelError,
    NotFoundError,
    ProtocolError,
    QuotaExceededError,
    RateLimitError,
    RequestTimeout,
    ServerError,
    StreamIdleTimeout,
    StreamInterrupted,
    TransportError,
)
from .items import load_json
from .retry import parse_retry_after, parse_retry_after_message

if TYPE_CHECKING:
    from ..config import CodexMax

__all__ = ["HttpClient", "error_from_payload", "error_from_response"]

USER_AGENT = f"jupyter-codexmax/{__version__}"

#: Error bodies are read up to this size; the rest is not needed for a message.
MAX_ERROR_BODY = 64 * 1024

_CONTEXT_MARKERS = re.compile(
    r"context[_ ]length|context window|maximum context|exceeds? the (available )?context"
    r"|exceed_context_size|prompt is too long|input is too long|too many input tokens",
    re.I,
)
#: In-stream error codes that name the request or the account, not a passing failure.
_NEVER_RETRY = frozenset(
    {
        "usage_not_included",
        "invalid_prompt",
        "cyber_policy",
        "content_policy_violation",
        "model_not_found",
    }
)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
_TAGS = re.compile(r"<[^>]+>")


class HttpClient:
    """A pooled async HTTP client bound to one endpoint's settings."""

    def __init__(
        self, settings: CodexMax, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self._client: httpx.AsyncClient | None = None
        #: A transport to use instead of the network (tests and benchmarks).
        self.transport = transport

    def url(self, path: str) -> str:
        return self.settings.base_url + "/" + path.lstrip("/")

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, **self.settings.plain_headers()}
        for name, value in self.settings.auth_headers().items():
            headers[name] = value.reveal()
        return headers

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            s = self.settings
            timeout = httpx.Timeout(
                connect=s.connect_timeout,
                read=s.stream_idle_timeout,
                write=s.connect_timeout * 3,
                pool=s.connect_timeout,
            )
            self._client = httpx.AsyncClient(
                timeout=timeout,
                proxy=s.proxy or None,
                trust_env=True,
                follow_redirects=False,
                params=dict(s.extra_query),
                verify=self._verify(),
                transport=self.transport,
            )
        return self._client

    def _verify(self) -> bool:
        """Certificate checks, wherever TLS can be involved.

        Loading the CA bundle takes ~80 ms, a fifth of a one-shot ``ask``. A plain-http
        endpoint reached without a proxy (Ollama, vLLM, the scripted server on
        localhost) never does TLS, so the bundle is not loaded for it. Any https base URL,
        and any proxy, keeps full verification (``SSL_CERT_FILE`` is honoured).
        """
        s = self.settings
        if s.base_url.startswith("https:") or s.proxy:
            return True
        proxy_vars = ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
        return any(os.environ.get(name) for name in proxy_vars)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    @asynccontextmanager
    async def post_stream(
        self, path: str, body: Mapping[str, Any]
    ) -> AsyncIterator[httpx.Response]:
        """POST ``body``; yield the open response once its status is 2xx.

        Error statuses raise the matching :class:`APIError`; the response is closed when
        the block exits, whatever happens (also on cancellation).
        """
        response = await self._send("POST", path, body, stream=True)
        try:
            if response.status_code >= 300:
                raise await _status_error(response)
            yield response
        finally:
            await response.aclose()

    async def post_json(self, path: str, body: Mapping[str, Any], *, timeout: float) -> Any:
        """POST ``body`` and return the parsed JSON answer (for non-streamed endpoints)."""
        response = await self._send("POST", path, body, stream=True, read_timeout=timeout)
        try:
            if response.status_code >= 300:
                raise await _status_error(response)
            raw = b"".join([chunk async for chunk in iter_bytes(response, idle=timeout)])
        finally:
            await response.aclose()
        try:
            return load_json(raw)
        except ValueError as exc:
            raise ProtocolError(
                f"{_where(response)} answered with something that is not JSON: "
                f"{_snippet(raw.decode('utf-8', 'replace'))}"
            ) from exc

    async def post_raw(self, path: str, body: Mapping[str, Any]) -> tuple[httpx.Response, bytes]:
        """POST ``body``; return the response (any status) and up to 64 KiB of its body."""
        response = await self._send("POST", path, body, stream=True)
        try:
            data = await _read_limited(response)
        finally:
            await response.aclose()
        return response, data

    async def get(self, path: str) -> tuple[httpx.Response, bytes]:
        """GET ``path``; return the response (any status) and up to 64 KiB of its body."""
        response = await self._send("GET", path, None, stream=True)
        try:
            body = await _read_limited(response)
        finally:
            await response.aclose()
        return response, body

    async def _send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        stream: bool,
        read_timeout: float | None = None,
    ) -> httpx.Response:
        client = self._get_client()
        headers = self._headers()
        content: bytes | None = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        if method == "POST" and path.endswith(("responses", "completions")):
            headers["Accept"] = "text/event-stream"
        extensions: dict[str, Any] = {}
        if read_timeout is not None:
            t = client.timeout
            extensions["timeout"] = httpx.Timeout(
                connect=t.connect, read=read_timeout, write=t.write, pool=t.pool
            ).as_dict()
        try:
            request = client.build_request(
                method, self.url(path), content=content, headers=headers, extensions=extensions
            )
            return await client.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise convert_transport_error(exc, self.url(path)) from exc
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:  # pragma: no cover
            raise ConfigError(f"base URL {self.settings.base_url!r} is not usable: {exc}") from exc


async def iter_bytes(
    response: httpx.Response, *, idle: float | None = None
) -> AsyncGenerator[bytes, None]:
    """The response body as it arrives, with httpx errors converted to ours."""
    try:
        async for chunk in response.aiter_bytes():
            yield chunk
    except httpx.HTTPError as exc:
        raise convert_transport_error(
            exc, str(response.request.url), streaming=True, idle=idle
        ) from exc


def convert_transport_error(
    exc: httpx.HTTPError, url: str, *, streaming: bool = False, idle: float | None = None
) -> ModelError | ConfigError:
    """An httpx error as one of ours, most specific first."""
    where = _short_url(url)
    if isinstance(exc, httpx.LocalProtocolError):
        # h11 quotes the offending header value: never repeat it (it may be a key).
        return ConfigError(
            "a request header cannot be sent (a line break or stray character in the API "
            "key or in CodexMax.extra_headers?)"
        )
    if isinstance(exc, httpx.ReadTimeout):
        seconds = f" for {idle:g} s" if idle else ""
        return StreamIdleTimeout(
            f"the server at {where} sent nothing{seconds}; the stream stalled"
            if streaming
            else f"the server at {where} did not answer{seconds}"
        )
    if isinstance(exc, httpx.ConnectTimeout):
        return RequestTimeout(f"connecting to {where} timed out")
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeout(f"request to {where} timed out ({type(exc).__name__})")
    if isinstance(exc, httpx.ConnectError):
        return ConnectError(f"could not connect to {where}: {_reason(exc)}")
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        if streaming:
            return StreamInterrupted(
                f"the connection to {where} was cut mid-response: {_reason(exc)}"
            )
        return TransportError(f"the connection to {where} failed: {_reason(exc)}")
    if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
        return ModelError(f"cannot send to {where}: {_reason(exc)}")
    if isinstance(exc, httpx.TransportError):
        return TransportError(f"the connection to {where} failed: {_reason(exc)}")
    return ModelError(f"request to {where} failed: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return secrets.redact(text)


def _short_url(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.host}{':' + str(parsed.port) if parsed.port else ''}{parsed.path}"


def _where(response: httpx.Response) -> str:
    return _short_url(str(response.request.url))


async def _read_limited(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_ERROR_BODY:
                break
    except httpx.HTTPError:
        pass  # a partial error body still says something
    return b"".join(chunks)[:MAX_ERROR_BODY]


async def _status_error(response: httpx.Response) -> APIError:
    body = await _read_limited(response)
    return error_from_response(response.status_code, response.headers, body, _where(response))


def error_from_response(
    status: int, headers: Mapping[str, str], body: bytes, where: str = ""
) -> APIError:
    """The error for an HTTP error response, whatever its body is."""
    text = body.decode("utf-8", "replace")
    payload: Any = None
    if text.strip():
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, str):
            error = {"message": error}
        if not isinstance(error, dict):
            error = {"message": json.dumps(payload)}
        if "message" not in error and "detail" in payload:
            error = {**error, "message": str(payload["detail"])}
    else:
        error = {"message": describe_body(text, headers.get("content-type", ""))}
    retry_after = parse_retry_after(headers)
    should_retry = headers.get("x-should-retry", "").lower()
    return error_from_payload(
        error,
        status=status,
        request_id=headers.get("x-request-id") or headers.get("request-id"),
        retry_after=retry_after,
        where=where,
        should_retry=(
            True if should_retry == "true" else False if should_retry == "false" else None
        ),
    )


def error_from_payload(
    error: Mapping[str, Any],
    *,
    status: int | None = None,
    request_id: str | None = None,
    retry_after: float | None = None,
    where: str = "",
    should_retry: bool | None = None,
) -> APIError:
    """The error for an error object, from an HTTP body or from inside a stream."""
    message = " ".join(str(error.get("message") or "").split()) or "no message"
    code = _text(error.get("code"))
    etype = _text(error.get("type"))
    param = _text(error.get("param"))
    if retry_after is None:
        retry_after = parse_retry_after_message(message)
    status_text = f"HTTP {status}" if status else "in the stream"
    label = ", ".join(x for x in (code or etype, status_text) if x)
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "type": etype,
        "param": param,
        "request_id": request_id,
        "retry_after": retry_after,
    }
    suffix = f" [request {request_id}]" if request_id else ""
    text = secrets.redact(_clip(message))
    if "insufficient_quota" in (code, etype):
        return QuotaExceededError(
            f"the account's quota is used up ({label}): {text} "
            "Add credit or raise the limit with the provider; retrying will not help." + suffix,
            retryable=False,
            **kwargs,
        )
    if "context_length_exceeded" in (code, etype) or (
        status in (None, 400, 413, 422) and _CONTEXT_MARKERS.search(message)
    ):
        return ContextLengthExceeded(
            f"the request does not fit the model's context window ({label}): {text}" + suffix,
            retryable=False,
            **kwargs,
        )
    place = f" from {where}" if where else ""
    if status in (401, 403) or code in ("invalid_api_key", "invalid_authentication"):
        return AuthenticationError(
            f"the server{place} refused the credentials ({label}): {text}" + suffix,
            retryable=False,
            **kwargs,
        )
    if status == 404:
        return NotFoundError(
            f"not found{place} ({label}): {text}" + suffix, retryable=False, **kwargs
        )
    if status == 429 or code == "rate_limit_exceeded":
        return RateLimitError(
            f"rate limited{place} ({label}): {text}" + suffix,
            retryable=should_retry if should_retry is not None else True,
            **kwargs,
        )
    if (status is not None and status >= 500) or code in (
        "server_error",
        "internal_error",
        "server_is_overloaded",
        "overloaded",
    ):
        return ServerError(
            f"the server{place} failed ({label}): {text}" + suffix,
            retryable=should_retry if should_retry is not None else True,
            **kwargs,
        )
    if status in (408, 409):
        return APIError(
            f"the server{place} asked to try again ({label}): {text}" + suffix,
            retryable=should_retry if should_retry is not None else True,
            **kwargs,
        )
    if status is None:
        # An error inside the stream with a code we do not know: retry unless it names
        # the request itself as the problem (as the Codex CLI does).
        invalid = (
            bool(code and code.startswith("invalid"))
            or code in _NEVER_RETRY
            or etype == "invalid_request_error"
        )
        cls: type[APIError] = InvalidRequestError if invalid else APIError
        return cls(
            f"the model failed ({label}): {text}" + suffix,
            retryable=not invalid if should_retry is None else should_retry,
            **kwargs,
        )
    return InvalidRequestError(
        f"the server{place} refused the request ({label}): {text}" + suffix,
        retryable=bool(should_retry),
        **kwargs,
    )


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _clip(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _snippet(text: str) -> str:
    return repr(_clip(" ".join(text.split()), 120))


def describe_body(text: str, content_type: str) -> str:
    stripped = text.strip()
    if not stripped:
        return "empty response body"
    if "html" in content_type.lower() or stripped[:1] == "<":
        title = _TITLE.search(stripped)
        if title:
            words = " ".join(html.unescape(_TAGS.sub(" ", title.group(1))).split())
        else:
            words = " ".join(html.unescape(_TAGS.sub(" ", stripped)).split())
        return f"{_clip(words, 160)} (an HTML page, not an API answer: a proxy or gateway?)"
    return _clip(" ".join(stripped.split()), 300)
