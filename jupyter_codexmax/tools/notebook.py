"""Notebook tools: read the notebook, edit cells, run cells, restart the kernel."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Callable
from typing import Any

from ..diffs import unified_diff
from ..events import CellEdited, CellRan
from ..notebook.document import CELL_TYPES, CellNotFound, NotebookDocument, NotebookReadOnly
from ..notebook.view import cut_text, merge_streams, render_cells, render_outputs
from ..runners.base import CellRun, KernelError
from .files import page_budget
from .registry import Access, Tool, ToolContext, ToolError, ToolResult

__all__ = ["EditNotebook", "ReadNotebook", "RestartKernel", "RunCells", "cell_diff"]

#: Characters of each output shown after a run (the notebook overview shows less).
RUN_OUTPUT_LIMIT = 4_000
#: Bounds of cell numbers and ids in arguments (far beyond any real notebook).
MAX_CELLS = 10_000_000
_CELL_ID: dict[str, Any] = {"type": "string", "maxLength": 1_000}


def cell_diff(cell_id: str, old: str, new: str) -> str:
    """A unified diff of one cell's source."""
    return unified_diff(old, new, fromfile=f"cell {cell_id}", tofile=f"cell {cell_id}").rstrip("\n")


def _doc(ctx: ToolContext) -> NotebookDocument:
    if ctx.doc is None:
        raise ToolError("no notebook is open in this session")
    return ctx.doc


class ReadNotebook(Tool):
    name = "read_notebook"
    description = (
        "Show the notebook's cells: ids, types, sources (always whole) and outputs (long ones "
        "cut). Large notebooks come in pages; start/end are 1-based cell numbers."
    )
    parameters = {
        "type": "object",
        "properties": {
            "start": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_CELLS,
                "description": "First cell number (default 1).",
            },
            "end": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_CELLS,
                "description": "Last cell number (default: last).",
            },
        },
        "additionalProperties": False,
    }

    def summarize(self, args: dict[str, Any]) -> str:
        if "start" in args or "end" in args:
            return f"read_notebook {args.get('start', 1)}-{args.get('end', 'end')}"
        return "read_notebook"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        doc = _doc(ctx)
        total = len(doc.cells)
        if total == 0:
            return ToolResult("(the notebook has no cells)", "0 cells")
        start = int(args.get("start", 1))
        if not 1 <= start <= total:
            raise ToolError(f"start must be between 1 and {total} (the notebook's cell count)")
        end = args.get("end")
        if end is not None and end < start:
            raise ToolError(f"end ({end}) comes before start ({start})")
        view = render_cells(
            doc, start=start, end=end, image_ok=ctx.image_ok, budget=page_budget(ctx)
        )
        edited = ctx.state.setdefault("edited_since_run", set())
        text = view.text
        if edited:
            stale = [doc.short_id(i) for i, cid in enumerate(doc.ids) if cid in edited]
            if stale:
                text += f"\n§ (edited since last run: {', '.join(stale)})"
        return ToolResult(
            text, f"cells {view.first}-{view.last} of {view.total}", images=view.images
        )


_EDIT = {
    "type": "object",
    "properties": {
        "action": {
            "type": "string",
            "enum": ["insert", "replace", "delete", "move", "find_replace"],
        },
        "cell_id": {**_CELL_ID, "description": "The cell to change (not for insert)."},
        "after": {
            **_CELL_ID,
            "description": (
                "insert/move: the id of the cell to place it after; '' for the top; omit for "
                "the end."
            ),
        },
        "cell_type": {"type": "string", "enum": list(CELL_TYPES)},
        "source": {"type": "string", "description": "insert/replace: the whole new source."},
        "find": {"type": "string", "description": "find_replace: exact text to find."},
        "replace": {"type": "string", "description": "find_replace: its replacement."},
        "all": {"type": "boolean", "description": "find_replace: every occurrence."},
    },
    "required": ["action"],
    "additionalProperties": False,
}


