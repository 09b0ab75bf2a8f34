"""The frontend's requests to the kernel (``agent.*``, docs/bridge.md): their params
checked, and what ``agent.session`` answers. The sidebar chat is their main user.

Every check is one line naming the field and why, raised as :class:`CodexmaxError` (the
bridge answers it ``ok: false``) before anything starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import APPROVALS
from ..errors import CodexmaxError
from ..models import EFFORTS
from .bridge import AGENT_METHODS

if TYPE_CHECKING:
    from .host import KernelHost

__all__ = ["AGENT_METHODS", "BUSY", "DECISIONS", "check_params", "session_data"]

DECISIONS = ("approve", "approve_session", "deny")

#: What a second request says while a turn runs (one turn at a time per notebook).
BUSY = "the agent is working on a turn in this notebook: wait for it to finish, or stop it"

#: Longest message a sidebar may send (characters): a task, not a data file.
MAX_MESSAGE = 200_000

_FIELDS: dict[str, tuple[str, ...]] = {
    "agent.session": (),
    "agent.turn": ("message", "effort", "model", "approval"),
    "agent.stop": (),
    "agent.approve": ("request_id", "decision"),
    "agent.status": (),
}


def check_params(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` of ``method`` as docs/bridge.md says, with absent and ``null`` optional
    fields dropped; :class:`CodexmaxError` (one line) otherwise."""
    allowed = _FIELDS.get(method)
    if allowed is None:
        raise CodexmaxError(f"unknown method {method!r}")
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise CodexmaxError(f"{method}: unknown param {unknown[0]!r}")
    given = {k: v for k, v in params.items() if v is not None}
    if method == "agent.turn":
        message = given.get("message")
        if not isinstance(message, str) or not message.strip():
            raise CodexmaxError("agent.turn: message must be a non-empty string")
        if len(message) > MAX_MESSAGE:
            raise CodexmaxError(
                f"agent.turn: message is {len(message):,} characters (at most {MAX_MESSAGE:,})"
            )
        _one_of(method, given, "effort", EFFORTS)
        _one_of(method, given, "approval", APPROVALS)
        model = given.get("model")
        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise CodexmaxError(f"{method}: model must be a non-empty string")
    elif method == "agent.approve":
        if "decision" not in given:
            raise CodexmaxError(f"{method}: decision is missing ({', '.join(DECISIONS)})")
        _one_of(method, given, "decision", DECISIONS)
        request_id = given.get("request_id")
        if request_id is not None and (not isinstance(request_id, str) or not request_id):
            raise CodexmaxError(f"{method}: request_id must be a non-empty string")
    return given


def _one_of(method: str, params: dict[str, Any], key: str, choices: tuple[str, ...]) -> None:
    value = params.get(key)
    if value is not None and value not in choices:
        shown = repr(value) if isinstance(value, str) else type(value).__name__
        raise CodexmaxError(f"{method}: {key} must be one of {', '.join(choices)}, not {shown}")


def session_data(host: KernelHost) -> dict[str, Any]:
    """``agent.session``: the notebook's session so far (the record as stored, the
    kernel's newest copy) and the status. Opens the notebook's stored session when this
    kernel has none yet; changes nothing."""
    session = host.current()
    record: dict[str, Any] | None = None
    if session is not None:
        agent = session.agent
        if agent.turns or session.resumed is not None:
            record = agent.session_record().to_json()
            record.pop("mark", None)  # this machine's integrity mark: not the frontend's
            record.pop("proposals", None)
    return {"record": record, "status": host.status_data()}
