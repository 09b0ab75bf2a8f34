"""Approval levels, and who answers when the agent asks.

=============  ==========  ==============  ==========  ===========  ============
level          read        notebook edit   run cells   shell        write files
=============  ==========  ==============  ==========  ===========  ============
``read-only``  allow       propose         refuse      refuse       propose
``ask``        allow       allow (undo)    ask         ask          ask
``auto``       allow       allow           allow       allow (*)    allow
=============  ==========  ==============  ==========  ===========  ============

(*) Where the OS sandbox is off (``jupyter_codexmax.sandbox``), ``auto`` asks before each
shell command: the dispatcher turns that "allow" into "ask".

"propose" runs the tool as a dry run: the model gets the diff it would have made, marked
as not applied. Whoever is asked answers approve, approve for the session (the same kind of
action on the same thing is not asked again), or deny. Headless runs have nobody to ask:
:class:`RefusingApprover` refuses at once, and the model is told why.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Literal, Protocol

from ..tools.registry import Access

__all__ = [
    "ApprovalRequest",
    "Approver",
    "Decision",
    "FutureApprover",
    "RefusingApprover",
    "policy",
]

Policy = Literal["allow", "ask", "propose", "refuse"]
Decision = Literal["approve", "approve_session", "deny", "refused"]

_TABLE: dict[str, dict[str, Policy]] = {
    "read-only": {
        "read": "allow",
        "notebook_edit": "propose",
        "run": "refuse",
        "shell": "refuse",
        "write": "propose",
    },
    "ask": {
        "read": "allow",
        "notebook_edit": "allow",
        "run": "ask",
        "shell": "ask",
        "write": "ask",
    },
    "auto": {
        "read": "allow",
        "notebook_edit": "allow",
        "run": "allow",
        "shell": "allow",
        "write": "allow",
    },
}


def policy(level: str, access: Access) -> Policy:
    return _TABLE[level][access]


@dataclass(frozen=True)
class ApprovalRequest:
    request_id: str
    access: Access
    tool: str
    summary: str
    detail: str
    #: What "approve for the session" remembers (same tool, same target).
    session_key: str


class Approver(Protocol):
    async def __call__(self, request: ApprovalRequest) -> Decision: ...


class RefusingApprover:
    """For runs with nobody to ask: every request is refused, at once."""

    reason = (
        "nobody can approve it in this run (headless, approval level 'ask'); run with "
        "--approval auto to allow it"
    )

    async def __call__(self, request: ApprovalRequest) -> Decision:
        return "refused"


class FutureApprover:
    """Waits for :meth:`resolve`, called by a surface (a button, a prompt, a chat reply)."""

    reason = "the user denied it"

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[Decision]] = {}

    async def __call__(self, request: ApprovalRequest) -> Decision:
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._waiting[request.request_id] = future
        try:
            return await future
        finally:
            self._waiting.pop(request.request_id, None)

    def resolve(self, request_id: str, decision: Decision) -> bool:
        """Answer a waiting request; False if none is waiting under that id."""
        future = self._waiting.get(request_id)
        if future is None or future.done():
            return False
        future.set_result(decision)
        return True

    @property
    def pending(self) -> list[str]:
        return list(self._waiting)


_ids = itertools.count(1)


def next_request_id() -> str:
    return f"approval-{next(_ids)}"
