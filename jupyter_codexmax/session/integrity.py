"""Whether a stored session was written by this machine's agent: an integrity mark.

A notebook can come from anyone, and its metadata can say anything: a "session" planted in
it could hand the model developer-role instructions presented as the agent's own history.
So every record the agent stores carries a mark, an HMAC-SHA256 of its content under a key
that never leaves this machine (``<jupyter data dir>/codexmax/record-key``, made on first use,
readable by the user only). A record with a valid mark is continued as it is; one without
(another machine, another user, an edited file) is continued as *data*: its messages go to
the model as quoted text in a user message, its written summary too, its opaque compaction
item and its proposals are left out, and its task ledger is labelled as coming from the file
(docs/session.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

__all__ = ["MARK_KEY", "is_ours", "sign"]

#: The record's key that holds the mark.
MARK_KEY = "mark"
_PREFIX = "hmac-sha256:"
#: The bytes a mark adds to a record's JSON (a SHA-256 hex digest): a record is fitted to
#: its cap less this, so that signed it still fits.
MARK_ROOM = len(json.dumps({MARK_KEY: _PREFIX + "0" * 64}))

_cached: dict[str, bytes] = {}


def _key_path() -> Path:
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "codexmax" / "record-key"


def _key() -> bytes:
    path = _key_path()
    cached = _cached.get(str(path))
    if cached is not None:
        return cached
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = b""
    if len(key) < 32:
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = path.read_bytes()  # another process made it first
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(fresh)
            key = fresh
    _cached[str(path)] = key
    return key


def _digest(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != MARK_KEY}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hmac.new(_key(), text.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with this machine's mark (a new dict); without one where no key can be
    read or made (a data folder that cannot be written): the record is still stored, and
    is read back as one from elsewhere (quoted), which is safe."""
    body = {k: v for k, v in record.items() if k != MARK_KEY}
    try:
        return {**body, MARK_KEY: _PREFIX + _digest(body)}
    except OSError:
        return body


def is_ours(record: dict[str, Any]) -> bool:
    """Whether ``record`` carries a valid mark of this machine (and user)."""
    mark = record.get(MARK_KEY)
    if not isinstance(mark, str) or not mark.startswith(_PREFIX):
        return False
    try:
        expected = _digest(record)
    except OSError:
        return False  # no key can be read or made: nothing is known to be ours
    return hmac.compare_digest(mark[len(_PREFIX) :], expected)
