"""A frontend for tests: holds a notebook and speaks the bridge protocol (docs/bridge.md)
over a real kernel connection, as the JupyterLab extension does.

It executes cells as JupyterLab does (execute requests with the cell's id in the request's
metadata), answers the kernel's ``notebook.*`` requests from its own copy of the notebook,
renders nothing but keeps the widgets' states (to click their buttons through the widgets'
own comm messages), and saves the notebook when asked (the frontend owns the file).
"""

from __future__ import annotations

import queue
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
from kernelhelpers import Kernel

TARGET = "jupyter_codexmax.bridge"


class StaleEdit(Exception):
    def __init__(self, ids: list[str]) -> None:
        super().__init__(f"the user changed cell {', '.join(ids)} since the agent read it")
        self.ids = ids


class FakeFrontend:
    def __init__(self, kernel: Kernel, path: Path, *, accept: bool = True) -> None:
        self.kc = kernel.kc
        self.path = path
        self.nb = nbformat.read(path, as_version=4)
        self.dirty = False
        self.accept = accept
        self.comm_id: str | None = None
        self.hello: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.replies: dict[str, dict[str, Any]] = {}
        #: Replies without an id (to messages the kernel could not read).
        self.replies_none: list[dict[str, Any]] = []
        self.widgets: dict[str, dict[str, Any]] = {}
        self.saves = 0
        self.client_id = uuid.uuid4().hex[:12]
        #: Executions in flight: msg_id -> (cell id or None, outputs, finished callback).
        self._running: dict[str, dict[str, Any]] = {}
        self._queue: list[tuple[str | None, str, Callable[[dict[str, Any]], None]]] = []
        self.done: dict[str, dict[str, Any]] = {}
        #: Outputs by display id (updated in place by update_display_data).
        self._displays: dict[str, list[dict[str, Any]]] = {}

    # -- sending --------------------------------------------------------------------------------

    def _send(self, kind: str, content: dict[str, Any], metadata: Any = None) -> str:
        msg = self.kc.session.msg(kind, content, metadata=metadata or {})
        self.kc.shell_channel.send(msg)
        return str(msg["header"]["msg_id"])

    def welcome(self) -> dict[str, Any]:
        return {
            "type": "welcome",
            "protocol": 2,
            "client": "test frontend",
            "client_id": self.client_id,
            "notebook": {"path": self.path.name, "local_path": str(self.path)},
        }

    def open_bridge(self) -> None:
        """The frontend opens the bridge (its target registered in the kernel)."""
        self.comm_id = uuid.uuid4().hex
        self._send(
            "comm_open", {"comm_id": self.comm_id, "target_name": TARGET, "data": self.welcome()}
        )

    def close_bridge(self) -> None:
        """The notebook is closed: the frontend closes its end of the bridge."""
        assert self.comm_id is not None
        self._send("comm_close", {"comm_id": self.comm_id, "data": {}})
        self.comm_id = None
        self.hello = {}

    def send(self, data: Any) -> None:
        assert self.comm_id is not None
        self._send("comm_msg", {"comm_id": self.comm_id, "data": data})

    def request(self, method: str, **params: Any) -> str:
        request_id = uuid.uuid4().hex[:8]
        self.send({"type": "request", "id": request_id, "method": method, "params": params})
        return request_id

    def click(self, widget_id: str) -> None:
        self._send(
            "comm_msg",
            {"comm_id": widget_id, "data": {"method": "custom", "content": {"event": "click"}}},
        )

    # -- executing cells ----------------------------------------------------------------------

    def execute(self, cell_id: str) -> str:
        """Run a cell of the notebook as JupyterLab does; returns the execution's msg id."""
        cell = next(c for c in self.nb.cells if c.id == cell_id)
        return self._execute(cell.source, cell_id)

    def execute_code(self, code: str, *, silent: bool = False) -> str:
        """``silent``: as the sidebar loads the extension (no history, no output)."""
        return self._execute(code, None, silent=silent)

    def _execute(
        self,
        code: str,
        cell_id: str | None,
        finished: Callable[[dict[str, Any]], None] | None = None,
        *,
        silent: bool = False,
    ) -> str:
        content = {
            "code": code,
            "silent": silent,
            "store_history": not silent,
            "user_expressions": {},
            "allow_stdin": True,  # as JupyterLab sends it
            "stop_on_error": True,
        }
        metadata = {"cellId": cell_id} if cell_id else {}
        msg_id = self._send("execute_request", content, metadata)
        self._running[msg_id] = {
            "cell_id": cell_id,
            "outputs": [],
            "started": time.monotonic(),
            "finished": finished,
        }
        if cell_id:
            cell = next(c for c in self.nb.cells if c.id == cell_id)
            cell.outputs = []
        return msg_id

    # -- receiving ----------------------------------------------------------------------------

    def pump(self, until: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; events: {[e['type'] for e in self.events]}")
            try:
                msg = self.kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                continue
            self._iopub(msg)

    def finished(self, msg_id: str) -> Callable[[], bool]:
        return lambda: msg_id in self.done

    def turn_finished(self, count: int = 1) -> Callable[[], bool]:
        return lambda: sum(1 for e in self.events if e["type"] == "TurnFinished") >= count

    def _iopub(self, msg: dict[str, Any]) -> None:
        kind = msg["msg_type"]
        content = msg["content"]
        parent = msg["parent_header"].get("msg_id")
        if kind == "comm_open":
            if content["target_name"] == TARGET and self.accept and self.comm_id is None:
                self.comm_id = content["comm_id"]
                self.hello = content.get("data") or {}
                self.send(self.welcome())
            elif content["target_name"] == "jupyter.widget":
                self.widgets[content["comm_id"]] = dict(content["data"].get("state") or {})
        elif kind == "comm_msg":
            data = content.get("data") or {}
            if content["comm_id"] == self.comm_id:
                self._bridge(data)
            elif content["comm_id"] in self.widgets and data.get("method") == "update":
                self.widgets[content["comm_id"]].update(data.get("state") or {})
        elif kind == "comm_close" and content["comm_id"] == self.comm_id:
            self.comm_id = None
        elif kind == "update_display_data":
            self._update_display(content)
        elif parent in self._running:
            self._output(parent, kind, content)

    def _output(self, msg_id: str, kind: str, content: dict[str, Any]) -> None:
        run = self._running[msg_id]
        if kind == "status" and content["execution_state"] == "idle":
            del self._running[msg_id]
            run["duration"] = time.monotonic() - run["started"]
            self.done[msg_id] = run
            if run["cell_id"]:
                cell = next(c for c in self.nb.cells if c.id == run["cell_id"])
                cell.outputs = [nbformat.from_dict(o) for o in run["outputs"]]
                cell.execution_count = run.get("execution_count")
                self.dirty = True
            if run["finished"] is not None:
                run["finished"](run)
            return
        if kind == "execute_input":
            run["execution_count"] = content.get("execution_count")
            return
        if kind in ("stream", "display_data", "execute_result", "error"):
            output = {"output_type": kind, **content}
            display_id = (output.pop("transient", None) or {}).get("display_id")
            run["outputs"].append(output)
            if display_id:
                self._displays.setdefault(display_id, []).append(output)

    def _update_display(self, content: dict[str, Any]) -> None:
        """As JupyterLab does: every output shown under that display id, wherever it is."""
        display_id = (content.get("transient") or {}).get("display_id")
        for output in self._displays.get(str(display_id), []):
            output["data"] = content["data"]
            output["metadata"] = content.get("metadata", {})

    # -- the kernel's requests ------------------------------------------------------------------

    def _bridge(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if data.get("to", self.client_id) != self.client_id:
            return  # for another frontend on the same kernel
        if kind == "event":
            self.events.append(data["event"])
        elif kind == "reply":
            if data.get("id") is None:
                self.replies_none.append(data)
            else:
                self.replies[str(data["id"])] = data
        elif kind == "request":
            method, params = str(data["method"]), dict(data.get("params") or {})
            self.requests.append((method, params))
            try:
                if method == "notebook.run":
                    self._run(str(data["id"]), params)
                    return
                result = self._answer(method, params)
            except StaleEdit as exc:
                self.send(
                    {
                        "type": "reply",
                        "id": data["id"],
                        "ok": False,
                        "error": str(exc),
                        "stale": exc.ids,
                    }
                )
                return
            except Exception as exc:
                self.send({"type": "reply", "id": data["id"], "ok": False, "error": str(exc)})
                return
            self.send({"type": "reply", "id": data["id"], "ok": True, "result": result})

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "notebook.get":
            cells = [dict(c) for c in self.nb.cells]
            return {
                "path": self.path.name,
                "local_path": str(self.path),
                "nbformat": self.nb.nbformat,
                "nbformat_minor": self.nb.nbformat_minor,
                "metadata": dict(self.nb.metadata),
                "cells": cells,
                "dirty": self.dirty,
            }
        if method == "notebook.edit":
            self._check(params["ops"])
            for op in params["ops"]:
                self._edit(op)
            self.dirty = True
            return {}
        if method == "notebook.save":
            nbformat.write(self.nb, self.path)
            self.saves += 1
            self.dirty = False
            return {"saved": True}
        raise ValueError(f"unknown method {method}")

    def _check(self, ops: list[dict[str, Any]]) -> None:
        """As the extension does: the whole edit checked before any of it is made; a cell
        whose source is not the op's ``base`` (the user changed it) refuses it all."""
        sources = {c.id: c.source for c in self.nb.cells}
        stale = []
        for op in ops:
            if op["op"] not in ("insert", "set_metadata") and op["id"] not in sources:
                raise ValueError(f"no cell has id {op['id']!r}")
            if "base" in op and sources[op["id"]] != op["base"]:
                stale.append(op["id"])
            if op["op"] in ("insert", "set_source"):
                sources[op["id"]] = op["source"]
            elif op["op"] == "delete":
                del sources[op["id"]]
        if stale:
            raise StaleEdit(stale)

    def _edit(self, op: dict[str, Any]) -> None:
        cells = self.nb.cells
        index = {c.id: i for i, c in enumerate(cells)}
        kind = op["op"]
        if kind == "insert":
            maker = {
                "code": nbformat.v4.new_code_cell,
                "markdown": nbformat.v4.new_markdown_cell,
                "raw": nbformat.v4.new_raw_cell,
            }[op["cell_type"]]
            cell = maker(op["source"])
            cell.id = op["id"]
            cell.metadata = nbformat.from_dict(op.get("metadata") or {})
            if op["cell_type"] == "code":
                cell.outputs = [nbformat.from_dict(o) for o in op.get("outputs") or []]
                cell.execution_count = op.get("execution_count")
            cells.insert(op["index"], cell)
        elif kind == "set_source":
            cell = cells[index[op["id"]]]
            if op.get("cell_type", cell.cell_type) != cell.cell_type:
                maker = {
                    "code": nbformat.v4.new_code_cell,
                    "markdown": nbformat.v4.new_markdown_cell,
                    "raw": nbformat.v4.new_raw_cell,
                }[op["cell_type"]]
                new = maker(op["source"])
                new.id, new.metadata = cell.id, cell.metadata
                cells[index[op["id"]]] = new
            else:
                cell.source = op["source"]
        elif kind == "delete":
            del cells[index[op["id"]]]
        elif kind == "move":
            cell = cells.pop(index[op["id"]])
            cells.insert(op["index"], cell)
        elif kind == "set_metadata":
            if op["value"] is None:
                self.nb.metadata.pop(op["key"], None)
            else:
                self.nb.metadata[op["key"]] = op["value"]
        elif kind == "set_outputs":
            cells[index[op["id"]]].outputs = [nbformat.from_dict(o) for o in op["outputs"]]
        else:
            raise ValueError(f"unknown op {kind}")

    def _run(self, request_id: str, params: dict[str, Any]) -> None:
        """Run the cells one after the other, then answer."""
        ids = list(params["ids"])
        runs: list[dict[str, Any]] = []

        def next_cell(previous: dict[str, Any] | None = None) -> None:
            if previous is not None:
                error = next((o for o in previous["outputs"] if o["output_type"] == "error"), None)
                runs.append(
                    {
                        "id": previous["cell_id"],
                        "status": "error" if error else "ok",
                        "execution_count": previous.get("execution_count"),
                        "outputs": previous["outputs"],
                        "duration": previous["duration"],
                    }
                )
                if error:
                    ids.clear()
            if not ids:
                self.send({"type": "reply", "id": request_id, "ok": True, "result": {"runs": runs}})
                return
            cell_id = ids.pop(0)
            cell = next(c for c in self.nb.cells if c.id == cell_id)
            self._execute(cell.source, cell_id, next_cell)

        next_cell()

    # -- looking ------------------------------------------------------------------------------

    def buttons(self, description: str) -> list[str]:
        return [
            comm_id
            for comm_id, state in self.widgets.items()
            if state.get("_model_name") == "ButtonModel" and state.get("description") == description
        ]

    def cell(self, cell_id: str) -> Any:
        return next(c for c in self.nb.cells if c.id == cell_id)
