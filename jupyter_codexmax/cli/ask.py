"""``jupyter codexmax ask``: one question, one streamed answer, no tools."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from ..config import CodexMax
from ..providers import (
    Completed,
    ModelRequest,
    ReasoningDelta,
    Retrying,
    TextDelta,
    Usage,
    open_provider,
)
from ..providers.items import user_message
from ..text import printable


def format_usage(usage: Usage) -> str:
    return (
        f"tokens: {usage.input_tokens:,} in ({usage.cached_input_tokens:,} cached), "
        f"{usage.output_tokens:,} out ({usage.reasoning_tokens:,} reasoning)"
    )


async def ask_async(
    settings: CodexMax,
    prompt: str,
    *,
    instructions: str,
    show_reasoning: bool = False,
    show_usage: bool = False,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Stream the answer to ``out``; notices to ``err``. Returns the exit status."""
    request = ModelRequest(input=[user_message(prompt)], instructions=instructions)
    completed: Completed | None = None
    async with open_provider(settings) as provider:
        stream = provider.stream(request)
        async with stream:
            at_line_start = True
            in_reasoning = False
            async for event in stream:
                if isinstance(event, TextDelta):
                    if in_reasoning:
                        err.write("\n")
                        err.flush()
                        in_reasoning = False
                    out.write(printable(event.text))
                    out.flush()
                    at_line_start = event.text.endswith("\n")
                elif isinstance(event, ReasoningDelta) and show_reasoning:
                    err.write(printable(event.text))
                    err.flush()
                    in_reasoning = True
                elif isinstance(event, Retrying):
                    if not at_line_start:
                        out.write("\n")
                        out.flush()
                        at_line_start = True
                    err.write(
                        f"jupyter-codexmax: {event.reason}; retrying in {event.delay:.1f} s "
                        f"({event.attempt}/{event.max_retries})\n"
                    )
                    err.flush()
                elif isinstance(event, Completed):
                    completed = event
            if not at_line_start:
                out.write("\n")
                out.flush()
    if completed is not None and show_usage and completed.usage is not None:
        err.write(f"jupyter-codexmax: {format_usage(completed.usage)}\n")
    if completed is not None and completed.status == "incomplete":
        err.write(
            "jupyter-codexmax: error: the answer was cut short "
            f"({completed.incomplete_reason or 'incomplete'})\n"
        )
        return 1
    return 0


def ask(settings: CodexMax, prompt: str, **kwargs: object) -> int:
    return asyncio.run(ask_async(settings, prompt, **kwargs))  # type: ignore[arg-type]
