"""The demo: the agent fixes a broken notebook, headless, with a real kernel.

Run it with ``./dev demo``. No API key and no network are needed: the model is the
scripted model server (a real HTTP server on loopback, not a model) replaying
``examples/scripts/fix_sales.json``. Everything else is real: ``jupyter codexmax run``, the
agent, its tools, and the notebook's own kernel, which runs the cells and produces the
errors and outputs the agent reads.

The notebook is copied to ``build/demo/`` first, so ``examples/`` stays broken; open the
fixed copy in JupyterLab afterwards. To do the same with a real model::

    OPENAI_API_KEY=sk-... jupyter codexmax run build/demo/clean_sales.ipynb \\
        --task "Fix the failing cells so the report runs" --full-auto
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from jupyter_codexmax.testing import ScriptedModelServer

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TASK = "Fix the failing cells so the report runs"


def main() -> int:
    work = ROOT / "build" / "demo"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(ROOT / "examples" / "sales", work)
    notebook = work / "clean_sales.ipynb"
    report = work / "report.json"
    script = ROOT / "examples" / "scripts" / "fix_sales.json"
    with ScriptedModelServer(str(script)) as server:
        print(
            f"The model in this demo is the scripted model server at {server.base_url}: it "
            f"replays {script.relative_to(ROOT)}.\nEverything else is real: the agent, its "
            "tools, and the notebook's kernel.\n",
            flush=True,
        )
        args = [
            "run",
            str(notebook.relative_to(ROOT)),
            "--task",
            TASK,
            "--full-auto",
            "--report",
            str(report.relative_to(ROOT)),
        ]
        print(f"$ jupyter codexmax {shlex.join(args)}\n", flush=True)
        env = {
            **os.environ,
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "demo",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        status = subprocess.run(
            [str(BIN / "jupyter"), "codexmax", *args], env=env, cwd=ROOT, check=False
        ).returncode
        if server.failures:
            print("\nThe scripted model could not follow: " + "; ".join(server.failures))
            return 1
    entry = json.loads(report.read_text())["notebooks"][0]
    print("\nWhat changed in the notebook:\n")
    print(entry["diff"].rstrip())
    result = json.loads(notebook.read_text())["cells"][-1]["outputs"]
    if result:
        print("\nThe report cell's output, from the kernel:\n")
        print("".join(result[0]["data"]["text/plain"]))
    print(
        f"\nThe fixed notebook: {notebook.relative_to(ROOT)} (open it in JupyterLab); the "
        f"run's report: {report.relative_to(ROOT)}."
    )
    print(
        f"With a real model: OPENAI_API_KEY=sk-... jupyter codexmax {shlex.join(args[:4])} "
        "--full-auto"
    )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