class EditNotebook(Tool):
    name = "edit_notebook"
    description = (
        "Change cells: insert, replace (whole source), delete, move, or find_replace (exact "
        "text inside one cell; whitespace differences tolerated when unambiguous). Several "
        "edits apply together or not at all. Returns a diff per edit. Edits do not run cells."
    )
    parameters = {
        "type": "object",
        "properties": {
            "edits": {"type": "array", "items": _EDIT, "minItems": 1, "maxItems": 1_000}
        },
        "required": ["edits"],
        "additionalProperties": False,
    }
    access: Access = "notebook_edit"

    def summarize(self, args: dict[str, Any]) -> str:
        edits = args.get("edits") or []
        parts = [
            f"{e.get('action')} {e.get('cell_id', '')}".strip()
            for e in edits[:3]
            if isinstance(e, dict)
        ]
        more = f" +{len(edits) - 3}" if len(edits) > 3 else ""
        return "edit_notebook " + ", ".join(parts) + more

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        doc = _doc(ctx)
        if not doc.writable:
            raise ToolError(str(_readonly(doc)))
        target: NotebookDocument = ScratchNotebook(doc) if ctx.propose_only else doc
        before = doc.checkpoint("edit")
        results: list[tuple[str, str, str]] = []
        try:
            for number, edit in enumerate(args["edits"], 1):
                where = f"edit {number}" if len(args["edits"]) > 1 else "the edit"
                try:
                    results.append(await _apply(target, edit))
                except (ToolError, CellNotFound) as exc:
                    raise ToolError(f"{where}: {exc}") from exc
            unsaved = ""
            if not ctx.propose_only:
                # Written (the live notebook: sent to the frontend) before it is reported:
                # the frontend refuses an edit of a cell the user changed meanwhile. A file
                # that cannot be written keeps the change in memory (said to the model).
                unsaved = await save_or_say(ctx, doc)
        except BaseException:
            if not ctx.propose_only:
                await doc.restore(before)
                await doc.save()  # back to what is on disk: nothing is written
            raise
        working_copy = doc.edits_are_proposals
        applied = not ctx.propose_only and not working_copy
        changed = not ctx.propose_only
        edited = ctx.state.setdefault("edited_since_run", set())
        short_to_full = {target.short_id(i): cid for i, cid in enumerate(target.ids)}
        for cell_id, action, diff in results:
            ctx.emit(CellEdited(cell_id, action, diff, applied=applied))  # type: ignore[arg-type]
            if changed and action in ("insert", "replace") and cell_id in short_to_full:
                # Full ids: short ones can change as cells come and go.
                edited.add(short_to_full[cell_id])
            if changed:
                ctx.state.setdefault("cells_touched", set()).add(cell_id)
        head = (
            "PROPOSED, not applied (approval level read-only); the user can apply it:\n"
            if ctx.propose_only
            else "Applied to your working copy of the notebook (the kernel does not write the "
            "open notebook: the user sees these as proposals to apply; your reads and runs "
            "use the working copy):\n"
            if working_copy
            else ""
        )
        body = "\n".join(
            f"{action} {cell_id}:\n{diff}" if diff else f"{action} {cell_id}"
            for cell_id, action, diff in results
        )
        summary = ", ".join(f"{a} {c}" for c, a, _ in results)
        if unsaved:
            body += "\n" + unsaved
        return ToolResult(head + body, ("proposed " if not applied else "") + summary)


async def save_or_say(ctx: ToolContext, doc: NotebookDocument) -> str:
    """Save the notebook; "" when that worked, else a line for the model (a full disk, a
    file that cannot be written: the change is kept in the agent's copy, and written with
    the next save). A notebook changed on disk by someone else is not this: it ends the
    turn (:class:`~..notebook.document.NotebookError`)."""
    try:
        await doc.save()
    except OSError as exc:
        from ..agent.dispatch import failure_text

        ctx.state["save_failure"] = failure_text(exc)
        return (
            f"§ not saved: the notebook could not be written ({failure_text(exc)}); the "
            "change is kept in memory and written with the next save"
        )
    return ""


def _readonly(doc: NotebookDocument) -> NotebookReadOnly:
    try:
        doc._require_writable()
    except NotebookReadOnly as exc:
        return exc
    return NotebookReadOnly("read-only")


