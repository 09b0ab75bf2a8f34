"""A real kernel for tests, driven through jupyter_client as a frontend would."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_codexmax.session.store import OUTPUT_MIME
from jupyter_codexmax.testing import ScriptedModelServer

KEY = "sk-kernel-test-0123456789abcdef"


@dataclass
class Result:
    """What one execute request produced."""

    reply: dict[str, Any]
    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reply.get("status") == "ok"

    @property
    def stdout(self) -> str:
        return "".join(
            c["text"] for t, c in self.messages if t == "stream" and c["name"] == "stdout"
        )

    @property
    def stderr(self) -> str:
        return "".join(
            c["text"] for t, c in self.messages if t == "stream" and c["name"] == "stderr"
        )

    def displays(self) -> list[dict[str, Any]]:
        """Display data as the cell ends up showing it: updates applied by display id."""
        shown: dict[str, dict[str, Any]] = {}
        order: list[str] = []
        for kind, content in self.messages:
            if kind == "clear_output":
                shown.clear()
                order.clear()
                continue
            if kind not in ("display_data", "update_display_data", "execute_result"):
                continue
            display_id = (content.get("transient") or {}).get("display_id") or str(len(order))
            if kind == "update_display_data":
                if display_id in shown:
                    shown[display_id] = content["data"]
                continue
            if display_id not in shown:
                order.append(display_id)
            shown[display_id] = content["data"]
        return [shown[d] for d in order]

    def markdown(self) -> str:
        return "\n".join(d.get("text/markdown", "") for d in self.displays())

    def records(self) -> list[dict[str, Any]]:
        return [d[OUTPUT_MIME] for d in self.displays() if OUTPUT_MIME in d]

    def everything(self) -> str:
        import json

        return json.dumps([[t, c] for t, c in self.messages]) + json.dumps(self.reply)


class Kernel:
    """A python3 kernel started with the scripted server's URL and a key, in ``cwd``."""

    def __init__(
        self,
        cwd: Path,
        server: ScriptedModelServer,
        *,
        data_dir: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        from jupyter_client.manager import KernelManager

        self._sockets = tempfile.mkdtemp(prefix="cmx-k")
        self.km = KernelManager(
            kernel_name="python3", transport="ipc", ip=os.path.join(self._sockets, "k")
        )
        environment = {
            **os.environ,
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": KEY,
            "CODEXMAX_TOKENIZER": "estimate",
            "JUPYTER_DATA_DIR": str(data_dir),
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        }
        environment.pop("JPY_SESSION_NAME", None)
        environment.update(env or {})
        self.km.start_kernel(env=environment, cwd=str(cwd))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(
        self,
        code: str,
        *,
        stdin: bool = False,
        answers: tuple[str, ...] = (),
        timeout: int = 120,
        cell_id: str | None = None,
    ) -> Result:
        """Run ``code`` and gather what it showed; ``cell_id``: sent in the request's
        metadata as JupyterLab does (``cellId``)."""
        messages: list[tuple[str, dict[str, Any]]] = []
        prompts: list[str] = []
        pending = list(answers)

        def output(msg: dict[str, Any]) -> None:
            kind = msg["msg_type"]
            if kind not in ("status", "execute_input"):
                messages.append((kind, msg["content"]))

        def ask(msg: dict[str, Any]) -> None:
            prompts.append(msg["content"]["prompt"])
            self.kc.input(pending.pop(0) if pending else "n")

        session = self.kc.session
        make = session.msg
        if cell_id is not None:

            def with_cell(msg_type: str, content: Any = None, *args: Any, **kwargs: Any) -> Any:
                msg = make(msg_type, content, *args, **kwargs)
                if msg_type == "execute_request":
                    msg["metadata"]["cellId"] = cell_id
                return msg

            session.msg = with_cell
        try:
            reply = self.kc.execute_interactive(
                code,
                allow_stdin=stdin,
                output_hook=output,
                stdin_hook=ask,
                timeout=timeout,
            )
        finally:
            session.msg = make
        return Result(reply["content"], messages, prompts)

    def execute(self, code: str, *, stdin: bool = False) -> str:
        """Send a request without waiting (to interrupt it)."""
        return str(self.kc.execute(code, allow_stdin=stdin))

    def interrupt(self) -> None:
        self.km.interrupt_kernel()

    def restart(self) -> None:
        self.km.restart_kernel(now=True)
        self.kc.wait_for_ready(timeout=60)

    def close(self) -> None:
        try:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=True)
        finally:
            shutil.rmtree(self._sockets, ignore_errors=True)

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
