"""What each benchmark hands to ``./dev bench`` (``benchmarks/run_all.py``).

Every ``bench_*.py`` writes its own detailed ``RESULTS-<name>.md`` and, when run by the
runner, also a few summary rows through :func:`report`: one row is one measure of ours,
with the same measure of each peer taken in the same run beside it. The runner gathers
the rows of every benchmark into ``benchmarks/RESULTS.md``: one table per measure (rows of
one ``table`` string go together), ours and the peers in adjacent columns, with the ratio.

Peers are found from the environment the runner sets up (scratch environments outside the
repository; see ``run_all.py``):

- ``CODEX_BIN``: the Codex CLI's ``codex`` binary (npm ``@openai/codex``);
- ``CODEXMAX_BENCH_JAI2_PYTHON`` / ``CODEXMAX_BENCH_JAI3_PYTHON``: the Python of a virtual
  environment holding ``jupyter-ai-magics`` of the 2.x / 3.x line and ``ipykernel``.

A benchmark run on its own (no ``CODEXMAX_BENCH_JSON``) writes no rows; a peer it was not
given is reported as ``None`` (the runner says why it is missing).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["PEERS", "Row", "codex_bin", "jai_pythons", "machine", "median", "percentile", "report"]

#: The peers' keys, in the order of their columns, and their names.
PEERS: dict[str, str] = {
    "codex": "Codex CLI",
    "jai2": "Jupyter AI 2.x",
    "jai3": "Jupyter AI 3.x",
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


def jai_pythons() -> dict[str, str]:
    """Peer key to the Python of each Jupyter AI environment given (``jai2``, ``jai3``)."""
    found = {}
    for key in ("jai2", "jai3"):
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