def _position_after(doc: NotebookDocument, after: str | None) -> int:
    if after is None:
        return len(doc.cells)
    if after.strip() in ("", "top", "start"):
        return 0
    return doc.index_of(after) + 1


async def _apply(doc: NotebookDocument, edit: dict[str, Any]) -> tuple[str, str, str]:
    action = edit["action"]

    def need(key: str) -> Any:
        if key not in edit:
            raise ToolError(f"{action} needs {key!r}")
        return edit[key]

    if action == "insert":
        source = str(need("source"))
        index = _position_after(doc, edit.get("after"))
        cell_id = await doc.insert_cell(index, edit.get("cell_type", "code"), source)
        return doc.short_id(doc.index_of(cell_id)), "insert", cell_diff(cell_id, "", source)
    cell_id = str(need("cell_id"))
    index = doc.index_of(cell_id)
    full_id = doc.cell_id(index)
    short = doc.short_id(index)
    if action == "replace":
        source = str(need("source"))
        old = await doc.set_source(full_id, source, edit.get("cell_type"))
        return short, "replace", cell_diff(short, old, source)
    if action == "delete":
        cell = await doc.delete_cell(full_id)
        return short, "delete", cell_diff(short, str(cell.get("source", "")), "")
    if action == "move":
        if "after" not in edit:
            raise ToolError("move needs 'after' (a cell id, or '' for the top)")
        after = str(edit["after"]).strip()
        if after not in ("", "top", "start") and doc.index_of(after) == index:
            raise ToolError("a cell cannot be moved after itself")
        target = _position_after(doc, edit["after"])
        if target > index:
            target -= 1
        old_index = await doc.move_cell(full_id, target)
        return short, "move", f"moved from position {old_index + 1} to {target + 1}"
    # find_replace
    find = str(need("find"))
    replacement = str(need("replace"))
    if not find:
        raise ToolError("find_replace needs a non-empty 'find'")
    old = str(doc.nb.cells[index].get("source", ""))
    new = _find_replace(old, find, replacement, bool(edit.get("all")))
    await doc.set_source(full_id, new)
    return short, "replace", cell_diff(short, old, new)


def _find_replace(source: str, find: str, replacement: str, every: bool) -> str:
    count = source.count(find)
    if count == 1 or (count > 1 and every):
        return source.replace(find, replacement)
    if count > 1:
        raise ToolError(
            f"'find' occurs {count} times in the cell; give more context, or set all=true"
        )
    # Tolerate whitespace differences: match line by line, ignoring indentation and
    # trailing space, when that finds exactly one place.
    want = [line.strip() for line in find.strip("\n").splitlines()]
    lines = source.splitlines(keepends=True)
    hits = [
        i
        for i in range(len(lines) - len(want) + 1)
        if [ln.strip() for ln in lines[i : i + len(want)]] == want
    ]
    if len(hits) == 1:
        i = hits[0]
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        repl_lines = replacement.strip("\n").splitlines()
        base = min((len(r) - len(r.lstrip()) for r in repl_lines if r.strip()), default=0)
        rebuilt = "".join(indent + r[base:] + "\n" if r.strip() else "\n" for r in repl_lines)
        tail = lines[i + len(want) - 1]
        if not tail.endswith("\n"):
            rebuilt = rebuilt.rstrip("\n")
        return "".join(lines[:i]) + rebuilt + "".join(lines[i + len(want) :])
    if len(hits) > 1:
        raise ToolError(
            "'find' matches several places once whitespace is ignored; give more context"
        )
    raise ToolError("'find' does not occur in the cell; read the cell and copy the text exactly")


class ScratchNotebook(NotebookDocument):
    """A copy of a notebook that edits can be tried on (for proposals)."""

    def __init__(self, doc: NotebookDocument) -> None:
        super().__init__(doc.path, copy.deepcopy(doc.nb), list(doc.ids))
        self._version = doc.version

    @property
    def version(self) -> tuple[int, int]:
        return self._version

    async def _changed(self) -> None:
        return None

    async def save(self) -> bool:
        return False


