"""Every error jupyter-codexmax raises, in one tree.

::

    CodexmaxError                   base class; ``retryable`` and ``exit_code`` on every error
    ├── ConfigError                 a setting is missing or wrong (exit 2)
    │   └── MissingAPIKeyError      no API key where the endpoint needs one
    ├── ModelError                  talking to the model failed (exit 1)
    │   ├── TransportError          the connection failed; retryable
    │   │   ├── ConnectError        could not connect (DNS, refused, TLS)
    │   │   ├── RequestTimeout      connect, write or pool timeout
    │   │   ├── StreamIdleTimeout   no data for longer than the idle timeout
    │   │   ├── ResponseTimeout     the whole response took longer than its time limit
    │   │   └── StreamInterrupted   the stream ended before the response did
    │   ├── ProtocolError           the server sent something we cannot read
    │   └── APIError                the server answered with an error (HTTP or in-stream)
    │       ├── AuthenticationError 401 / 403, bad or missing key
    │       ├── NotFoundError       404: unknown model, or an endpoint the server lacks
    │       ├── InvalidRequestError 400 / 422: the request was refused as invalid
    │       ├── ContextLengthExceeded  the input does not fit the model's window
    │       ├── QuotaExceededError  ``insufficient_quota``: out of credit; not retried
    │       ├── RateLimitError      429 / ``rate_limit_exceeded``; retryable
    │       └── ServerError         5xx / ``server_error``; retryable
    └── ToolArgumentsError          a tool call's arguments are not a JSON object;
                                    handed back to the model, never fatal

Third-party errors (httpx) are converted once, at the HTTP boundary
(:mod:`jupyter_codexmax.providers.http`), most specific first, with the cause chained.
Messages are one line, written for the person who reads them, and never contain secrets.
"""

from __future__ import annotations

__all__ = [
    "APIError",
    "AuthenticationError",
    "CodexmaxError",
    "ConfigError",
    "ConnectError",
    "ContextLengthExceeded",
    "InvalidRequestError",
    "MissingAPIKeyError",
    "ModelError",
    "NotFoundError",
    "ProtocolError",
    "QuotaExceededError",
    "RateLimitError",
    "RequestTimeout",
    "ResponseTimeout",
    "ServerError",
    "StreamIdleTimeout",
    "StreamInterrupted",
    "ToolArgumentsError",
    "TransportError",
]


class CodexmaxError(Exception):
    """Base class of every jupyter-codexmax error."""

    #: Whether trying the same thing again may succeed.
    retryable: bool = False
    #: The exit status of a command-line run that ends with this error.
    exit_code: int = 1


class ConfigError(CodexmaxError):
    """A setting is missing or has a value that cannot work. Fix the configuration."""

    exit_code = 2


class MissingAPIKeyError(ConfigError):
    """No API key is configured, and the endpoint needs one."""


class ModelError(CodexmaxError):
    """Talking to the model failed."""

    exit_code = 1

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        #: Seconds the server asked us to wait before trying again, if it said.
        self.retry_after = retry_after


class TransportError(ModelError):
    """The connection to the model's server failed."""

    retryable = True


class ConnectError(TransportError):
    """Could not connect to the server."""


class RequestTimeout(TransportError):
    """Connecting, sending or waiting for a free connection took too long."""


class StreamIdleTimeout(TransportError):
    """The server sent nothing for longer than the idle timeout."""


class ResponseTimeout(TransportError):
    """The whole response took longer than ``response_time_limit``, however steadily it
    streamed (a trickle never trips the idle timeout)."""


class StreamInterrupted(TransportError):
    """The response stream ended before the response was complete."""


class ProtocolError(ModelError):
    """The server sent something that is not the API we speak (bad SSE, non-JSON, HTML)."""


class APIError(ModelError):
    """The server answered with an error, as an HTTP status or inside the stream."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status = status
        self.code = code
        self.type = type
        self.param = param
        self.request_id = request_id
        if retryable is not None:
            self.retryable = retryable


class AuthenticationError(APIError):
    """The server refused the credentials (HTTP 401 or 403)."""


class NotFoundError(APIError):
    """HTTP 404: an unknown model or deployment, or an endpoint this server does not have."""


class InvalidRequestError(APIError):
    """The server refused the request as invalid (HTTP 400 or 422)."""


class ContextLengthExceeded(APIError):
    """The input is larger than the model's context window. Compaction handles this."""


class QuotaExceededError(APIError):
    """The account is out of quota or credit. Never retried: waiting does not help."""


class RateLimitError(APIError):
    """Too many requests for now (HTTP 429 or ``rate_limit_exceeded``)."""

    retryable = True


class ServerError(APIError):
    """The server failed (HTTP 5xx or ``server_error``)."""

    retryable = True


class ToolArgumentsError(CodexmaxError):
    """A tool call's arguments could not be read. The message is meant for the model."""

    def __init__(self, message: str, *, tool: str, arguments: str) -> None:
        super().__init__(message)
        self.tool = tool
        self.arguments = arguments
