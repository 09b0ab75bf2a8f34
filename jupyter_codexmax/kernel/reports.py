"""What ``%agent status``, ``history`` and ``proposals`` print, and the status a frontend
asks for (``agent.status``): read from a session, changing nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..text import plural
from .turnlog import describe_proposal, format_tokens

if TYPE_CHECKING:
    from ..config import CodexMax
    from .bridge import Bridge
    from .sessions import NotebookSession

__all__ = ["history_text", "proposals_text", "status_data", "status_text"]


def status_text(session: NotebookSession, settings: CodexMax, bridge: Bridge | None) -> str:
    from ..config import DEFAULT_BASE_URL
    from ..models import served_label

    agent = session.agent
    window = agent.meter.window
    used = agent.context_tokens()
    usage = agent.usage_total
    served = agent.served_model
    cost = (
        f"about ${agent.cost:.2f}"
        if agent.price() is not None
        else f"cost unknown (no price for {served or settings.model}: c.CodexMax.prices)"
    )
    answered = ""
    if served and served_label(served) == "scripted":
        answered = "; answered by the scripted model server, not a real model"
    elif served and not served.startswith(settings.model):
        answered = f"; answered by {served}"
    endpoint = "" if settings.base_url == DEFAULT_BASE_URL else f" at {settings.base_url}"
    if bridge is not None and bridge.present:
        client = bridge.peer.get("client") or "a frontend"
        where = f"{session.path}, live in {client} (bridge): edits and runs go there"
    elif session.path:
        where = f"{session.path} (found by {session.how}; not written: edits are proposals)"
    else:
        where = f"none: {session.how}"
    lines = [
        f"session {agent.session_id} · turn {agent.turns} · {'working' if agent.busy else 'idle'}",
        f"notebook: {where}",
        f"model: {settings.model} ({settings.provider}{endpoint}{answered}), effort "
        f"{settings.reasoning_effort or 'default'}, approval {settings.approval}",
        f"context: {format_tokens(used)} of {format_tokens(window)} tokens "
        f"({used / window:.0%}; {format_tokens(max(0, window - used))} left; "
        f"compaction at {settings.compaction_threshold:.0%}); "
        f"{plural(agent.compactions, 'compaction')}",
        f"usage: {usage.input_tokens:,} in ({usage.cached_input_tokens:,} cached), "
        f"{usage.output_tokens:,} out ({usage.reasoning_tokens:,} reasoning); {cost}",
    ]
    proposals = session.doc.proposals() if session.live is None else []
    if proposals:
        lines.append(
            f"proposed changes not applied: {len(proposals)} (%agent proposals lists them)"
        )
    return "\n".join(lines)


def status_data(session: NotebookSession | None, settings: CodexMax, busy: bool) -> dict[str, Any]:
    """The status for a frontend (``agent.status``); ``busy``: a background turn runs."""
    data: dict[str, Any] = {
        "model": settings.model,
        "effort": settings.reasoning_effort,
        "approval": settings.approval,
        "busy": busy,
    }
    if session is None:
        return {**data, "session_id": None}
    agent = session.agent
    usage = agent.usage_total
    return {
        **data,
        "session_id": agent.session_id,
        "turns": agent.turns,
        "busy": agent.busy,
        "context_tokens": agent.context_tokens(),
        "context_window": agent.meter.window,
        "compactions": agent.compactions,
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
        "cost_usd": round(agent.cost, 6) if agent.price() is not None else None,
        "served_model": agent.served_model,
        "pending_approvals": list(getattr(agent.approver, "pending", [])),
    }


def history_text(session: NotebookSession) -> str:
    lines = []
    if session.resumed is not None:
        lines.append(
            f"(turns 1-{session.resumed.turns} ran before this kernel started; the "
            "ledger below covers them)"
        )
    for log_ in session.turns:
        task = " ".join(log_.task.split())
        lines.append(f"turn {log_.turn}: {task[:100]} -> {log_.status}, {log_.steps} steps")
        for record in log_.calls:
            lines.append(f"  {record.title}")
    lines.append(session.agent.ledger.render())
    return "\n".join(lines)


def proposals_text(session: NotebookSession) -> str:
    found = session.doc.proposals()
    if not found:
        return "no proposed changes"
    blocks = []
    for number, proposal in enumerate(found, 1):
        blocks.append(f"{number}. {describe_proposal(proposal)}")
        blocks.append(proposal.diff or proposal.source)
    return "\n".join(blocks)