class RunCells(Tool):
    name = "run_cells"
    description = (
        "Run code cells in the notebook's kernel, in order, stopping at the first error. "
        "Give cell_ids, or start_id (and end_id) for a range, or all=true. Returns each "
        "cell's status, outputs and error."
    )
    parameters = {
        "type": "object",
        "properties": {
            "cell_ids": {"type": "array", "items": _CELL_ID},
            "start_id": _CELL_ID,
            "end_id": {**_CELL_ID, "description": "Default: the last cell."},
            "all": {"type": "boolean"},
            "timeout": {
                "type": "number",
                "exclusiveMinimum": 0,
                "description": "Seconds per cell; at most the user's cell timeout.",
            },
        },
        "additionalProperties": False,
    }
    access: Access = "run"

    def summarize(self, args: dict[str, Any]) -> str:
        if args.get("all"):
            return "run_cells all"
        if args.get("cell_ids"):
            return "run_cells " + " ".join(str(c) for c in args["cell_ids"][:5])
        return f"run_cells {args.get('start_id', '')}..{args.get('end_id', 'end')}"

    def approval_detail(self, ctx: ToolContext, args: dict[str, Any]) -> str:
        doc = _doc(ctx)
        parts = []
        for index in self._indices(doc, args)[:10]:
            cell = doc.nb.cells[index]
            if cell.get("cell_type") == "code":
                parts.append(f"# cell {doc.short_id(index)}\n{cell.get('source', '')}")
        return "\n\n".join(parts) or "(no code cells)"

    def _indices(self, doc: NotebookDocument, args: dict[str, Any]) -> list[int]:
        modes = [bool(args.get("cell_ids")), "start_id" in args, bool(args.get("all"))]
        if sum(modes) != 1:
            raise ToolError("give exactly one of cell_ids, start_id (with end_id), all=true")
        if args.get("all"):
            return list(range(len(doc.cells)))
        if args.get("cell_ids"):
            return [doc.index_of(c) for c in args["cell_ids"]]
        start = doc.index_of(args["start_id"])
        end = doc.index_of(args["end_id"]) if args.get("end_id") else len(doc.cells) - 1
        if end < start:
            raise ToolError("end_id comes before start_id")
        return list(range(start, end + 1))

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        doc = _doc(ctx)
        if ctx.runner is None:
            raise ToolError("there is no kernel to run cells in")
        if not doc.writable:
            raise ToolError(str(_readonly(doc)))
        indices = self._indices(doc, args)
        # The user's cell timeout is a cap: the model may ask for less, never for more.
        timeout = min(float(args.get("timeout") or ctx.cell_timeout), ctx.cell_timeout)
        ctx.state["_run_images"] = []
        try:
            blocks, statuses, ok = await self._run(ctx, doc, indices, timeout)
        except BaseException:
            # Stopped, or the kernel failed: what ran is kept (its outputs, its
            # KeyboardInterrupt), as Jupyter would keep it.
            with contextlib.suppress(Exception):
                await doc.save()
            raise
        # Written once for the whole call, not after every cell: a large notebook costs
        # one write per run, not one per cell.
        unsaved = await save_or_say(ctx, doc)
        if unsaved:
            blocks.append(unsaved)
        if not blocks:
            return ToolResult("no code cells to run", "nothing to run")
        return ToolResult(
            "\n".join(blocks), ", ".join(statuses), ok=ok, images=ctx.state.pop("_run_images", [])
        )

    async def _run(
        self, ctx: ToolContext, doc: NotebookDocument, indices: list[int], timeout: float
    ) -> tuple[list[str], list[str], bool]:
        blocks: list[str] = []
        statuses: list[str] = []
        ok = True
        assert ctx.runner is not None
        for position, index in enumerate(indices):
            if doc.nb.cells[index].get("cell_type") != "code":
                continue
            if calls_the_agent(str(doc.nb.cells[index].get("source", ""))):
                blocks.append(
                    f"§{index + 1} {doc.short_id(index)} not run: it is a %%agent cell (it "
                    "talks to you; running it would start another turn)"
                )
                continue
            try:
                result = await ctx.runner.run(doc, index, timeout)
            except KernelError as exc:
                # What ran before stays reported; the kernel problem ends the run.
                if not blocks:
                    raise ToolError(str(exc)) from exc
                blocks.append(f"§ stopped: {exc}")
                ok = False
                break
            except asyncio.CancelledError:
                # Stopped: the runner interrupted the cell and waited for it; keep what it
                # printed (and its KeyboardInterrupt), as Jupyter would.
                mask_outputs(doc.nb.cells[index], ctx.redact)
                await doc.outputs_changed(doc.cell_id(index))
                raise
            if result.status == "skipped":
                continue
            # What the agent's run printed is written with the notebook: never a secret.
            mask_outputs(doc.nb.cells[index], ctx.redact)
            await doc.outputs_changed(doc.cell_id(index))
            ctx.state.setdefault("edited_since_run", set()).discard(doc.cell_id(index))
            ctx.state.setdefault("cells_run", {})[doc.cell_id(index)] = result.status
            block, _ = _describe_run(ctx, doc, index, result)
            note = getattr(ctx.runner, "note", "")
            if note and not ctx.state.get("_kernel_note_told"):
                ctx.state["_kernel_note_told"] = True
                block = f"§ note: {note}\n{block}"
            blocks.append(block)
            statuses.append(f"{doc.short_id(index)} {result.status}")
            if result.status != "ok":
                ok = False
                rest = [
                    doc.short_id(i)
                    for i in indices[position + 1 :]
                    if doc.nb.cells[i].get("cell_type") == "code"
                ]
                if rest:
                    blocks.append(f"§ not run (stopped at the {result.status}): " + ", ".join(rest))
                break
        return blocks, statuses, ok


