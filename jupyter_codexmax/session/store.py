"""The session kept in the notebook: metadata key ``codexmax``, schema ``schema.json``.

The notebook is the unit of memory: the record travels with the file, so the next
``%%agent`` cell, ``jupyter codexmax run``, a new process, another machine or a colleague
carries on where the last turn ended. It holds the session id, model and effort, the last
compaction (the server's opaque item, or the model's hand-off summary), the most recent user
messages and final answers, the task ledger, the context's size and the usage totals.

**Size cap** (``CodexMax.session_cap``, 64 KiB by default). When the record is larger, parts
are dropped in this order until it fits, and counted in ``dropped``:

1. the oldest retained messages (the newest stays);
2. the ledger, a step at a time: the oldest half of its longest list, then earlier tasks and
   finished plan steps, then its texts cut short;
3. the newest message and a written summary are cut head and tail;
4. a remote compaction item (opaque, cannot be cut) is left out;
5. last resort, for caps far below the default: the written summary, then the newest
   message. The journal still holds everything. ``session_cap`` is at least 8 KiB, where
   the ledger's essentials always fit.

**Reading** validates the record. A damaged record, or one from a newer version, raises
:class:`SessionError` with a clear message, and the record is left as it is: never dropped
or overwritten unless the user asks for a new session.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from .. import secrets
from ..errors import CodexmaxError
from ..notebook.view import cut_text
from ..providers.base import Item
from ..providers.items import message_text
from .integrity import MARK_ROOM, is_ours

__all__ = [
    "METADATA_KEY",
    "OUTPUT_MIME",
    "SCHEMA_VERSION",
    "SessionError",
    "SessionRecord",
    "find_record",
    "fit_record",
    "latest_record",
    "read_record",
    "record_digest",
    "validate_record",
]

METADATA_KEY = "codexmax"
#: The mimetype under which a kernel keeps the record in the ``%%agent`` cell's own output
#: (a kernel never writes the notebook's file; whoever saves the notebook saves the output).
OUTPUT_MIME = "application/vnd.jupyter-codexmax.session+json"
SCHEMA_VERSION = 1


class SessionError(CodexmaxError):
    """The notebook's session record cannot be used. The record is left untouched."""

    exit_code = 2


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclass
class SessionRecord:
    """A session, as stored in the notebook."""

    session_id: str
    model: str
    provider: str = "responses"
    #: The model that last answered, as the server named it ("" before any answer): with
    #: the configured model unchanged, a resumed session knows it before its first answer
    #: (the panel's heading, the price in ``%agent status``).
    served_model: str = ""
    effort: str | None = None
    created: str = field(default_factory=now)
    updated: str = field(default_factory=now)
    turns: int = 0
    compactions: int = 0
    context_tokens: int = 0
    usage: dict[str, Any] = field(default_factory=dict)
    summary: Item | None = None
    messages: list[Item] = field(default_factory=list)
    ledger: dict[str, Any] = field(default_factory=dict)
    #: Edits a kernel's working copy held and the file did not (proposals), to put back
    #: after a restart.
    proposals: list[dict[str, Any]] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    #: This machine's integrity mark, as stored (:mod:`.integrity`).
    mark: str | None = None
    #: Whether the mark is valid here: written by this machine's agent (set when read).
    ours: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "session_id": self.session_id,
            "created": self.created,
            "updated": self.updated,
            "provider": self.provider,
            "model": self.model,
            "effort": self.effort,
            "turns": self.turns,
            "compactions": self.compactions,
            "context_tokens": self.context_tokens,
            "usage": self.usage,
            "summary": self.summary,
            "messages": self.messages,
            "ledger": self.ledger,
        }
        if self.served_model:
            data["served_model"] = self.served_model
        if self.proposals:
            data["proposals"] = self.proposals
        if self.dropped:
            data["dropped"] = self.dropped
        if self.mark is not None:
            data["mark"] = self.mark
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SessionRecord:
        return cls(
            session_id=data["session_id"],
            model=data["model"],
            provider=data.get("provider", "responses"),
            served_model=data.get("served_model", ""),
            effort=data.get("effort"),
            created=data["created"],
            updated=data["updated"],
            turns=data["turns"],
            compactions=data.get("compactions", 0),
            context_tokens=data["context_tokens"],
            usage=dict(data["usage"]),
            summary=data.get("summary"),
            messages=list(data["messages"]),
            ledger=dict(data["ledger"]),
            proposals=list(data.get("proposals", [])),
            dropped=dict(data.get("dropped", {})),
            mark=data.get("mark"),
            ours=is_ours(data),
        )

    def size(self) -> int:
        return len(json.dumps(self.to_json(), ensure_ascii=False).encode("utf-8"))


@cache
def _validator() -> Any:
    """The record's schema, compiled by fastjsonschema (nbformat's own validator). Not
    jsonschema: importing it loads every format checker, seconds with some of them
    installed. The schema uses nothing beyond draft 7 (``$defs`` are plain JSON pointers)."""
    import fastjsonschema

    schema = json.loads(resources.files(__package__).joinpath("schema.json").read_text("utf-8"))
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return fastjsonschema.compile(schema)


def validate_record(data: Any, where: str = "the notebook") -> None:
    """Raise :class:`SessionError` unless ``data`` is a version-1 record."""
    from fastjsonschema import JsonSchemaValueException

    if not isinstance(data, dict):
        raise SessionError(
            f"{where}: the codexmax session record is not an object; it was left as it is"
        )
    version = data.get("schema")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise SessionError(
            f"{where}: the codexmax session record was written by a newer jupyter-codexmax "
            f"(schema {version}; this one reads {SCHEMA_VERSION}); it was left as it is. "
            "Upgrade jupyter-codexmax to continue it, or start a new session"
        )
    try:
        _validator()(data)
    except JsonSchemaValueException as exc:
        path = "/".join(str(p) for p in exc.path[1:]) or "the record"
        message = exc.message.removeprefix(exc.name).strip() if exc.name else exc.message
        raise SessionError(
            f"{where}: the codexmax session record is damaged ({path}: "
            f"{' '.join(message.split())[:160]}); it was left as it is. Start a new "
            "session to replace it"
        ) from None


