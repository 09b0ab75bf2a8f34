"""Time, retries and token counting: how requests are paced and measured."""

from __future__ import annotations

from typing import Any

from traitlets import Enum, Float, HasTraits, Int, Unicode, validate

from ..errors import ConfigError

__all__ = ["RequestSettings"]


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

    @validate("max_retries")
    def _check_retries(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        if not 0 <= value <= 100:
            raise ConfigError(f"max_retries must be between 0 and 100, not {value}")
        return value