def mask_outputs(cell: Any, redact: Callable[[str], str]) -> None:
    """Mask every secret in a cell's outputs, in place (text, tracebacks, rich data; images
    are pixels, not text, and are left as they are)."""

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return redact(value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            for key, item in value.items():
                if not str(key).startswith("image/"):
                    value[key] = walk(item)
        return value

    for output in cell.get("outputs") or []:
        walk(output)


def calls_the_agent(source: str) -> bool:
    """Whether a cell is an ``%%agent`` cell, or runs an ``%agent`` command on any line."""
    return any(
        line.strip().startswith(("%%agent", "%agent"))
        or "run_line_magic('agent'" in line
        or 'run_line_magic("agent"' in line
        or "run_cell_magic('agent'" in line
        or 'run_cell_magic("agent"' in line
        for line in source.splitlines()
    )


def _describe_run(
    ctx: ToolContext, doc: NotebookDocument, index: int, result: CellRun
) -> tuple[str, list[Any]]:
    images: list[Any] = ctx.state.setdefault("_run_images", [])
    count = f" [{result.execution_count}]" if result.execution_count is not None else ""
    head = f"§{index + 1} {doc.short_id(index)}{count} {result.status} {result.duration:.1f}s"
    if result.note:
        head += f" ({result.note})"
    lines = [head]
    outputs = merge_streams(list(result.outputs))
    lines.extend(
        render_outputs(outputs, limit=RUN_OUTPUT_LIMIT, images=images, image_ok=ctx.image_ok)
    )
    if not outputs and result.status == "ok":
        lines.append("(no output)")
    text = ctx.redact("\n".join(lines))
    error = f"{result.error_name}: {result.error_value}" if result.error_name else None
    ctx.emit(
        CellRan(
            doc.short_id(index),
            result.status,
            result.duration,
            result.execution_count,
            cut_text(text, 2_000),
            ctx.redact(error) if error else None,
        )
    )
    return text, images


class RestartKernel(Tool):
    name = "restart_kernel"
    description = "Restart the notebook's kernel. All variables are lost."
    parameters = {"type": "object", "properties": {}, "additionalProperties": False}
    access: Access = "run"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        if ctx.runner is None:
            raise ToolError("there is no kernel")
        try:
            await ctx.runner.restart()
        except KernelError as exc:
            raise ToolError(str(exc)) from exc
        ctx.state["cells_run"] = {}
        return ToolResult(
            f"the {ctx.runner.kernel_name} kernel restarted; its variables are gone",
            "kernel restarted",
        )
