"""``./dev lab``: JupyterLab on a copy of the example notebooks, with the agent's sidebar.

With ``OPENAI_API_KEY`` set, the agent uses it (and the rest of your configuration). Without
one, the model is the scripted model server on loopback (``scripts/lab.json``): it answers
every task with the same words, saying what it is, so the sidebar and ``%%agent`` can be
tried in a minute with no key and no network. The notebooks are copied to ``build/lab/`` (the
agent edits the copies, never ``examples/``); arguments go to ``jupyter lab``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def main(argv: list[str]) -> int:
    work = ROOT / "build" / "lab"
    if not work.exists():
        work.mkdir(parents=True)
        for folder in ("sales", "magics"):
            shutil.copytree(ROOT / "examples" / folder, work / folder)
    command = [str(BIN / "jupyter"), "lab", f"--ServerApp.root_dir={work}", *argv]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # a container's root: JupyterLab refuses it otherwise
    env = dict(os.environ)
    if env.get("OPENAI_API_KEY"):
        print(f"== JupyterLab on {work.relative_to(ROOT)}/ with your OPENAI_API_KEY", flush=True)
        return subprocess.run(command, env=env, check=False).returncode
    from jupyter_codexmax.testing import ScriptedModelServer

    script = ROOT / "examples" / "scripts" / "lab.json"
    with ScriptedModelServer(str(script)) as server:
        print(
            "== No OPENAI_API_KEY: the model is the SCRIPTED MODEL SERVER at "
            f"{server.base_url}\n   (not a model: it answers every task with the same words; "
            "OPENAI_API_KEY=sk-... ./dev lab for a real one)\n"
            f"== JupyterLab on {work.relative_to(ROOT)}/ (copies of the examples): open a "
            "notebook, then the agent chat (Ctrl+Alt+C, or the chat icon on the right)",
            flush=True,
        )
        env.update(
            OPENAI_BASE_URL=server.base_url,
            OPENAI_API_KEY="scripted",
            NO_PROXY="127.0.0.1,localhost",
        )
        try:
            return subprocess.run(command, env=env, check=False).returncode
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
