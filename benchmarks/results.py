"""What each benchmark hands to ``./dev bench`` (``benchmarks/run_all.py``).

Every ``bench_*.py`` writes its own detailed ``RESULTS-<name>.md`` and, when run by the
runner, also a few summary rows through :func:`report`: one row is one measure of ours,
with the same measure of each peer taken in the same run beside it. The runner gathers
the rows of every benchmark into ``benchmarks/RESULTS.md``: one table per measure (rows of
one ``table`` string go together), ours and the peers in adjacent columns, with the ratio.

Peers are found from the environment the runner sets up (scratch environments outside the
repository; see ``run_all.py``):

- ``CODEX_BIN``: the Codex CLI's ``codex`` binary (npm ``@openai/codex``);
- ``CODEXMAX_BENCH_JAI2_PYTHON``, ``CODEXMAX_BENCH_JAI3_PYTHON``, ``CODEXMAX_BENCH_JAI_PYTHON``:
  the Python of a virtual environment holding, with ``ipykernel``, Jupyter AI's magics:
  ``jupyter-ai-magics`` 2.x; ``jupyter-ai-magics`` 3.x (a beta, with its ``jupyter-ai``);
  and those of the current Jupyter AI (``jupyter-ai-magic-commands``) (:data:`JAI_KEYS`).

A benchmark run on its own (no ``CODEXMAX_BENCH_JSON``) writes no rows; a peer it was not
given is reported as ``None`` (the runner says why it is missing).

Benchmarks that point ours and the Codex CLI at the same scripted model server share
:func:`scripted_env` (the environment for both) and :func:`request_parts` (how a recorded
request is split into instructions, tools and input, counted alike for both).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CODEX_MODEL",
    "JAI_KEYS",
    "PEERS",
    "Row",
    "codex_bin",
    "codex_version",
    "jai_pythons",
    "json_tokens",
    "machine",
    "median",
    "percentile",
    "report",
    "request_parts",
    "scripted_env",
]

#: The peers' keys, in the order of their columns, and their names.
PEERS: dict[str, str] = {
    "codex": "Codex CLI",
    "jai2": "Jupyter AI 2.x",
    "jai3": "Jupyter AI 3.x beta magics",
    "jai": "Jupyter AI 3.x",
}


@dataclass
class Row:
    """One measure: ours beside the peers' same measure, taken in the same run."""

    #: The measure's table (rows with the same string make one table), e.g.
    #: ``"load: %load_ext in a fresh kernel"``.
    table: str
    #: What this row measures, e.g. ``"median"`` or ``"200 cells, median per step"``.
    row: str
    #: The unit of every number in the row: ``"ms"``, ``"s"``, ``"tokens"``, ``"MB"``, ...
    unit: str
    #: Our value (``None``: could not be measured; ``note`` says why).
    ours: float | None
    #: Peer key (of :data:`PEERS`) to its value in the same unit; a key left out means the
    #: peer has no counterpart of this measure, ``None`` that it was not measured this run.
    peers: dict[str, float | None] = field(default_factory=dict)
    #: The target from the issues, e.g. ``"≤ 150 ms (issue 5)"``; empty if none.
    target: str = ""
    #: Whether ours meets the target (``None`` when there is no target).
    met: bool | None = None
    #: One short line shown under the table (how the peer was measured, a caveat).
    note: str = ""


def report(rows: Iterable[Row], *, notes: Sequence[str] = (), details: str = "") -> None:
    """Hand ``rows`` to the runner (appended to ``$CODEXMAX_BENCH_JSON``); no-op alone.

    ``details`` is the detailed results file's name (``RESULTS-<name>.md``).
    """
    path = os.environ.get("CODEXMAX_BENCH_JSON")
    if not path:
        return
    entry = {"rows": [asdict(r) for r in rows], "notes": list(notes), "details": details}
    with Path(path).open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")


def codex_bin() -> str:
    """The Codex CLI binary the runner installed (or ``CODEX_BIN`` names), or ``""``."""
    return os.environ.get("CODEX_BIN", "")


