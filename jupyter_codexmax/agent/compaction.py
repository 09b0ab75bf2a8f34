"""Compaction: bring a long history back under the context window, keeping what matters.

The algorithm is written down in ``docs/compaction.md``. In short:

1. **Remote first**: where the provider has ``POST /responses/compact``, send it the history;
   its output is the user messages and an opaque ``compaction`` item, kept verbatim (the
   user messages within ``compaction_user_budget``, newest first).
2. **Local otherwise**, or when the remote call fails: ask the model for a hand-off summary
   (``prompts/compact.md``), without tools; if even that request is too large, the oldest
   items are dropped until it fits.
3. **The new history**: the session's context message, the task ledger (verbatim), the most
   recent user messages that fit ``compaction_user_budget``, the compaction item or the
   summary, then the items of the step in progress (the last calls and their outputs).
4. **A guard** (in ``agent/core.py``): the new history should be well under the threshold
   (``COMPACTION_TARGET`` of it), or the next compaction comes a few steps later; if not,
   try again locally with half the budget for retained messages and shorter pending
   outputs. After ``compaction_max_attempts`` attempts, a history under the threshold is
   kept (with a notice) and one over it is :class:`CompactionError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from ..errors import CodexmaxError, ContextLengthExceeded, ModelError
from ..notebook.view import cut_text
from ..providers import ModelRequest, Provider
from ..providers.base import Item, Usage
from ..providers.items import message_text, user_message
from .tokens import TokenCounter

__all__ = [
    "COMPACTION_TARGET",
    "Compacted",
    "CompactionError",
    "compact_history",
    "is_model_output",
    "pending_items",
    "prompt",
]

SUMMARY_MARK = "Hand-off summary:"
#: A compaction should leave the context at most this share of the threshold, so the next one
#: is far away; above it, the guard tries again (harder) before accepting.
COMPACTION_TARGET = 0.6
LEDGER_MARK = "Task ledger (kept by jupyter-codexmax"


class CompactionError(CodexmaxError):
    """Compaction could not bring the context under the threshold, or could not run."""


@cache
def prompt(name: str) -> str:
    return resources.files(__package__).joinpath(f"prompts/{name}.md").read_text("utf-8").strip()


@dataclass
class Compacted:
    """A compacted history, and how it was made."""

    items: list[Item]
    method: str  # remote, local
    summary: Item | None
    retained: list[Item]
    #: What the compaction's own requests used (billed like any other).
    usage: Usage = field(default_factory=Usage)


def is_user_message(item: Item) -> bool:
    """A message the user wrote (not our developer notes, not a summary, not the ledger or
    a notebook's view, which are data the agent put in user-role messages)."""
    if item.get("type", "message") != "message" or item.get("role") != "user":
        return False
    text = message_text(item)
    return not text.startswith(
        (prompt("summary_prefix")[:60], LEDGER_MARK, "The notebook as it is now (data")
    )


def is_model_output(item: Item) -> bool:
    """An item the model produced (reasoning, a message of its own, a function call)."""
    kind = item.get("type", "message")
    if kind in ("reasoning", "function_call"):
        return True
    return kind == "message" and item.get("role") == "assistant"


def pending_items(history: Sequence[Item]) -> list[Item]:
    """The step in progress: the last model output (its reasoning, any message, its function
    calls) and the calls' outputs, never split: the Responses API refuses a call without
    the reasoning that led to it. Earlier steps are history to compact, even when every step
    of a long turn was a tool call."""
    index = len(history)
    while index and history[index - 1].get("type") == "function_call_output":
        index -= 1
    answered = {i.get("call_id") for i in history[index:]}
    start = index
    while start and is_model_output(history[start - 1]):
        start -= 1
    calls = [i for i in history[start:index] if i.get("type") == "function_call"]
    if not calls:
        return []
    if not answered:
        return list(history[start:index])  # calls not run yet
    if any(c.get("call_id") not in answered for c in calls):
        return []
    return list(history[start:])


def retained_messages(history: Sequence[Item], counter: TokenCounter, budget: int) -> list[Item]:
    """The most recent user messages that fit ``budget`` tokens, oldest first."""
    kept: list[Item] = []
    used = 0
    for item in reversed(history):
        if not is_user_message(item):
            continue
        size = counter.count_items([item])
        if kept and used + size > budget:
            break
        message = item
        if size > budget:
            message = user_message(cut_to_tokens(message_text(item), budget, counter))
            size = counter.count_items([message])
        kept.append(message)
        used += size
    kept.reverse()
    return kept


def cut_to_tokens(text: str, budget: int, counter: TokenCounter) -> str:
    """``text`` cut head and tail to at most ``budget`` tokens (by the counter, so scripts
    with several bytes a token are cut as far as they need)."""
    limit = budget * 4
    cut = cut_text(text, limit, tail_share=0.3)
    for _ in range(8):
        tokens = counter.count(cut)
        if tokens <= budget:
            break
        limit = max(200, int(limit * budget / tokens * 0.95))
        cut = cut_text(text, limit, tail_share=0.3)
    return cut


def shorten_outputs(items: list[Item], limit: int) -> list[Item]:
    """``items`` with function outputs cut to ``limit`` characters (head and tail)."""
    shortened = []
    for item in items:
        output = item.get("output")
        if item.get("type") != "function_call_output" or not isinstance(output, (str, list)):
            shortened.append(item)
            continue
        if isinstance(output, list):  # text and images: the images go, the text is cut
            output = "".join(str(p.get("text", "")) for p in output if isinstance(p, dict))
        elif len(output) <= limit:
            shortened.append(item)
            continue
        shortened.append({**item, "output": cut_text(output, limit, tail_share=0.4)})
    return shortened


async def summarize_locally(
    provider: Provider,
    history: Sequence[Item],
    *,
    sizes: Sequence[int] | None = None,
    instructions: str,
    counter: TokenCounter,
    window: int,
    cache_key: str | None,
) -> tuple[str, Usage]:
    """The model's hand-off summary of ``history``, and the usage of the requests made.
    The oldest items are left out (never splitting a model output, or a call from its
    output) until the request fits the window."""
    if sizes is None:
        sizes = [counter.count_items([i]) for i in history]
    # A compaction item from an earlier remote compaction holds everything before it: it goes
    # to a provider that reads it (the same Responses server), never to one that cannot.
    keep_items = provider.supports_remote_compaction
    kept = [
        (i, n)
        for i, n in zip(history, sizes, strict=True)
        if keep_items or i.get("type") != "compaction"
    ]
    items = [i for i, _ in kept]
    counts = [n for _, n in kept]
    ask = user_message(prompt("compact"))
    room = window * 0.95 - counter.count(instructions) - counter.count_items([ask])
    used = Usage()
    while True:
        start, sent = _newest_that_fit(items, counts, room)
        try:
            result = await provider.complete(
                ModelRequest(
                    input=[*sent, ask], instructions=instructions, prompt_cache_key=cache_key
                )
            )
        except ContextLengthExceeded:
            if len(sent) <= 1:
                raise
            room = min(room, sum(counts[start:])) * 0.8  # the server counts more than we do
            continue
        if result.usage is not None:
            used = used + result.usage
        text = result.text.strip()
        if not text:
            raise CompactionError("the model returned an empty hand-off summary")
        return text, used


def _newest_that_fit(items: list[Item], sizes: list[int], room: float) -> tuple[int, list[Item]]:
    """Where the newest items whose sizes sum under ``room`` start (at least one item is
    kept), and those items, oldest first; an output whose call did not fit goes too."""
    total = sum(sizes)
    start = 0
    while total > room and start < len(items) - 1:
        total -= sizes[start]
        start += 1

    # Never start inside one model output (a call without its reasoning is refused): the
    # next boundary, else (nothing after it would be left) the one before.
    def boundary(index: int) -> bool:
        return index == 0 or not is_model_output(items[index - 1])

    ahead = next((i for i in range(start, len(items)) if boundary(i)), None)
    if ahead is not None and ahead < len(items):
        start = ahead
    else:
        while not boundary(start):
            start -= 1
    dropped_calls = {i.get("call_id") for i in items[:start] if i.get("type") == "function_call"}
    return start, [
        i
        for i in items[start:]
        if not (i.get("type") == "function_call_output" and i.get("call_id") in dropped_calls)
    ]


async def compact_history(
    provider: Provider,
    history: Sequence[Item],
    *,
    sizes: Sequence[int] | None = None,
    instructions: str,
    head: list[Item],
    counter: TokenCounter,
    window: int,
    user_budget: int,
    pending_limit: int,
    allow_remote: bool,
    cache_key: str | None,
) -> Compacted:
    """One compaction of ``history``. ``head`` (the context message and the ledger) starts
    the new history. Raises :class:`CompactionError` when neither way works."""
    pending = shorten_outputs(pending_items(history), pending_limit)
    body = list(history[: len(history) - len(pending_items(history))])
    body_sizes = list(sizes[: len(body)]) if sizes is not None else None
    remote_error: str | None = None
    if allow_remote and provider.supports_remote_compaction:
        try:
            result = await provider.compact(
                ModelRequest(
                    input=[i for i in body if not _is_head(i)],
                    instructions=instructions,
                    prompt_cache_key=cache_key,
                )
            )
        except (ModelError, CodexmaxError) as exc:
            remote_error = str(exc)
        else:
            output = list(result.items)
            summary = result.compaction_item
            # The server returns every user message; the newest within the budget are kept,
            # like a local compaction's, or a long session outgrows its window in user
            # messages alone. Anything else it returns, and the compaction item, verbatim.
            kept = retained_messages(output, counter, user_budget)
            others = [i for i in output if i is not summary and not is_user_message(i)]
            new = [*head, *others, *kept, *([summary] if summary is not None else []), *pending]
            return Compacted(new, "remote", summary, kept, result.usage or Usage())
    try:
        text, usage = await summarize_locally(
            provider,
            body,
            sizes=body_sizes,
            instructions=instructions,
            counter=counter,
            window=window,
            cache_key=cache_key,
        )
    except (ModelError, CodexmaxError) as exc:
        why = f"{exc}" + (
            f" (the compaction endpoint failed first: {remote_error})" if remote_error else ""
        )
        raise CompactionError(f"compaction failed: {why}") from exc
    summary = user_message(f"{prompt('summary_prefix')}\n{text}")
    retained = retained_messages(body, counter, user_budget)
    return Compacted([*head, *retained, summary, *pending], "local", summary, retained, usage)


def _is_head(item: Item) -> bool:
    """The session's own context and ledger messages (rebuilt, not compacted)."""
    text = message_text(item)
    if item.get("role") == "developer" and text.startswith("Workspace: "):
        return True
    return item.get("role") == "user" and text.startswith(LEDGER_MARK)
