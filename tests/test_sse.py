"""The SSE decoder against the WHATWG rules, fed in awkward pieces."""

from __future__ import annotations

import pytest

from jupyter_codexmax.errors import ProtocolError
from jupyter_codexmax.providers.sse import ServerSentEvent, SSEDecoder


def decode(*chunks: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.end())
    return events


def test_basic_fields_and_multiline_data() -> None:
    events = decode(b"event: a\ndata: one\ndata: two\nid: 7\nretry: 50\n\ndata:x\n\n")
    assert events == [
        ServerSentEvent(data="one\ntwo", event="a", id="7", retry=50),
        ServerSentEvent(data="x", event="message", id="7", retry=50),
    ]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(eol: bytes) -> None:
    raw = b"data: a" + eol + eol + b"data: b" + eol + eol
    assert [e.data for e in decode(raw)] == ["a", "b"]


def test_byte_by_byte_with_split_crlf_and_multibyte_characters() -> None:
    raw = "data: héllo → wörld\r\n\r\ndata: 二\r\n\r\n".encode()
    events = decode(*[raw[i : i + 1] for i in range(len(raw))])
    assert [e.data for e in events] == ["héllo → wörld", "二"]


def test_comments_are_counted_and_skipped() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b": keep-alive\n\n: ping\ndata: x\n\n")
    assert [e.data for e in events] == ["x"]
    assert decoder.comments == 2


def test_unicode_line_separator_inside_data_is_not_a_line_end() -> None:
    assert decode('data: {"t": "a\u2028b"}\n\n'.encode())[0].data == '{"t": "a\u2028b"}'


def test_bom_and_invalid_utf8() -> None:
    events = decode(b"\xef\xbb\xbfdata: a\xff\n\n")
    assert events[0].data == "a\ufffd"


def test_unterminated_event_is_dropped_and_reported() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: complete\n\ndata: cut") == [ServerSentEvent("complete")]
    assert decoder.has_partial_event
    assert decoder.end() == []


def test_field_without_colon_and_empty_data_lines() -> None:
    events = decode(b"data\ndata\n\nevent: only-event\n\n")
    assert [e.data for e in events] == ["\n"]


def test_endless_line_is_a_protocol_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_codexmax.providers import sse

    monkeypatch.setattr(sse, "MAX_LINE", 1024)
    decoder = SSEDecoder()
    for _ in range(5):
        decoder.feed(b"x" * 200)
    with pytest.raises(ProtocolError, match="not an event stream"):
        decoder.feed(b"x" * 200)