#: The model the Codex CLI is told to use against the scripted server: the newest of its
#: catalogue (``codex debug models``) whose tools are plain function tools (its newer
#: models default to a JavaScript "code mode" tool), so its own instructions and tools for
#: that model are what it sends, with no fallback metadata.
CODEX_MODEL = "gpt-5.5"


def codex_version(codex: str) -> str:
    """``codex --version`` (e.g. ``codex-cli 0.171.0``), or ``""``."""
    if not codex:
        return ""
    done = subprocess.run([codex, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def scripted_env(
    base_url: str, folder: Path, *, tiktoken_file: str = "", codex_model: str = CODEX_MODEL
) -> dict[str, str]:
    """The environment for ours and the Codex CLI, both pointed at the scripted server at
    ``base_url``: a key, a fresh ``JUPYTER_CONFIG_DIR`` and a ``CODEX_HOME`` under
    ``folder`` whose ``config.toml`` makes that server Codex's model provider, with
    ``codex_model`` (``""``: Codex's own default model)."""
    home = folder / "codex-home"
    home.mkdir(parents=True, exist_ok=True)
    config = (
        'model_provider = "scripted"\n'
        "[model_providers.scripted]\n"
        'name = "scripted"\n'
        f'base_url = "{base_url}"\n'
        'env_key = "OPENAI_API_KEY"\n'
        'wire_api = "responses"\n'
    )
    model = f'model = "{codex_model}"\n' if codex_model else ""
    (home / "config.toml").write_text(model + config)
    env = dict(
        os.environ,
        OPENAI_BASE_URL=base_url,
        OPENAI_API_KEY="benchmark-key",
        JUPYTER_CONFIG_DIR=str(folder / "jupyter"),
        CODEX_HOME=str(home),
        NO_PROXY="127.0.0.1,localhost",
    )
    if tiktoken_file:
        env["CODEXMAX_TIKTOKEN_FILE"] = tiktoken_file
    return env


def request_parts(body: dict[str, Any]) -> dict[str, list[Any]]:
    """A Responses API request body split the same way for every client:

    - ``tools``: the ``tools`` field and any ``additional_tools`` input items;
    - ``instructions``: the ``instructions`` field; when a client sends its base prompt as
      the first input message instead (a developer or system message, as the Codex CLI
      does), that message's text;
    - ``input``: every other input item, in order.

    API parameters (model, reasoning, include, metadata, ...) are left out: the model does
    not read them."""
    items = list(body.get("input") or [])
    tools = list(body.get("tools") or []) + [
        i for i in items if i.get("type") == "additional_tools"
    ]
    rest = [i for i in items if i.get("type") != "additional_tools"]
    instructions = [body["instructions"]] if body.get("instructions") else []
    if not instructions and rest and rest[0].get("role") in ("developer", "system"):
        instructions = [c.get("text", "") for c in rest[0].get("content") or []]
        rest = rest[1:]
    return {"instructions": instructions, "tools": tools, "input": rest}


def json_tokens(value: Any, count: Callable[[str], int]) -> int:
    """Tokens of ``value`` written as JSON (as it travels in the request), by ``count``."""
    return count(json.dumps(value, ensure_ascii=False)) if value else 0


#: The Jupyter AI environments: ``jai2``, jupyter-ai-magics 2.x; ``jai3``, jupyter-ai-magics
#: 3.x (pre-releases only, with the jupyter-ai of the same version it needs); ``jai``, the
#: magics current Jupyter AI installs (``jupyter-ai[magics]``: jupyter-ai-magic-commands).
JAI_KEYS = ("jai2", "jai3", "jai")


def jai_pythons() -> dict[str, str]:
    """Peer key to the Python of each Jupyter AI environment given (:data:`JAI_KEYS`)."""
    found = {}
    for key in JAI_KEYS:
        python = os.environ.get(f"CODEXMAX_BENCH_{key.upper()}_PYTHON", "")
        if python:
            found[key] = python
    return found


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value at ``fraction`` (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def machine() -> str:
    """This machine in a few words, for the results' headers."""
    return (
        f"{platform.node() or 'this machine'} ({os.cpu_count()} cores, "
        f"{platform.machine()}, Python {platform.python_version()})"
    )
