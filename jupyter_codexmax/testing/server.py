"""The scripted model server: a real HTTP server on loopback that speaks the model APIs.

It answers ``POST /v1/responses`` (streamed or not), ``POST /v1/responses/compact``,
``POST /v1/chat/completions`` (streamed or not) and ``GET /v1/models`` from a script
(:mod:`.script`), injects the faults the script asks for, and records every request.
It says what it is everywhere it can: the ``Server`` and ``x-codexmax-scripted`` headers,
``scripted:`` before every model name, and its ``/models`` list. It is not a model.

Control endpoints, for a server in another process: ``GET /_scripted/requests`` (the
recorded requests), ``POST /_scripted/script`` (load a new script and clear the record),
``GET /_scripted/health``.

Use it from Python (``with ScriptedModelServer(script) as server: server.base_url``),
from pytest (the ``scripted_server`` fixture), or from the command line
(``jupyter codexmax scripted-server SCRIPT``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .._version import __version__
from ..providers.base import SCRIPTED_SERVER_HEADER
from ..secrets import MASK, is_sensitive_header
from . import render
from .script import Compaction, Fault, Reply, Script, ScriptError, load_script

__all__ = ["RecordedRequest", "ScriptedModelServer"]

SCRIPTED_HEADER = SCRIPTED_SERVER_HEADER


@dataclass
class RecordedRequest:
    """One request the server received. Credential header values are masked."""

    number: int
    method: str
    path: str
    endpoint: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    raw_size: int
    answer: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "method": self.method,
            "path": self.path,
            "endpoint": self.endpoint,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
            "raw_size": self.raw_size,
            "answer": self.answer,
        }


class _ClientGone(Exception):
    """The client closed the connection."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: ScriptedModelServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up is normal here; anything else is reported, not printed."""
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, _ClientGone)):
            return
        self.owner._fail(f"server error while answering {client_address}: {exc!r}")


