"""What the model sees of a notebook: a compact text view.

::

    notebook analysis.ipynb · python3 · 3 cells · nbformat 4.5
    §1 md 2fcd
    # Cleaning the sales data
    §2 code 0bc8 [3]
    df = pd.read_csv("sales.csv")
    df.groupby("price").mean()
    » error KeyError: 'price'
    Cell In[3], line 2
    ...
    §3 code 77ab

A cell starts at a line ``§<number> <code|md|raw> <id> [<execution count>]``; its outputs
follow, each starting at a line ``» <kind>``. Ids are shown as their shortest unique prefix.

Rules: every source line is shown (pages break between cells, never inside one), unless
one cell alone is longer than a page: it is cut head and tail, with a marker, so a view
never passes its budget;
outputs are text with ANSI codes removed and long ones cut head and tail with a marker
saying how much was cut; images become a placeholder plus, for models that take images,
an image part (size-capped); HTML, widgets and JavaScript are summarised; base64 data never
appears as text.
"""

from __future__ import annotations

import base64
import html
import re
import struct
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Image", "NotebookView", "cut_text", "render_cells", "render_outputs", "strip_ansi"]

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-Z\\-_]")
_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")

#: Images larger than this (base64 characters) are described, not sent.
MAX_IMAGE_B64 = 2_000_000
#: At most this many images go to the model per view.
MAX_IMAGES = 4
#: Outputs of one cell shown in the view (the first ones and the last 10); the rest are
#: counted.
MAX_OUTPUTS = 40


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def cut_text(text: str, limit: int, *, tail_share: float = 0.5) -> str:
    """``text`` if it fits in ``limit`` characters, else its head and tail with a marker
    saying how many lines and characters were cut."""
    if len(text) <= limit:
        return text
    keep_tail = int(limit * tail_share)
    keep_head = limit - keep_tail
    head = text[:keep_head]
    tail = text[len(text) - keep_tail :] if keep_tail else ""
    # Cut at line boundaries where that loses little.
    if "\n" in head[keep_head // 2 :]:
        head = head[: head.rindex("\n") + 1]
    if keep_tail and "\n" in tail[: keep_tail // 2]:
        tail = tail[tail.index("\n") + 1 :]
    cut = text[len(head) : len(text) - len(tail)]
    marker = f"[... {cut.count(chr(10)):,} lines, {len(cut):,} characters cut ...]"
    sep_head = "" if head.endswith("\n") or not head else "\n"
    return f"{head}{sep_head}{marker}\n{tail}"


@dataclass
class Image:
    """An image output, to send to the model as an image part."""

    mime: str
    data: str  # base64
    label: str

    @property
    def data_url(self) -> str:
        return f"data:{self.mime};base64,{self.data}"


@dataclass
class NotebookView:
    """A rendered view: the text, the images it refers to, and which cells it covers."""

    text: str
    images: list[Image] = field(default_factory=list)
    first: int = 1
    last: int = 0
    total: int = 0


def _text_of(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return "" if value is None else str(value)


def _image_size(mime: str, data: str) -> str:
    """``WxH`` from a PNG or JPEG header, without decoding the whole image."""
    try:
        head = base64.b64decode(data[:4096] + "=" * (-len(data[:4096]) % 4), validate=False)
    except (ValueError, TypeError):
        return ""
    if mime == "image/png" and head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return f"{width}x{height}"
    if mime == "image/jpeg" and head[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(head):
            if head[i] != 0xFF:
                break
            marker = head[i + 1]
            length = struct.unpack(">H", head[i + 2 : i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2):
                height, width = struct.unpack(">HH", head[i + 5 : i + 9])
                return f"{width}x{height}"
            i += 2 + length
    return ""


def _html_summary(text: str, limit: int) -> str:
    rows = text.lower().count("<tr")
    plain = html.unescape(_TAGS.sub(" ", re.sub(r"(?is)<(script|style).*?</\1>", " ", text)))
    plain = _BLANK_LINES.sub("\n", _SPACE.sub(" ", plain)).strip()
    what = f"HTML table, {rows} rows" if rows else "HTML"
    return f"[{what}] " + cut_text(plain, limit)


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is an object, else an empty one (metadata as found can be anything)."""
    return value if isinstance(value, dict) else {}


def _widget_name(data: dict[str, Any], widgets: dict[str, Any]) -> str:
    model_id = _obj(data.get("application/vnd.jupyter.widget-view+json")).get("model_id")
    state = widgets.get(str(model_id), {}) if model_id else {}
    name = state.get("model_name") if isinstance(state, dict) else None
    return str(name or "widget")


def render_outputs(
    outputs: list[Any],
    *,
    limit: int,
    widgets: dict[str, Any] | None = None,
    images: list[Image] | None = None,
    image_ok: bool = True,
) -> list[str]:
    """Lines describing a cell's outputs (each block headed ``--- out [...]``)."""
    lines: list[str] = []
    widgets = widgets or {}
    for output in outputs:
        if not isinstance(output, dict):
            continue
        kind = output.get("output_type")
        if kind == "stream":
            text = strip_ansi(_text_of(output.get("text")))
            lines.append(f"» {output.get('name', 'stream')}")
            lines.append(cut_text(text, limit).rstrip("\n"))
        elif kind == "error":
            lines.append(
                f"» error {output.get('ename', 'Error')}: "
                f"{strip_ansi(str(output.get('evalue', '')))}"
            )
            trace = strip_ansi("\n".join(str(t) for t in output.get("traceback") or []))
            if trace.strip():
                lines.append(cut_text(trace, limit, tail_share=0.8).rstrip("\n"))
        elif kind in ("execute_result", "display_data", "pyout", "display"):
            label = "result" if kind in ("execute_result", "pyout") else "display"
            lines.append(f"» {label}")
            lines.append(_render_data(_obj(output.get("data")), limit, widgets, images, image_ok))
        else:
            lines.append(f"» {kind} (an output type this view does not know)")
    return lines


def merge_streams(outputs: list[Any]) -> list[Any]:
    """Consecutive stream outputs of the same name, joined (as Jupyter shows them); linear
    in the outputs however many there are."""
    merged: list[Any] = []
    pieces: list[str] = []  # the texts of the last merged stream, joined at its end

    def close() -> None:
        if len(pieces) > 1:
            merged[-1] = {**merged[-1], "text": "".join(pieces)}
        pieces.clear()

    for output in outputs:
        if (
            isinstance(output, dict)
            and output.get("output_type") == "stream"
            and pieces
            and merged[-1].get("name") == output.get("name")
        ):
            pieces.append(_text_of(output.get("text")))
            continue
        close()
        merged.append(output)
        if isinstance(output, dict) and output.get("output_type") == "stream":
            pieces.append(_text_of(output.get("text")))
    close()
    return merged


_DEFAULT_REPR = re.compile(r"^<[\w.]+ object( at 0x[0-9a-fA-F]+)?>$")


def _render_data(
    data: dict[str, Any],
    limit: int,
    widgets: dict[str, Any],
    images: list[Image] | None,
    image_ok: bool,
) -> str:
    parts: list[str] = []
    image_mime = next(
        (m for m in ("image/png", "image/jpeg", "image/gif", "image/webp") if m in data), None
    )
    if image_mime:
        raw = _text_of(data[image_mime]).replace("\n", "")
        size = _image_size(image_mime, raw)
        kb = len(raw) * 3 // 4 // 1024
        label = f"{image_mime}{' ' + size if size else ''}, {kb:,} KB"
        if (
            images is not None
            and image_ok
            and len(raw) <= MAX_IMAGE_B64
            and len(images) < MAX_IMAGES
        ):
            images.append(Image(image_mime, raw, label))
            parts.append(f"[image {len(images)}: {label}; attached]")
        else:
            why = (
                "too large to send"
                if len(raw) > MAX_IMAGE_B64
                else "not sent"
                if images is None or not image_ok
                else "image limit reached"
            )
            parts.append(f"[image: {label}; {why}]")
    if "image/svg+xml" in data:
        parts.append(f"[image/svg+xml, {len(_text_of(data['image/svg+xml'])):,} characters]")
    if "application/vnd.jupyter.widget-view+json" in data:
        name = _widget_name(data, widgets)
        plain = _text_of(data.get("text/plain")).strip()
        parts.append(f"[widget {name}]" + (f" {cut_text(plain, 200)}" if plain else ""))
        return "\n".join(parts)
    plain = strip_ansi(_text_of(data["text/plain"])) if "text/plain" in data else ""
    if _DEFAULT_REPR.match(plain.strip()) and any(
        m in data for m in ("text/html", "text/markdown", "text/latex")
    ):
        data = {k: v for k, v in data.items() if k != "text/plain"}  # a repr that says nothing
    if "text/plain" in data:
        text = strip_ansi(_text_of(data["text/plain"]))
        if not (image_mime and text.startswith("<Figure")):
            parts.append(cut_text(text, limit).rstrip("\n"))
        else:
            parts.append(text.strip())
    elif "text/markdown" in data:
        parts.append(cut_text(_text_of(data["text/markdown"]), limit).rstrip("\n"))
    elif "text/latex" in data:
        parts.append(cut_text(_text_of(data["text/latex"]), limit).rstrip("\n"))
    elif "text/html" in data:
        parts.append(_html_summary(_text_of(data["text/html"]), limit))
    elif "application/json" in data:
        import json

        parts.append(cut_text(json.dumps(data["application/json"]), limit))
    other = [
        m
        for m in data
        if m
        not in (
            "text/plain",
            "text/markdown",
            "text/latex",
            "text/html",
            "application/json",
            "image/png",
            "image/jpeg",
            "image/gif",
            "image/webp",
            "image/svg+xml",
            "application/vnd.jupyter.widget-view+json",
        )
    ]
    if other and not parts:
        parts.append(
            "[" + ", ".join(f"{m} ({len(_text_of(data[m])):,} characters)" for m in other) + "]"
        )
    return "\n".join(p for p in parts if p) or "[empty output]"


_KINDS = {"markdown": "md"}


def cell_header(number: int, cell: Any, handle: str) -> str:
    kind = str(cell.get("cell_type", "?"))
    header = f"§{number} {_KINDS.get(kind, kind)} {handle}"
    if kind == "code":
        count = cell.get("execution_count")
        if count is not None:
            header += f" [{count}]"
    if cell.get("attachments"):
        header += f" attachments={','.join(sorted(cell['attachments']))}"
    return header


def render_cells(
    doc: Any,
    *,
    start: int = 1,
    end: int | None = None,
    budget: int = 48_000,
    output_limit: int = 800,
    image_ok: bool = True,
) -> NotebookView:
    """The view of cells ``start``..``end`` (1-based, inclusive), in pages of about
    ``budget`` characters; whole cells only, so every source line shown is complete."""
    cells = doc.cells
    total = len(cells)
    end = total if end is None else min(end, total)
    start = max(1, start)
    widgets = _obj(
        _obj(
            _obj(doc.metadata.get("widgets")).get("application/vnd.jupyter.widget-state+json")
        ).get("state")
    )
    images: list[Image] = []
    blocks: list[str] = []
    used = 0
    last = start - 1
    for number in range(start, end + 1):
        cell = cells[number - 1]
        block = [cell_header(number, cell, doc.short_id(number - 1))]
        source = _text_of(cell.get("source"))
        block.append(source.rstrip("\n") if source.strip() else "(empty)")
        if cell.get("cell_type") == "code":
            outputs = merge_streams(list(cell.get("outputs") or []))
            shown = outputs
            if len(outputs) > MAX_OUTPUTS:
                shown = outputs[: MAX_OUTPUTS - 10] + outputs[-10:]
            lines = render_outputs(
                shown, limit=output_limit, widgets=widgets, images=images, image_ok=image_ok
            )
            if len(outputs) > MAX_OUTPUTS:
                hidden = len(outputs) - len(shown)
                where = _nth_output(lines, MAX_OUTPUTS - 10)
                lines.insert(where, f"[... {hidden:,} outputs not shown ...]")
            block.extend(lines)
        text = "\n".join(block)
        if len(text) > budget:
            # One cell longer than a page (a huge source or output): cut head and tail,
            # so the view keeps its budget and the model sees where it was cut.
            text = cut_text(text, budget, tail_share=0.3)
        if blocks and used + len(text) > budget:
            break
        blocks.append(text)
        used += len(text) + 1
        last = number
    more = ""
    if last < end:
        more = (
            f"\n§ (cells {start}-{last} of {total} shown; read_notebook start={last + 1} for more)"
        )
    return NotebookView("\n".join(blocks) + more, images, start, last, total)


def _nth_output(lines: list[str], n: int) -> int:
    """Where the ``n``-th output (from 0) starts among rendered output lines."""
    seen = 0
    for index, line in enumerate(lines):
        if line.startswith("» "):
            if seen == n:
                return index
            seen += 1
    return len(lines)


def notebook_heading(doc: Any) -> str:
    meta = doc.metadata
    kernel = (
        _obj(meta.get("kernelspec")).get("name")
        or _obj(meta.get("language_info")).get("name")
        or "no kernel"
    )
    major, minor = doc.version
    note = "" if doc.writable else " (read-only: old format)"
    return (
        f"notebook {doc.path.name} · {kernel} · {len(doc.cells)} cells · "
        f"nbformat {major}.{minor}{note}"
    )
