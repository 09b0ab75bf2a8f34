"""Benchmark: ``%load_ext`` of ours beside Jupyter AI's magics, each in a fresh real kernel.

Target (issue 5): ``%load_ext jupyter_codexmax`` at most 150 ms (median), importing none of
the heavy modules that come with the first ``%%agent``.

How it is measured: the extension loads once per kernel, so each sample is a fresh kernel
(started by jupyter_client as a frontend would, see ``kernels.py``). Inside it,
``time.perf_counter`` brackets ``run_line_magic("load_ext", ...)``; the modules it added to
``sys.modules`` are counted. Then, in the same kernel, ``%load_ext autoreload`` (IPython's
own) is timed the same way: a baseline that shows how fast that kernel was.

What is compared, interleaved round by round in one run (one warm-up round first, so every
load finds its bytecode and the file cache warm): ours in the project's Python, and, when
``./dev bench`` gives them (``results.jai_pythons()``), Jupyter AI's magics in a kernel of
each Jupyter AI environment: 2.x's ``jupyter_ai_magics``; for 3.x, ``jupyter_ai_magics``
(3.0.0b7, which needs ``jupyter-ai==3.0.0b7``) or, where that is absent, its successor
``jupyter_ai_magic_commands`` (what ``jupyter-ai[magics]`` 3.x installs). Their kernels get
``LITELLM_LOCAL_MODEL_COST_MAP=True``: litellm (3.x) would otherwise try to download a model
price list while importing, which these offline machines cannot.

    .venv/bin/python benchmarks/bench_load_ext.py     # writes benchmarks/RESULTS-load_ext.md
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any

from kernels import Unmeasured, interleave, kernel, run_json
from results import JAI_KEYS, PEERS, Row, jai_pythons, machine, median, percentile, report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS-load_ext.md"
SAMPLES = 10
TARGET_MS = 150.0
HEAVY = ("httpx", "nbformat", "jsonschema", "ipywidgets", "tiktoken", "nbclient", "anyio")
OURS = "jupyter_codexmax"
#: The extensions a Jupyter AI kernel may hold, the first one found is loaded.
JAI = ("jupyter_ai_magics", "jupyter_ai_magic_commands")
PEER_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}

PROBE = """
import importlib.util, json, platform, sys, time
import IPython
ext = next((n for n in {names!r} if importlib.util.find_spec(n)), {names!r}[0])
ip = get_ipython()
before = set(sys.modules)
t = time.perf_counter()
ip.run_line_magic("load_ext", ext)
load = time.perf_counter() - t
new = set(sys.modules) - before
t = time.perf_counter()
ip.run_line_magic("load_ext", "autoreload")
baseline = time.perf_counter() - t
print(json.dumps({{"load": load * 1000, "baseline": baseline * 1000, "modules": len(new),
                  "heavy": sorted(m for m in {heavy!r} if m in new), "ext": ext,
                  "version": getattr(sys.modules[ext], "__version__", "?"),
                  "python": platform.python_version(), "ipython": IPython.__version__}}))
"""


def sample(python: str, names: tuple[str, ...], env: dict[str, str]) -> dict[str, Any]:
    """One fresh kernel of ``python``: the first of ``names`` loaded, and the baseline."""
    with kernel(python, env=env) as kc:
        result: dict[str, Any] = run_json(kc, PROBE.format(names=names, heavy=HEAVY))
        return result


def peer_sample(python: str) -> dict[str, Any]:
    """:func:`sample` of a Jupyter AI environment: one that cannot load is not measured."""
    try:
        return sample(python, JAI, PEER_ENV)
    except RuntimeError as error:
        raise Unmeasured(f"its %load_ext failed ({error})") from None


def line(key: str, runs: list[dict[str, Any]] | None, failed: str | None) -> str:
    """One kernel's results as a Markdown list item."""
    name = "ours" if key == "ours" else PEERS[key]
    if failed:
        return f"- {name}: **not measured**: {failed}"
    if runs is None:
        return f"- {name}: **not measured** (no environment given: `./dev bench` provides it)"
    loads = [r["load"] for r in runs]
    first = runs[0]
    return (
        f"- {name}: `%load_ext {first['ext']}` ({first['ext']} {first['version']}, Python "
        f"{first['python']}, IPython {first['ipython']}): median **{median(loads):.1f} ms**, "
        f"p90 {percentile(loads, 0.9):.1f}, min {min(loads):.1f}, max {max(loads):.1f}; "
        f"`%load_ext autoreload` in the same kernels: median "
        f"{median([r['baseline'] for r in runs]):.1f} ms; modules imported: median "
        f"{median([r['modules'] for r in runs]):.0f}"
    )


def main() -> int:
    peers = jai_pythons()

    def one(key: str) -> dict[str, Any]:
        return sample(sys.executable, (OURS,), {}) if key == "ours" else peer_sample(peers[key])

    runs, failed = interleave(["ours", *peers], SAMPLES, one)
    heavy = sorted({m for r in runs["ours"] for m in r["heavy"]})
    ok = median([r["load"] for r in runs["ours"]]) <= TARGET_MS and not heavy

    stats = {
        key: {
            "median": median([r["load"] for r in rs]),
            "p90": percentile([r["load"] for r in rs], 0.9),
            "modules imported, median": median([r["modules"] for r in rs]),
        }
        for key, rs in runs.items()
    }

    def row(stat: str, unit: str = "ms", **more: Any) -> Row:
        theirs = {key: stats[key][stat] if key in stats else None for key in JAI_KEYS}
        return Row(
            "load: %load_ext in a fresh kernel", stat, unit, stats["ours"][stat], theirs, **more
        )

    note = "Jupyter AI: its magics' %load_ext in a kernel of its own venv, interleaved with ours"
    target = f"≤ {TARGET_MS:g} ms (issue 5)"
    within = stats["ours"]["median"] <= TARGET_MS
    rows = [
        row("median", target=target, met=within, note=note),
        row("p90"),
        row("modules imported, median", "modules"),
        Row("load: %load_ext in a fresh kernel", f"heavy modules imported ({', '.join(HEAVY)})",
            "modules", len(heavy), target="none (issue 5)", met=not heavy),
    ]  # fmt: skip
    notes = [f"{PEERS[k]} not measured: {why}" for k, why in failed.items()]
    report(rows, notes=notes, details=RESULTS.name)
    text = "\n".join(
        [
            "# Benchmark: `%load_ext` in a fresh real kernel, ours beside Jupyter AI's magics",
            "",
            f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on "
            f"{machine()} by `benchmarks/bench_load_ext.py`: {SAMPLES} rounds (after one "
            "warm-up), each a fresh kernel of every environment in turn; the load timed "
            "inside each kernel, then `%load_ext autoreload` in the same kernel as a baseline.",
            "",
            f"- target (issue 5): ours at most {TARGET_MS:g} ms, no heavy module "
            f"({', '.join(HEAVY)}): **{'met' if ok else 'NOT met'}**; heavy modules imported: "
            f"{', '.join(heavy) or 'none'}",
            *(line(key, runs.get(key), failed.get(key)) for key in ("ours", *JAI_KEYS)),
            "",
        ]
    )
    RESULTS.write_text(text)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
