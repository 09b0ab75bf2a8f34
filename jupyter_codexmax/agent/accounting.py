"""Token accounting: how full the context is, what the session has used, and its cost.

The usage the server reports is the truth. After each response the context holds what the
request sent plus what the model wrote (``input_tokens + output_tokens``); everything added
to the history since (tool outputs, the next message) is estimated with the token counter
(tiktoken's o200k_base when it loads, else one token per 4 bytes). Before the first report
of a session (or after a compaction) the whole request is estimated.

The last known context size is stored with the session, so a new process knows how full
the context is before it sends anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..providers.base import Usage
from .tokens import TokenCounter

__all__ = ["DEFAULT_PRICES", "ContextMeter", "Price", "cost_of", "price_for"]


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float
    cached_input: float
    output: float


#: List prices as published (USD per million tokens); override with ``CodexMax.prices``.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-5.1-codex-max": Price(1.25, 0.125, 10.0),
    "gpt-5.1-codex-mini": Price(0.25, 0.025, 2.0),
    "gpt-5.1-codex": Price(1.25, 0.125, 10.0),
    "gpt-5.1": Price(1.25, 0.125, 10.0),
    "gpt-5-codex": Price(1.25, 0.125, 10.0),
    "gpt-5-mini": Price(0.25, 0.025, 2.0),
    "gpt-5-nano": Price(0.05, 0.005, 0.40),
    "gpt-5": Price(1.25, 0.125, 10.0),
    "o4-mini": Price(1.10, 0.275, 4.40),
    "o3": Price(2.0, 0.50, 8.0),
    "gpt-4.1": Price(2.0, 0.50, 8.0),
    "gpt-4o": Price(2.5, 1.25, 10.0),
}


_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest|preview)$")


def price_for(model: str, overrides: Mapping[str, Any] | None = None) -> Price | None:
    """The price of ``model``: an override, else the table (the name, or its dated
    snapshot's model); None when unknown."""
    table: dict[str, Price] = dict(DEFAULT_PRICES)
    for name, value in (overrides or {}).items():
        if isinstance(value, Mapping):
            table[name] = Price(
                float(value.get("input", 0.0)),
                float(value.get("cached_input", value.get("input", 0.0))),
                float(value.get("output", 0.0)),
            )
    if model in table:
        return table[model]
    # A dated snapshot (gpt-4o-2024-08-06) costs what its model does; a variant with a
    # name of its own (gpt-4o-mini, o3-pro) does not: it is unknown unless configured.
    base = _SNAPSHOT.sub("", model)
    return table.get(base)


def cost_of(usage: Usage, price: Price | None) -> float:
    """US dollars for ``usage`` (reasoning tokens are billed as output, and included in it)."""
    if price is None:
        return 0.0
    fresh = max(0, usage.input_tokens - usage.cached_input_tokens)
    return (
        fresh * price.input
        + usage.cached_input_tokens * price.cached_input
        + usage.output_tokens * price.output
    ) / 1_000_000


class ContextMeter:
    """How full the context is: the last server report, plus an estimate of what came after."""

    def __init__(self, counter: TokenCounter, window: int, threshold: float) -> None:
        self.counter = counter
        self.window = window
        self.threshold = threshold
        #: Context size at the last report (or restored from a session), and the history
        #: length it covered.
        self.reported: int | None = None
        self.covered = 0

    @property
    def limit(self) -> int:
        """Above this many tokens, the history is compacted before the next request."""
        return int(self.window * self.threshold)

    def report(self, usage: Usage, history_length: int) -> None:
        self.reported = usage.input_tokens + usage.output_tokens
        self.covered = history_length

    def restore(self, context_tokens: int, history_length: int) -> None:
        """Start from a size known from before (a stored session)."""
        self.reported = context_tokens
        self.covered = history_length

    def forget(self) -> None:
        """The history was replaced (compaction): estimate it whole until the next report."""
        self.reported = None
        self.covered = 0

    def estimate(self, sizes: Sequence[int], fixed: int) -> int:
        """Tokens the next request will hold, from the history's item sizes (each item
        counted once, when it was added); ``fixed`` is instructions plus tool schemas."""
        if self.reported is None or self.covered > len(sizes):
            return fixed + sum(sizes)
        return self.reported + sum(sizes[self.covered :])

    def over(self, tokens: int) -> bool:
        return tokens > self.limit
