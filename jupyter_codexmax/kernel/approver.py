"""Approvals in a kernel: the input prompt while a turn runs in the cell, the panel's
buttons while it runs in the background, a refusal where nobody can answer."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..agent.approvals import ApprovalRequest, Decision, FutureApprover
from .threads import Interrupted

if TYPE_CHECKING:
    from .host import KernelHost

__all__ = ["KernelApprover", "ask_in_prompt"]


class KernelApprover(FutureApprover):
    """Approvals in a kernel: asked in the input prompt while the turn runs in the cell (a
    click cannot reach a kernel that is busy), refused when no input is possible (nbclient,
    papermill); in a turn running in the background, answered by the panel's buttons."""

    def __init__(self, host: KernelHost) -> None:
        super().__init__()
        self.host = host
        self.reason = "the user denied it"

    async def __call__(self, request: ApprovalRequest) -> Decision:
        host = self.host
        if host.background:
            self.reason = "the user denied it"
            return await super().__call__(request)
        if not host.main.serving or not host.stdin_allowed():
            self.reason = (
                "nobody can answer an approval prompt in this run (no input: nbclient or "
                "papermill); use %%agent --approval auto to allow it"
            )
            return "refused"
        self.reason = "the user denied it"
        session = host.session
        view = session.view if session is not None else None
        # The panel shows what is asked (the code, the command); a text log does not.
        shown = view is not None and bool(view.mimebundle())
        if session is not None:
            session.prompted = True
        try:
            return await host.main.call(
                lambda: ask_in_prompt(request, detail=not shown), interruptible=True
            )
        except Interrupted:
            # An interrupt at the prompt stops the agent, as an interrupt anywhere in the
            # cell does: stopped here, on the agent's own loop, so nothing more is asked of
            # the model whichever thread hears of the interrupt first.
            self.reason = "the user interrupted the kernel"
            session = host.session
            if session is not None:
                session.agent.stop()
                await asyncio.sleep(0)  # the stop takes effect here
            return "deny"


def ask_in_prompt(request: ApprovalRequest, *, detail: bool = True) -> Decision:
    """``input()`` on the main thread: y(es), n(o), a(lways, for this session); the
    request's detail printed first unless the panel shows it."""
    if detail and request.detail:
        print(request.detail[:2_000], flush=True)
    while True:
        answer = (
            input(f"Allow {request.summary}? [y]es / [n]o / [a]lways this session: ")
            .strip()
            .lower()
        )
        if answer in ("y", "yes"):
            return "approve"
        if answer in ("n", "no", ""):
            return "deny"
        if answer in ("a", "always"):
            return "approve_session"