def read_record(metadata: Any, where: str = "the notebook") -> SessionRecord | None:
    """The notebook's session, None when it has none; :class:`SessionError` when damaged."""
    if not isinstance(metadata, dict) or METADATA_KEY not in metadata:
        return None
    data = metadata[METADATA_KEY]
    validate_record(data, where)
    return SessionRecord.from_json(data)


def record_digest(data: dict[str, Any]) -> str:
    """A record's identity, the same however the notebook stored it (key order, spacing)."""
    import hashlib

    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def record_sources(nb: Any) -> list[tuple[str, Any]]:
    """Every stored record in a notebook: its metadata's, and those kept in cell outputs
    (``%%agent`` cells), as (where, raw data)."""
    found: list[tuple[str, Any]] = []
    metadata = nb.get("metadata") if isinstance(nb, dict) else None
    if isinstance(metadata, dict) and METADATA_KEY in metadata:
        found.append(("metadata", metadata[METADATA_KEY]))
    for number, cell in enumerate(nb.get("cells") or [] if isinstance(nb, dict) else [], 1):
        outputs = cell.get("outputs") if isinstance(cell, dict) else None
        for output in outputs or []:
            data = output.get("data") if isinstance(output, dict) else None
            if isinstance(data, dict) and OUTPUT_MIME in data:
                found.append((f"the output of cell {number}", data[OUTPUT_MIME]))
    return found


def latest_record(
    nb: Any, where: str = "the notebook", extra: list[tuple[str, Any]] | None = None
) -> SessionRecord | None:
    """The most recent session stored in ``nb`` (metadata or ``%%agent`` outputs) or in
    ``extra`` sources; None when there is none. Every record is validated: a damaged or
    newer one is :class:`SessionError`, naming where it is, and is left as it is."""
    found = find_record(nb, where, extra)
    return found[1] if found is not None else None


def find_record(
    nb: Any, where: str = "the notebook", extra: list[tuple[str, Any]] | None = None
) -> tuple[str, SessionRecord] | None:
    """As :func:`latest_record`, with where the record was found (``metadata``, ``the
    output of cell N``, or the label of an ``extra`` source). Of equal records, the
    notebook's own comes first."""
    records: list[tuple[str, SessionRecord]] = []
    for label, data in [*record_sources(nb), *(extra or [])]:
        validate_record(data, f"{where} ({label})" if label != "metadata" else where)
        records.append((label, SessionRecord.from_json(data)))
    if not records:
        return None
    return max(records, key=lambda found: (found[1].updated, found[1].turns))


def fit_record(
    record: SessionRecord, cap: int, secret_values: list[str] | None = None
) -> SessionRecord:
    """``record`` with secrets masked and parts dropped, in the documented order, until its
    JSON fits ``cap`` bytes, with room left for the integrity mark it is signed with."""
    from ..agent.ledger import Ledger

    fitted = SessionRecord.from_json(secrets.redact_value(record.to_json(), secret_values or []))
    whole, cap = cap, cap - MARK_ROOM

    def count(what: str, n: int = 1) -> None:
        fitted.dropped[what] = fitted.dropped.get(what, 0) + n

    # 0. A working copy's proposals (the summary that listed them stays in its output).
    if fitted.size() > cap and fitted.proposals:
        count("proposals", len(fitted.proposals))
        fitted.proposals = []
    # 1. The oldest retained messages (the newest stays, for now).
    while fitted.size() > cap and len(fitted.messages) > 1:
        fitted.messages.pop(0)
        count("messages")
    # 2. The ledger, a step at a time (lists first, its texts last).
    ledger = Ledger.from_json(fitted.ledger)
    while fitted.size() > cap and ledger.shrink():
        fitted.ledger = ledger.to_json()
        count("ledger_entries")
    # 3. The newest message and a written summary, cut head and tail.
    if fitted.size() > cap and fitted.messages:
        fitted.messages[-1] = _cut_message(fitted.messages[-1], whole // 4)
        count("cut_messages")
    if fitted.size() > cap and fitted.summary and fitted.summary.get("type") != "compaction":
        over = fitted.size() - cap
        text = message_text(fitted.summary)
        fitted.summary = _replace_text(
            fitted.summary, cut_text(text, max(whole // 4, len(text) - over - 200))
        )
        count("cut_summary")
    # 4. A remote compaction item (opaque: it cannot be cut).
    if fitted.size() > cap and fitted.summary and fitted.summary.get("type") == "compaction":
        fitted.summary = None
        count("summary")
    # 5. Last resort (a cap far below the default): the written summary, then the newest
    #    message. The ledger's essentials (task, plan) stay.
    if fitted.size() > cap and fitted.summary:
        fitted.summary = None
        count("summary")
    while fitted.size() > cap and fitted.messages:
        fitted.messages.pop(0)
        count("messages")
    return fitted


def _replace_text(item: Item, text: str) -> Item:
    return {
        "type": "message",
        "role": item.get("role", "user"),
        "content": [
            {
                "type": "input_text" if item.get("role") != "assistant" else "output_text",
                "text": text,
            }
        ],
    }


def _cut_message(item: Item, limit: int) -> Item:
    text = message_text(item)
    return item if len(text) <= limit else _replace_text(item, cut_text(text, limit))
