"""The kernel half of the bridge to the frontend that holds the notebook.

The protocol is written down in ``docs/bridge.md``. In short: a comm on the target
``jupyter_codexmax.bridge``, opened by either side; the frontend's ``welcome`` makes the
bridge present. Then the kernel asks the frontend to read, edit, run and save the open
notebook (``notebook.*`` requests), sends it the agent's events, and answers its requests
(``agent.*``: a sidebar chat's turns, stop, approvals, status).

Threads: comm messages are sent and received on the kernel's main thread; the agent (on its
own thread) awaits replies through futures that are safe across threads.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
from collections.abc import Callable
from typing import Any

from ..errors import CodexmaxError
from .threads import MainThread

__all__ = ["AGENT_METHODS", "NOTEBOOK_METHODS", "PROTOCOL", "TARGET", "Bridge", "BridgeError"]

log = logging.getLogger("jupyter_codexmax.kernel")

TARGET = "jupyter_codexmax.bridge"
PROTOCOL = 2
#: What the kernel asks the frontend, and what the frontend may ask the kernel (the same
#: lists as ``protocol.ts``'s ``METHODS`` and ``AGENT_METHODS``; params in docs/bridge.md).
NOTEBOOK_METHODS = ("notebook.get", "notebook.edit", "notebook.run", "notebook.save")
AGENT_METHODS = ("agent.session", "agent.turn", "agent.stop", "agent.approve", "agent.status")
#: Seconds a request waits for the frontend's reply (a run waits for its cells' time limit
#: on top of this).
REPLY_TIMEOUT = 30.0

Handler = Callable[[dict[str, Any]], Any]


class BridgeError(CodexmaxError):
    """The frontend answered a request with an error, or not at all. ``stale``: the cells
    a ``notebook.edit`` named that the user changed since the kernel read them."""

    def __init__(self, message: str, *, stale: list[str] | None = None) -> None:
        super().__init__(message)
        self.stale = stale or []


class Bridge:
    """One kernel's end of the bridge (at most one frontend at a time: the newest)."""

    def __init__(self, main: MainThread, version: str) -> None:
        self.main = main
        self.version = version
        self.comm: Any = None
        #: What the frontend said in its welcome (client, notebook path, ...).
        self.peer: dict[str, Any] = {}
        self._ids = itertools.count(1)
        self._waiting: dict[str, concurrent.futures.Future[Any]] = {}
        #: Methods the frontend may call (``agent.turn``, ``agent.stop``, ...), set by the
        #: host; ``make_host`` creates it on the first request if need be.
        self.handlers: dict[str, Handler] = {}
        self.make_host: Callable[[], object] | None = None
        #: Whether this kernel offers the bridge (a frontend someone watches).
        self._offered = False

    @property
    def present(self) -> bool:
        return self.comm is not None and bool(self.peer)

    # -- opening (main thread) ----------------------------------------------------------------

    def start(self, offer: bool = True) -> None:
        """Register the target (the frontend may open) and, with ``offer``, open one
        ourselves (the frontend may have registered its target first): whichever the
        frontend answers is kept. Offering is for frontends someone watches: runs with no
        input possible (nbclient, papermill) would only log the unknown comm."""
        import comm as comm_module

        manager = comm_module.get_comm_manager()
        manager.register_target(TARGET, self._opened_by_frontend)
        if offer:
            self._offer()

    def _offer(self) -> None:
        """Open a comm with our hello: a frontend that knows the target welcomes it (or,
        opening later, finds it open and opens its own)."""
        import comm as comm_module

        self._offered = True
        try:
            opened = comm_module.create_comm(target_name=TARGET, data=self._hello())
        except Exception as exc:  # no frontend connection at all (terminal IPython)
            log.debug("bridge not opened: %s", exc)
            return
        opened.on_msg(lambda msg: self._received(opened, msg))
        opened.on_close(lambda msg: self._closed(opened))

    def stop(self) -> None:
        import comm as comm_module

        self._offered = False
        comm, self.comm, self.peer = self.comm, None, {}
        if comm is not None:
            try:
                comm.close()
            except Exception as exc:
                log.debug("closing the bridge: %s", exc)
        try:
            comm_module.get_comm_manager().unregister_target(TARGET, self._opened_by_frontend)
        except Exception as exc:
            log.debug("unregistering the bridge target: %s", exc)
        self._fail_all("the bridge was closed")

    def _hello(self) -> dict[str, Any]:
        return {"type": "hello", "protocol": PROTOCOL, "kernel": f"jupyter-codexmax {self.version}"}

    def _opened_by_frontend(self, comm: Any, msg: dict[str, Any]) -> None:
        self.main.adopt_loop()
        comm.on_msg(lambda m: self._received(comm, m))
        comm.on_close(lambda m: self._closed(comm))
        data = msg.get("content", {}).get("data") or {}
        comm.send(self._hello())
        if data.get("type") == "welcome":
            self._welcome(comm, data)

    def _welcome(self, comm: Any, data: dict[str, Any]) -> None:
        if data.get("protocol") != PROTOCOL:
            comm.send(
                {"type": "bye", "reason": f"protocol {data.get('protocol')!r} is not {PROTOCOL}"}
            )
            comm.close()
            return
        previous, self.comm = self.comm, comm
        self.peer = dict(data)
        if previous is not None and previous is not comm:
            # Answers to the old comm's requests will not come: they fail now.
            self._fail_all("another frontend took the bridge over")
            try:
                previous.close()
            except Exception as exc:
                log.debug("closing the replaced bridge: %s", exc)

    def _closed(self, comm: Any) -> None:
        if comm is self.comm:
            self.comm, self.peer = None, {}
            self._fail_all("the frontend closed the bridge")
            if self._offered:
                # Offered again at once: the notebook reopened (in this page or another)
                # finds it open and takes it (docs/bridge.md, "The comm").
                self._offer()

    def _fail_all(self, why: str) -> None:
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(BridgeError(why))

    # -- messages (main thread) ---------------------------------------------------------------

    def _received(self, comm: Any, msg: dict[str, Any]) -> None:
        self.main.adopt_loop()
        data = msg.get("content", {}).get("data")
        if not isinstance(data, dict):
            kind_of = type(data).__name__
            comm.send(
                {
                    "type": "reply",
                    "id": None,
                    "ok": False,
                    "error": f"a bridge message must be a JSON object, not {kind_of}",
                }
            )
            return
        kind = data.get("type")
        if kind == "welcome":
            self._welcome(comm, data)
        elif comm is not self.comm:
            return
        elif kind == "reply":
            future = self._waiting.pop(str(data.get("id")), None)
            if future is None or future.done():
                return
            if data.get("ok"):
                future.set_result(data.get("result") or {})
            else:
                stale = data.get("stale")
                future.set_exception(
                    BridgeError(
                        str(data.get("error") or "the frontend failed"),
                        stale=[str(s) for s in stale] if isinstance(stale, list) else None,
                    )
                )
        elif kind == "request":
            self._serve(comm, data)
        # Other notifications are ignored (none in protocol 1).

    def _serve(self, comm: Any, data: dict[str, Any]) -> None:
        request_id = data.get("id")
        if not isinstance(request_id, str) or not request_id:
            comm.send({"type": "reply", "id": None, "ok": False, "error": "a request needs an id"})
            return
        try:
            if not self.handlers and self.make_host is not None:
                self.make_host()
            handler = self.handlers.get(str(data.get("method")))
            if handler is None:
                raise BridgeError(f"unknown method {data.get('method')!r}")
            result = handler(dict(data.get("params") or {}))
        except CodexmaxError as exc:
            comm.send({"type": "reply", "id": request_id, "ok": False, "error": str(exc)})
            return
        except Exception as exc:
            log.exception("the bridge method %s failed", data.get("method"))
            comm.send({"type": "reply", "id": request_id, "ok": False, "error": repr(exc)})
            return
        comm.send({"type": "reply", "id": request_id, "ok": True, "result": result or {}})

    # -- from the agent's thread --------------------------------------------------------------

    def request(self, method: str, **params: Any) -> concurrent.futures.Future[Any]:
        """Ask the frontend; the future holds its result (or :class:`BridgeError`)."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        request_id = f"k{next(self._ids)}"

        def send() -> None:
            if not self.present:
                future.set_exception(BridgeError("no frontend holds the notebook"))
                return
            self._waiting[request_id] = future
            self.comm.send(
                {
                    "type": "request",
                    "id": request_id,
                    "method": method,
                    "params": params,
                    **self._to(),
                }
            )

        self.main.post(send)
        return future

    async def call(self, method: str, *, wait: float = REPLY_TIMEOUT, **params: Any) -> Any:
        """:meth:`request`, awaited on the agent's loop (at most ``wait`` seconds)."""
        import asyncio

        future = self.request(method, **params)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), wait)
        except asyncio.TimeoutError:
            raise BridgeError(f"the frontend did not answer {method} within {wait:g} s") from None

    def notify(self, kind: str, **fields: Any) -> None:
        """A message that needs no answer (the agent's events, for a sidebar)."""

        def send() -> None:
            if self.present:
                self.comm.send({"type": kind, **fields, **self._to()})

        self.main.post(send)

    def _to(self) -> dict[str, str]:
        """Whom a message is for: the frontend whose welcome made the bridge (others on the
        same kernel, such as another browser tab on the notebook, ignore it)."""
        client_id = self.peer.get("client_id")
        return {"to": client_id} if isinstance(client_id, str) and client_id else {}
