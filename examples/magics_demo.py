"""The magics demo: a notebook of ``%%agent`` cells, run top to bottom as papermill would.

Run it with ``./dev demo magics`` (or ``.venv/bin/python examples/magics_demo.py``). The model
is the scripted model server replaying ``examples/scripts/magics.json``; the rest is real:
nbclient runs ``examples/magics/temperatures.ipynb`` in a real kernel, its ``%%agent`` cells
load the agent into that kernel, and the agent reads the notebook, proposes its fixes and
runs code in the same kernel. The executed notebook is written to ``build/magics/``: open it
in JupyterLab to see each turn's summary, and the session kept in the last ``%%agent``
output (the next ``%%agent``, in a new kernel, carries on from it).

To do the same with a real model, open the notebook in JupyterLab with ``OPENAI_API_KEY``
set, and run the cells.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nbformat

from jupyter_codexmax.session.store import OUTPUT_MIME
from jupyter_codexmax.testing import ScriptedModelServer
from jupyter_codexmax.testing.notebooks import run_notebook

ROOT = Path(__file__).resolve().parents[1]


def run(work: Path, base_url: str) -> nbformat.NotebookNode:
    """Execute the notebook in ``work`` with nbclient (no input, like papermill)."""
    path = work / "temperatures.ipynb"
    nb = nbformat.read(path, as_version=4)
    env = {
        **os.environ,
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": "demo",
        "JUPYTER_DATA_DIR": str(work / ".jupyter-data"),
    }
    # allow_errors: the `mean` cell fails before the agent fixes it.
    run_notebook(nb, work, env, allow_errors=True)
    nbformat.write(nb, path)
    return nb  # type: ignore[no-any-return]


def main() -> int:
    work = ROOT / "build" / "magics"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(ROOT / "examples" / "magics", work)
    script = ROOT / "examples" / "scripts" / "magics.json"
    with ScriptedModelServer(str(script)) as server:
        print(
            f"The model in this demo is the scripted model server at {server.base_url}: it "
            f"replays {script.relative_to(ROOT)}.\nEverything else is real: nbclient runs "
            "the notebook in a real kernel, and the %%agent cells run the agent in it.\n",
            flush=True,
        )
        nb = run(work, server.base_url)
        failures = list(server.failures)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        print(f"In [{cell.execution_count or ' '}]: {cell.source.splitlines()[0]}")
        for output in cell.outputs:
            if output.output_type == "stream":
                print("   " + output.text.rstrip().replace("\n", "\n   "))
            elif output.output_type == "error":
                print(f"   {output.ename}: {output.evalue}")
            elif "text/markdown" in output.get("data", {}):
                text = output.data["text/markdown"].split("<details>")[0].strip()
                print("   " + text.replace("\n", "\n   "))
            elif "text/plain" in output.get("data", {}):
                print("   " + output.data["text/plain"])
        print()
    records = [
        o for c in nb.cells for o in c.get("outputs", []) if OUTPUT_MIME in o.get("data", {})
    ]
    print(
        f"The session is kept in {len(records)} output (the last %%agent cell's), so the "
        f"notebook carries it.\nThe executed notebook: {work / 'temperatures.ipynb'}"
    )
    if failures:
        print(f"the scripted server could not answer: {failures}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
