"""Time, retries and token counting: how requests are paced and measured."""

from __future__ import annotations

import math
from typing import Any

from traitlets import Enum, Float, HasTraits, Int, Unicode, validate

from ..errors import ConfigError

__all__ = ["RequestSettings", "positive_seconds"]


def positive_seconds(value: Any) -> float:
    """``value`` as seconds, or :class:`ConfigError` unless it is a finite number above 0."""
    seconds = float(value)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"must be a number of seconds above 0, not {value!r}")
    return seconds


class RequestSettings(HasTraits):
    """Settings of :class:`~jupyter_codexmax.config.CodexMax`: time, retries, tokens."""

    connect_timeout = Float(10.0, help="Seconds allowed for connecting to the server.").tag(
        config=True
    )

    stream_idle_timeout = Float(
        300.0,
        help="""Seconds a streamed response may stay silent before it counts as stalled
        (an error, retried like a dropped connection).""",
    ).tag(config=True)

    request_timeout = Float(
        600.0,
        help="Seconds allowed for a request that is not streamed (remote compaction).",
    ).tag(config=True)

    response_time_limit = Float(
        1800.0,
        help="""Seconds a whole streamed response may take, from sending the request to its
        last event, however steadily it streams: the idle timeout catches a silent stream,
        this one a trickle. Past it the response is dropped, and retried like a stalled
        one.""",
    ).tag(config=True)

    max_retries = Int(
        5,
        help="""How many times a failed request is retried: connection errors, timeouts,
        dropped streams, HTTP 408, 409, 429 and 5xx. Never retried: invalid requests,
        authentication errors, ``insufficient_quota``, ``context_length_exceeded``.""",
    ).tag(config=True)

    retry_base_delay = Float(
        0.5,
        help="""Seconds before the first retry; doubled for each further one, with jitter.
        A server's ``retry-after-ms`` or ``retry-after`` header takes precedence.""",
    ).tag(config=True)

    retry_max_delay = Float(
        20.0, help="Longest wait between retries that we choose ourselves, in seconds."
    ).tag(config=True)

    retry_after_limit = Float(
        60.0,
        help="""Longest wait a server may ask for (``retry-after``) that we honour; a request
        that asks for more fails at once with the wait in its message.""",
    ).tag(config=True)

    # -- token counting ----------------------------------------------------------------------
    tokenizer = Enum(
        ["auto", "estimate"],
        default_value="auto",
        help="""How tokens are counted between server reports. ``auto``: tiktoken's
        o200k_base (its data file is downloaded once, on first use), falling back to the
        estimate when it cannot be loaded. ``estimate``: one token per 4 bytes of UTF-8,
        rounded up. Environment: CODEXMAX_TOKENIZER.""",
    ).tag(config=True, env="CODEXMAX_TOKENIZER")

    tiktoken_file = Unicode(
        "",
        help="""A local copy of ``o200k_base.tiktoken``, for machines that cannot download
        it. Environment: CODEXMAX_TIKTOKEN_FILE.""",
    ).tag(config=True, env="CODEXMAX_TIKTOKEN_FILE")

    tokenizer_load_timeout = Float(
        10.0,
        help="Seconds to wait for tiktoken's data before using the estimate instead.",
    ).tag(config=True)

    @validate(
        "connect_timeout",
        "stream_idle_timeout",
        "request_timeout",
        "response_time_limit",
        "tokenizer_load_timeout",
    )
    def _check_request_seconds(self, proposal: dict[str, Any]) -> float:
        return positive_seconds(proposal["value"])

    @validate("retry_base_delay", "retry_max_delay", "retry_after_limit")
    def _check_delay(self, proposal: dict[str, Any]) -> float:
        seconds = float(proposal["value"])
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ConfigError(f"must be a number of seconds, 0 or more, not {proposal['value']!r}")
        return seconds

    @validate("max_retries")
    def _check_retries(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        if not 0 <= value <= 100:
            raise ConfigError(f"max_retries must be between 0 and 100, not {value}")
        return value