class ScriptedModelServer:
    """A scripted stand-in for a model API, on ``host:port`` (port 0 picks a free one)."""

    def __init__(
        self,
        script: Any = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._script: Script = load_script(script if script is not None else [])
        self.api_key = api_key
        self.log = log
        self.requests: list[RecordedRequest] = []
        #: Requests the script could not answer (exhausted, failed expectations).
        self.failures: list[str] = []
        self._stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._active = 0
        #: Connections accepted so far (a client that reuses connections opens few).
        self.connections_opened = 0
        self._ids = itertools.count(1)
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    # -- life ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        """The URL to give a client as its API base (ends in ``/v1``)."""
        return self.url + "/v1"

    def start(self) -> ScriptedModelServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="codexmax-scripted-server",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` (the command line uses this)."""
        self._httpd.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ScriptedModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- script and record --------------------------------------------------------------------

    def load(self, script: Any) -> None:
        """Replace the script and clear the record of requests and failures."""
        parsed = load_script(script)
        with self._lock:
            self._script = parsed
            self.requests.clear()
            self.failures.clear()

    @property
    def remaining_steps(self) -> int:
        with self._lock:
            return self._script.remaining

    @property
    def active_requests(self) -> int:
        """Requests being answered right now."""
        with self._lock:
            return self._active

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._sockets)

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        """Recorded requests to one endpoint: ``responses``, ``chat``, ``compact``, ``models``."""
        with self._lock:
            return [r for r in self.requests if r.endpoint == endpoint]

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_step(self, request_text: str) -> Reply | Fault | None:
        with self._lock:
            return self._script.next_step(request_text)

    def _next_compaction(self) -> Compaction:
        with self._lock:
            return self._script.next_compaction()

    def _fail(self, message: str) -> None:
        with self._lock:
            self.failures.append(message)
        self._say(f"script failure: {message}")

    def _say(self, message: str) -> None:
        if self.log is not None:
            self.log(message)

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._sockets.add(sock)
                self.connections_opened += 1
            else:
                self._sockets.discard(sock)

    def _busy(self, delta: int) -> None:
        with self._lock:
            self._active += delta

    def next_id(self, prefix: str) -> str:
        return f"{prefix}_scripted{next(self._ids):04d}"


def _endpoint(path: str) -> str:
    path = path.rstrip("/")
    if path.endswith("/responses/compact"):
        return "compact"
    if path.endswith("/responses"):
        return "responses"
    if path.endswith("/chat/completions"):
        return "chat"
    if path.endswith("/models"):
        return "models"
    return "other"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"codexmax-scripted/{__version__}"
    sys_version = ""
    server: _HTTPServer
    timeout = 120

    @property
    def owner(self) -> ScriptedModelServer:
        return self.server.owner

    def setup(self) -> None:
        super().setup()
        self.owner._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.owner._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        return  # requests are reported through owner.log, with secrets masked

    # -- plumbing -----------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        return self.rfile.read(int(length))

    def _headers_for_record(self) -> dict[str, str]:
        return {
            name.lower(): (MASK if is_sensitive_header(name) else value)
            for name, value in self.headers.items()
        }

    def _common_headers(self, request_id: str) -> None:
        self.send_header(SCRIPTED_HEADER, "1")
        self.send_header("x-request-id", request_id)

    def _send_json(
        self,
        status: int,
        payload: Any,
        *,
        request_id: str = "req_scripted",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        data = json.dumps(payload).encode()
        self._send_bytes(status, data, "application/json", request_id=request_id, headers=headers)

    def _send_bytes(
        self,
        status: int,
        data: bytes,
        content_type: str,
        *,
        request_id: str = "req_scripted",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.send_response(status)
        self._common_headers(request_id)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _write_chunk(self, data: bytes) -> None:
        try:
            self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as exc:
            raise _ClientGone from exc

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if readable:
                return bool(self.connection.recv(1, socket.MSG_PEEK) == b"")
        except OSError:
            return True
        return False

    def _wait(self, seconds: float) -> bool:
        """Wait, watching for the client leaving or the server stopping. True if both stay."""
        remaining = seconds
        while remaining > 0:
            step = min(0.05, remaining)
            if self.owner._stopping.wait(step):
                return False
            if self._client_gone():
                return False
            remaining -= step
        return True

    def _abort(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _authorized(self) -> bool:
        key = self.owner.api_key
        if not key:
            return True
        bearer = self.headers.get("Authorization", "")
        return bearer == f"Bearer {key}" or self.headers.get("api-key", "") == key

    # -- routes -------------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/_scripted/health":
            self._send_json(200, {"scripted": True, "remaining_steps": self.owner.remaining_steps})
            return
        if path == "/_scripted/requests":
            with self.owner._lock:
                data = [r.to_json() for r in self.owner.requests]
                failures = list(self.owner.failures)
            self._send_json(200, {"requests": data, "failures": failures})
            return
        self._record_request("GET", b"")
        if _endpoint(path) == "models":
            if not self._authorized():
                self._unauthorized()
                return
            self._send_json(
                200,
                {
                    "object": "list",
                    "data": [
                        {
                            "id": "scripted",
                            "object": "model",
                            "created": 0,
                            "owned_by": "jupyter-codexmax scripted server (not a model)",
                        }
                    ],
                },
            )
            return
        self._not_found(path)

    def do_POST(self) -> None:
        raw = self._read_body()
        path = urlsplit(self.path).path
        if path == "/_scripted/script":
            try:
                self.owner.load(json.loads(raw or b"[]"))
            except (ValueError, ScriptError) as exc:
                self._send_json(400, {"error": {"message": str(exc), "type": "script_error"}})
                return
            self._send_json(200, {"loaded": True, "steps": self.owner.remaining_steps})
            return
        record = self._record_request("POST", raw)
        endpoint = record.endpoint
        if endpoint not in ("responses", "chat", "compact"):
            self._not_found(path)
            return
        if not self._authorized():
            self._unauthorized()
            return
        if not isinstance(record.body, dict):
            self._send_json(
                400,
                render.error_object(
                    "We could not parse the JSON body of your request. (scripted server)",
                    code=None,
                    etype="invalid_request_error",
                ),
            )
            return
        self.owner._busy(1)
        record.extra["started"] = time.monotonic()
        try:
            if endpoint == "compact":
                self._answer_compact(record)
            else:
                self._answer_model(record)
        except _ClientGone:
            self.close_connection = True
            self.owner._say(f"#{record.number}: the client left mid-answer")
        finally:
            record.extra["finished"] = time.monotonic()
            self.owner._busy(-1)

    def _record_request(self, method: str, raw: bytes) -> RecordedRequest:
        parts = urlsplit(self.path)
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        with self.owner._lock:
            number = len(self.owner.requests) + 1
        record = RecordedRequest(
            number=number,
            method=method,
            path=parts.path,
            endpoint=_endpoint(parts.path),
            query=parse_qs(parts.query),
            headers=self._headers_for_record(),
            body=body,
            raw_size=len(raw),
        )
        self.owner._record(record)
        self.owner._say(f"#{number} {method} {parts.path}")
        return record

    def _not_found(self, path: str) -> None:
        self._send_json(
            404,
            render.error_object(
                f"The scripted server has no endpoint {path}.",
                code="not_found",
                etype="invalid_request_error",
            ),
        )

    def _unauthorized(self) -> None:
        self._send_json(
            401,
            render.error_object(
                "Incorrect API key provided (scripted server).",
                code="invalid_api_key",
                etype="invalid_request_error",
            ),
        )

    def _script_error(self, record: RecordedRequest, message: str, code: str) -> None:
        self.owner._fail(f"request #{record.number} to {record.path}: {message}")
        record.answer = f"script error: {message}"
        self._send_json(
            400,
            render.error_object(
                f"{message} (scripted server)", code=code, etype="scripted_server_error"
            ),
        )

    def _check_expect(self, record: RecordedRequest, expect: dict[str, Any]) -> str | None:
        body = record.body
        if "endpoint" in expect and expect["endpoint"] != record.endpoint:
            return f"expected a request to {expect['endpoint']}, got {record.endpoint}"
        if "model" in expect and expect["model"] != body.get("model"):
            return f"expected model {expect['model']!r}, got {body.get('model')!r}"
        if "effort" in expect:
            got = (body.get("reasoning") or {}).get("effort") or body.get("reasoning_effort")
            if expect["effort"] != got:
                return f"expected reasoning effort {expect['effort']!r}, got {got!r}"
        if "contains" in expect:
            text = json.dumps(body.get("input") or body.get("messages") or [], ensure_ascii=False)
            needles = expect["contains"]
            for needle in [needles] if isinstance(needles, str) else needles:
                if needle not in text:
                    return f"expected the input to contain {needle!r}"
        if "tools" in expect:
            names = set()
            for tool in body.get("tools") or []:
                names.add(tool.get("name") or (tool.get("function") or {}).get("name"))
            missing = set(expect["tools"]) - names
            if missing:
                return f"expected tools {sorted(missing)} in the request"
        return None

    def _answer_model(self, record: RecordedRequest) -> None:
        body = record.body
        request_text = json.dumps(
            [body.get("instructions"), body.get("input") or body.get("messages")],
            ensure_ascii=False,
        )
        step = self.owner._next_step(request_text)
        if step is None:
            self._script_error(
                record,
                f"the script has no step left for request #{record.number}; post the script "
                "again to /_scripted/script (or restart the scripted server) to replay it, or "
                'add steps or "after_last": "repeat" to it',
                "script_exhausted",
            )
            return
        problem = self._check_expect(record, dict(step.expect))
        if problem:
            self._script_error(record, problem, "script_expectation_failed")
            return
        if isinstance(step, Fault) and step.kind == "http":
            self._answer_http_fault(record, step)
            return
        reply = step.reply if isinstance(step, Fault) else step
        assert reply is not None
        fault = step if isinstance(step, Fault) else None
        record.answer = f"fault {fault.kind}" if fault else "reply"
        body = record.body
        streaming = bool(body.get("stream"))
        if record.endpoint == "responses":
            response_id = self.owner.next_id("resp")
            if not streaming and fault is None:
                self._send_json(
                    200,
                    render.responses_object(reply, body, response_id, record.raw_size),
                    request_id=response_id.replace("resp", "req"),
                )
                return
            events = render.responses_stream(reply, body, response_id, record.raw_size)
            frames = [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events]
            error_frame = None
            if fault and fault.kind == "stream_error":
                e = render.responses_error_event(fault, fault.after)
                error_frame = f"event: {e['type']}\ndata: {json.dumps(e)}\n\n"
            self._stream(
                frames,
                fault,
                error_frame,
                reply.delay,
                request_id=response_id.replace("resp", "req"),
            )
        else:
            completion_id = self.owner.next_id("chatcmpl")
            if not streaming and fault is None:
                self._send_json(
                    200, render.chat_object(reply, body, completion_id, record.raw_size)
                )
                return
            payloads = render.chat_stream(reply, body, completion_id, record.raw_size)
            frames = [p + "\n\n" if p.startswith(":") else f"data: {p}\n\n" for p in payloads]
            error_frame = None
            if fault and fault.kind == "stream_error":
                error_frame = f"data: {json.dumps(render.chat_error_payload(fault))}\n\n"
            self._stream(frames, fault, error_frame, reply.delay, request_id=completion_id)

    def _answer_http_fault(self, record: RecordedRequest, fault: Fault) -> None:
        record.answer = f"HTTP {fault.status}"
        headers = list(fault.headers.items())
        body = fault.body
        if body is None:
            body = render.error_object(
                fault.message, code=fault.code, etype=fault.type or "server_error"
            )
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            content_type = fault.content_type or "application/json"
        else:
            data = str(body).encode()
            content_type = fault.content_type or (
                "text/html; charset=utf-8" if str(body).lstrip().startswith("<") else "text/plain"
            )
        self._send_bytes(
            fault.status,
            data,
            content_type,
            headers=headers,
            request_id=f"req_fault_{record.number}",
        )

    def _stream(
        self,
        frames: list[str],
        fault: Fault | None,
        error_frame: str | None,
        delay: float,
        *,
        request_id: str,
    ) -> None:
        self.send_response(200)
        self._common_headers(request_id)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        for index in range(len(frames) + 1):
            if fault is not None and index == min(fault.after, len(frames)):
                if fault.kind == "drop":
                    self._abort()
                    return
                if fault.kind == "stall" and not self._wait(fault.seconds):
                    self._abort()
                    return
                if fault.kind == "malformed":
                    self._write_chunk(f"data: {fault.data}\n\n".encode())
                if fault.kind == "stream_error" and error_frame is not None:
                    self._write_chunk(error_frame.encode())
                    break
            if index == len(frames):
                break
            self._write_chunk(frames[index].encode())
            if delay and not self._wait(delay):
                self._abort()
                return
        self._write_chunk(b"")  # the zero-length chunk ends the body

    def _answer_compact(self, record: RecordedRequest) -> None:
        entry = self.owner._next_compaction()
        if entry.fault is not None:
            if entry.fault.kind == "http":
                self._answer_http_fault(record, entry.fault)
            elif entry.fault.kind == "drop":
                record.answer = "fault drop"
                self._abort()
            elif entry.fault.kind == "stall":
                record.answer = "fault stall"
                if not self._wait(entry.fault.seconds):
                    self._abort()
                    return
                self._send_json(
                    200,
                    render.compact_object(
                        Compaction(), record.body, self.owner.next_id("resp"), record.raw_size
                    ),
                )
            else:
                record.answer = "fault " + entry.fault.kind
                self._send_bytes(200, entry.fault.data.encode(), "application/json")
            return
        record.answer = "compaction"
        self._send_json(
            200,
            render.compact_object(entry, record.body, self.owner.next_id("resp"), record.raw_size),
        )
