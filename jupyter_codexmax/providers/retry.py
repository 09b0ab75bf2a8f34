"""When to retry a failed model request, and how long to wait first.

Exponential backoff with jitter (``base * 2**(attempt-1)``, capped, times 0.8-1.2), unless
the server said how long to wait: ``retry-after-ms``, then ``retry-after`` (seconds or an
HTTP date), then "try again in 1.2s" inside an error message. A server asking for longer
than ``retry_after_limit`` is not waited for: the error is raised at once, with the wait
in its message.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from ..errors import ModelError

__all__ = ["RetryPolicy", "parse_retry_after", "parse_retry_after_message"]

_TRY_AGAIN = re.compile(
    r"(?i)try again in\s*(?:(\d+)\s*(?:minutes?|min|m(?!s))\s*)?"
    r"(?:(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|sec|secs|seconds?)\b)?"
)


@dataclass(frozen=True)
class RetryPolicy:
    """How many retries, and the waits between them."""

    max_retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    retry_after_limit: float = 60.0

    def delay(self, attempt: int, error: ModelError) -> float | None:
        """Seconds to wait before retry number ``attempt`` (1-based), or None to give up."""
        if not error.retryable or attempt > self.max_retries:
            return None
        if error.retry_after is not None:
            if error.retry_after > self.retry_after_limit:
                return None
            return max(0.0, error.retry_after)
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return min(self.max_delay, backoff * random.uniform(0.8, 1.2))


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after``, if either is usable."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            value = float(raw_ms) / 1000.0
        except ValueError:
            value = -1.0
        if value >= 0:
            return value
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def parse_retry_after_message(message: str) -> float | None:
    """The wait in a message such as "Please try again in 1.2s" or "in 20ms"."""
    match = _TRY_AGAIN.search(message or "")
    if not match or not (match.group(1) or match.group(2)):
        return None
    minutes = float(match.group(1) or 0) * 60.0
    if not match.group(2):
        return minutes
    value = float(match.group(2))
    unit = match.group(3).lower()
    return minutes + (value / 1000.0 if unit.startswith("m") else value)
