"""The loop guard: the same failing call, made again and again, is stopped.

A model that repeats a call that fails (same tool, same arguments, same error) is not going
to get another answer by asking again. The guard counts each distinct failing call since a
call last succeeded. At ``repeated_failure_limit`` the call's output tells the model to
change course; at two more, the turn stops with an error that says which call it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import Counter
from typing import Any

from ..errors import CodexmaxError

__all__ = ["LoopGuard", "RepeatedFailure"]

#: Calls past the warning before the turn stops.
GRACE = 2


class RepeatedFailure(CodexmaxError):
    """The model kept making the same failing call; the turn stops."""


def _key(name: str, arguments: Any, output: Any) -> str:
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, sort_keys=True, default=str)
    else:
        with contextlib.suppress(ValueError, RecursionError):
            arguments = json.dumps(json.loads(arguments), sort_keys=True)
    text = output if isinstance(output, str) else json.dumps(output, default=str)
    digest = hashlib.sha256()
    for part in (name, arguments, text):
        digest.update(part.encode("utf-8", "replace"))
        digest.update(b"\0")
    return digest.hexdigest()


class LoopGuard:
    """Counts failing calls within a turn (by tool, arguments and error)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.counts: Counter[str] = Counter()

    def observe(self, call: dict[str, Any], output: Any, ok: bool) -> str | None:
        """After a call: None, or a note to add to its output. Raises
        :class:`RepeatedFailure` when the model has ignored the note."""
        if ok:
            self.counts.clear()
            return None
        name = str(call.get("name", ""))
        key = _key(name, call.get("arguments"), output)
        self.counts[key] += 1
        count = self.counts[key]
        if count >= self.limit + GRACE:
            shown = name if len(name) <= 40 else name[:40] + "..."
            raise RepeatedFailure(
                f"stopped: the model made the same failing {shown} call {count} times in a "
                "row, though told to change course (CodexMax.repeated_failure_limit)"
            )
        if count >= self.limit:
            return (
                f"\n[this exact call has now failed the same way {count} times; repeating it "
                "will not help. Change the arguments, try another way, or end the turn and "
                f"say what blocks you. {self.limit + GRACE - count} more such failure(s) and "
                "the turn stops.]"
            )
        return None
