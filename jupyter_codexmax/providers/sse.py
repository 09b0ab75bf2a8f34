"""Server-sent events, decoded incrementally from bytes as the WHATWG spec says.

Only ``\\r\\n``, ``\\r`` and ``\\n`` end lines (JSON data may hold U+2028, which
``str.splitlines`` would wrongly split on); comment lines (``: keep-alive``) are counted and
skipped; ``data`` lines of one event are joined with newlines; a leading BOM is dropped;
invalid UTF-8 becomes U+FFFD instead of an exception.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from ..errors import ProtocolError

__all__ = ["SSEDecoder", "ServerSentEvent"]

_EOL = re.compile(r"\r\n|\r|\n")

#: A line longer than this means the peer is not speaking SSE (or is broken).
MAX_LINE = 32 * 1024 * 1024


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed bytes in, get whole events out. Linear in the input, however it is split:
    each byte is scanned once, and an unfinished line is kept as a list of pieces."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pieces: list[str] = []
        self._pending_size = 0
        self._after_cr = False
        self._started = False
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None
        #: Comment lines seen so far (keep-alives).
        self.comments = 0

    @property
    def has_partial_event(self) -> bool:
        """Whether data has been read that no blank line has dispatched yet."""
        return bool(self._data or self._pending_size)

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode ``chunk`` and return the events it completed."""
        text = self._decoder.decode(chunk)
        if not self._started and text:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        return self._lines(text)

    def end(self) -> list[ServerSentEvent]:
        """Flush at the end of the stream. An event not ended by a blank line is dropped,
        as the spec says; :attr:`has_partial_event` tells whether there was one."""
        return self._lines(self._decoder.decode(b"", final=True))

    def _lines(self, text: str) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        pos = 0
        if self._after_cr:
            # A \r ended the last chunk: a \n starting this one belongs to it.
            self._after_cr = False
            if text.startswith("\n"):
                pos = 1
        for match in _EOL.finditer(text, pos):
            piece = text[pos : match.start()]
            if self._pieces:
                self._pieces.append(piece)
                line = "".join(self._pieces)
                self._pieces.clear()
                self._pending_size = 0
            else:
                line = piece
            pos = match.end()
            event = self._line(line)
            if event is not None:
                events.append(event)
            if match.group() == "\r" and pos == len(text):
                self._after_cr = True
        rest = text[pos:]
        if rest:
            self._pieces.append(rest)
            self._pending_size += len(rest)
            if self._pending_size > MAX_LINE:
                raise ProtocolError(
                    f"the server sent a line of more than {MAX_LINE // (1024 * 1024)} MiB "
                    "without an end; this is not an event stream"
                )
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return None
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self._last_id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(
            data="\n".join(self._data),
            event=self._event or "message",
            id=self._last_id,
            retry=self._retry,
        )
        self._data = []
        self._event = ""
        return event
