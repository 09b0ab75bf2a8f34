"""What the agent core tells the surfaces: typed events, one dataclass each.

Every surface (the ``run`` command's log, the widget panel, the sidebar chat) is a renderer
of these. Events never carry secrets: tool output is redacted before it reaches them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ApprovalRequested",
    "ApprovalResolved",
    "AssistantMessage",
    "CellEdited",
    "CellRan",
    "CompactionFailed",
    "CompactionFinished",
    "CompactionStarted",
    "ErrorEvent",
    "Event",
    "FileChanged",
    "Notice",
    "PlanUpdated",
    "ReasoningDelta",
    "RetryNotice",
    "StepStarted",
    "TextDelta",
    "ToolCallFinished",
    "ToolCallStarted",
    "TurnFinished",
    "TurnStarted",
    "UsageUpdated",
    "to_json",
]


@dataclass(frozen=True)
class TurnStarted:
    turn: int
    message: str


@dataclass(frozen=True)
class StepStarted:
    """The agent sends a request to the model (one step of a turn)."""

    turn: int
    step: int


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class AssistantMessage:
    """A finished piece of the answer's text."""

    text: str


@dataclass(frozen=True)
class ToolCallStarted:
    call_id: str
    name: str
    arguments: dict[str, Any]
    summary: str


@dataclass(frozen=True)
class ToolCallFinished:
    call_id: str
    name: str
    ok: bool
    summary: str
    duration: float
    output: str = ""


@dataclass(frozen=True)
class CellEdited:
    """A cell was inserted, changed, deleted or moved (or would be, for a proposal)."""

    cell_id: str
    action: Literal["insert", "replace", "delete", "move"]
    diff: str
    applied: bool = True


@dataclass(frozen=True)
class FileChanged:
    """A workspace file was added, updated, deleted or moved (by ``apply_patch``)."""

    path: str
    action: Literal["added", "updated", "deleted", "moved"]
    diff: str = ""


@dataclass(frozen=True)
class CellRan:
    cell_id: str
    status: str
    duration: float
    execution_count: int | None = None
    output: str = ""
    error: str | None = None


@dataclass(frozen=True)
class PlanUpdated:
    steps: list[dict[str, str]]
    explanation: str = ""


@dataclass(frozen=True)
class ApprovalRequested:
    request_id: str
    kind: str
    summary: str
    detail: str = ""


@dataclass(frozen=True)
class ApprovalResolved:
    request_id: str
    decision: Literal["approve", "approve_session", "deny", "refused"]
    reason: str = ""


@dataclass(frozen=True)
class UsageUpdated:
    """Tokens the server reported for the last request, and totals for the session (with
    its estimated cost in US dollars, None when the model's price is unknown). ``model``:
    the model that answered, as the server named it (``scripted:...`` for the scripted
    server)."""

    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    total_input_tokens: int
    total_output_tokens: int
    context_tokens: int
    context_window: int
    cost_usd: float | None = 0.0
    model: str = ""


@dataclass(frozen=True)
class CompactionStarted:
    """The history is being compacted: ``reason`` is threshold, overflow or requested."""

    reason: str
    tokens: int
    limit: int


@dataclass(frozen=True)
class CompactionFinished:
    method: str  # remote or local
    before: int
    after: int
    attempts: int
    compactions: int


@dataclass(frozen=True)
class CompactionFailed:
    message: str


@dataclass(frozen=True)
class RetryNotice:
    attempt: int
    max_retries: int
    delay: float
    reason: str


@dataclass(frozen=True)
class Notice:
    message: str


@dataclass(frozen=True)
class ErrorEvent:
    message: str
    fatal: bool = True


@dataclass(frozen=True)
class TurnFinished:
    turn: int
    status: Literal["done", "stopped", "failed"]
    final_text: str = ""
    steps: int = 0
    error: str | None = None
    changes: dict[str, Any] = field(default_factory=dict)


Event = (
    TurnStarted
    | StepStarted
    | TextDelta
    | ReasoningDelta
    | AssistantMessage
    | ToolCallStarted
    | ToolCallFinished
    | CellEdited
    | FileChanged
    | CellRan
    | PlanUpdated
    | ApprovalRequested
    | ApprovalResolved
    | UsageUpdated
    | CompactionStarted
    | CompactionFinished
    | CompactionFailed
    | RetryNotice
    | Notice
    | ErrorEvent
    | TurnFinished
)


def to_json(event: Event) -> dict[str, Any]:
    """An event as JSON for a frontend: ``type`` (the class name) and its fields."""
    import dataclasses

    return {"type": type(event).__name__, **dataclasses.asdict(event)}
