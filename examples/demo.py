"""The demo: the scripted model server, and ``jupyter codexmax`` talking to it.

Run it with ``./dev demo``. It needs no API key and no network: the scripted model server
(a real HTTP server on loopback, not a model) answers from ``examples/scripts/hello.json``.
Each step prints the command it runs, so you can run the same against a real endpoint:

    OPENAI_API_KEY=sk-... jupyter codexmax ask "..."
    jupyter codexmax ask --provider chat --base-url http://localhost:11434/v1 --model qwen3 "..."
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from jupyter_codexmax.testing import ScriptedModelServer

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def step(title: str, args: list[str], env: dict[str, str]) -> int:
    shown = {k: env[k] for k in ("OPENAI_BASE_URL", "OPENAI_API_KEY") if k in env}
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in shown.items())
    print(f"\n== {title}\n$ {prefix} jupyter codexmax {shlex.join(args)}", flush=True)
    return subprocess.run(
        [str(BIN / "jupyter"), "codexmax", *args], env=env, check=False
    ).returncode


def main() -> int:
    script = HERE / "scripts" / "hello.json"
    with ScriptedModelServer(str(script)) as server:
        print(
            f"Scripted model server (not a model) at {server.base_url}, "
            f"answering from {script.relative_to(HERE.parent)}"
        )
        env = {
            **os.environ,
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "demo-key",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        failures = 0
        failures += (
            step(
                "A one-shot question over the Responses API (the default)",
                ["ask", "--reasoning", "--usage", "What are you?"],
                env,
            )
            != 0
        )
        failures += (
            step(
                "The same over Chat Completions (vLLM, Ollama, llama.cpp, ...)",
                ["ask", "--provider", "chat", "What are you?"],
                env,
            )
            != 0
        )
        failures += step("What is configured, and does it work?", ["doctor"], env) != 0
        print(
            f"\n{len(server.requests)} requests reached the scripted server: "
            + ", ".join(f"{r.method} {r.path}" for r in server.requests)
        )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
