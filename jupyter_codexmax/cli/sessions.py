"""``jupyter codexmax session``, ``compact`` and ``strip``: the session stored in notebooks."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TextIO

from ..config import CodexMax
from ..notebook.document import NotebookError
from ..notebook.file import FileNotebook
from ..providers.items import message_text
from ..session.journal import MACHINE, kept_here
from ..session.store import (
    METADATA_KEY,
    OUTPUT_MIME,
    SessionError,
    SessionRecord,
    find_record,
    record_sources,
)
from ..text import printable

__all__ = ["compact_notebook", "show_session", "strip_notebooks"]


def _open(path: str, journal: bool = True) -> tuple[FileNotebook, str, SessionRecord | None]:
    """The notebook, and its latest session (the notebook's, or the one this machine keeps
    for it when that is newer) with where it was found."""
    doc = FileNotebook.open(path)
    found = find_record(doc.nb, str(doc.path), kept_here(doc.path, doc.ids) if journal else [])
    return (doc, *found) if found is not None else (doc, "", None)


def _kept(source: str) -> str:
    if source == MACHINE:
        return (
            "on this machine only, not in the notebook (a read-only run, an old nbformat, "
            "or a kernel's session not yet saved with the notebook); the next run or "
            "%%agent here continues it"
        )
    return "in the notebook's metadata" if source == "metadata" else f"in {source}"


def show_session(
    path: str, *, as_json: bool, cap: int, journal: bool = True, out: TextIO = sys.stdout
) -> int:
    doc, source, record = _open(path, journal)
    if record is None:
        print(f"{doc.path}: no jupyter-codexmax session", file=out)
        return 0
    if as_json:
        json.dump(record.to_json(), out, indent=1, ensure_ascii=False)
        out.write("\n")
        return 0
    usage = record.usage
    size = record.size()
    print(f"{doc.path}: session {record.session_id}", file=out)
    print(f"  kept: {_kept(source)}", file=out)
    if not record.ours:
        print(
            "  written by: another machine or person, or edited since (not verified: the "
            "next run or %%agent continues it as quoted data, not instructions)",
            file=out,
        )
    print(f"  model: {record.model} ({record.provider}), effort {record.effort}", file=out)
    print(
        f"  turns: {record.turns}; compactions: {record.compactions}; created "
        f"{record.created}; updated {record.updated}",
        file=out,
    )
    print(f"  context: {record.context_tokens:,} tokens", file=out)
    print(
        f"  usage: {usage.get('input_tokens', 0):,} in ({usage.get('cached_input_tokens', 0):,}"
        f" cached), {usage.get('output_tokens', 0):,} out "
        f"({usage.get('reasoning_tokens', 0):,} reasoning); about "
        f"${usage.get('cost_usd', 0.0):.2f}",
        file=out,
    )
    print(
        f"  size: {size:,} bytes of {cap:,}"
        + (
            f"; dropped to fit: {', '.join(f'{v} {k}' for k, v in record.dropped.items())}"
            if record.dropped
            else ""
        ),
        file=out,
    )
    summary = record.summary
    if summary is None:
        print("  summary: none yet (no compaction)", file=out)
    elif summary.get("type") == "compaction":
        print(
            f"  summary: the server's compaction item (opaque, "
            f"{len(summary.get('encrypted_content', '')):,} characters)",
            file=out,
        )
    else:
        text = printable(message_text(summary))
        print("  summary:\n    " + text.replace("\n", "\n    "), file=out)
    from ..agent.ledger import Ledger

    ledger = Ledger.from_json(record.ledger)
    if not record.ours:
        ledger.origin = "file"
    print("  " + printable(ledger.render()).replace("\n", "\n  "), file=out)
    print(f"  messages kept: {len(record.messages)}", file=out)
    return 0


def strip_notebooks(paths: list[str], out: TextIO = sys.stdout) -> int:
    """Remove the agent's sessions from each notebook (the metadata key, and the records kept
    in ``%%agent`` outputs, whose readable summaries stay); others are not touched."""
    from ..secrets import redact

    status = 0
    for path in paths:
        try:
            doc = FileNotebook.open(path)
        except NotebookError as exc:
            print(f"jupyter-codexmax: error: {redact(str(exc))}", file=sys.stderr)
            status = 2
            continue
        if not record_sources(doc.nb):
            continue
        if not doc.writable:
            print(
                f"jupyter-codexmax: error: {doc.path}: old nbformat, not rewritten", file=sys.stderr
            )
            status = 2
            continue
        for cell in doc.nb.cells:
            for output in cell.get("outputs") or []:
                data = output.get("data")
                if isinstance(data, dict):
                    data.pop(OUTPUT_MIME, None)
        asyncio.run(doc.remove_metadata(METADATA_KEY))
        doc.dirty = True
        try:
            asyncio.run(doc.save())
        except (OSError, NotebookError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            print(
                f"jupyter-codexmax: error: {doc.path}: not written: {redact(reason)}",
                file=sys.stderr,
            )
            status = 2
            continue
        print(f"stripped {doc.path}", file=out)
    return status


def compact_notebook(settings: CodexMax, path: str, out: TextIO = sys.stdout) -> int:
    from ..agent.core import Agent
    from ..workspace import Workspace

    doc, _, record = _open(path, settings.journal)
    if record is None:
        raise SessionError(f"{doc.path}: no jupyter-codexmax session to compact")
    if not doc.writable:
        raise SessionError(f"{doc.path}: old nbformat; the session cannot be saved back")
    workspace = Workspace.for_notebook(doc.location, settings.workspace_root or None)

    async def go() -> str:
        # Saving the compacted session is what was asked for, at any approval level.
        agent = Agent(settings, workspace=workspace, notebook=doc, resume=record, approval="ask")
        try:
            return await agent.compact()
        finally:
            await agent.aclose()

    print(f"{doc.path}: {asyncio.run(go())}", file=out)
    return 0
