"""Every benchmark in one run, beside the peers, into ``benchmarks/RESULTS.md``.

``./dev bench`` runs this (after building the JupyterLab extension and finding Chromium,
as the tests do). It sets up the peers outside the repository (``peers.py``: the Codex CLI
from npm, Jupyter AI's magics of both major lines from PyPI), runs each ``bench_*.py`` in
its own process one after the other (each interleaves its peers in its own run and writes
its detailed ``RESULTS-<name>.md``), gathers the rows they hand over (``results.py``) and
writes RESULTS.md: the machine, the date, every version, then one table per measure with
ours and the peers in adjacent columns, the ratio, and the target of the issue that set one,
met or not. A peer that could not be installed, or a benchmark that failed, is said so there.

    ./dev bench                        # everything (about 20 minutes here)
    ./dev bench --only view,ask        # some of them, into build/RESULTS-partial.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from peers import Peer, environment, setup_all
from results import PEERS, machine

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "benchmarks"
RESULTS = HERE / "RESULTS.md"
LOGS = ROOT / "build" / "bench-logs"

#: The benchmarks in the order they run, by the family of measure they belong to.
FAMILIES: list[tuple[str, list[str]]] = [
    ("Tokens", ["view", "review"]),
    ("Load", ["load_ext", "ask"]),
    ("Overhead", ["step", "first_panel", "big_notebook", "read_file"]),
    ("Compaction", ["session"]),
    ("Cells", ["cells"]),
    ("The browser (real JupyterLab and Chromium)", ["live", "sidebar"]),
    ("Scale-out", ["dask"]),
]
ORDER = [name for _, names in FAMILIES for name in names]

#: Why some peers have no column in a benchmark's tables (said under them).
ABSENT: dict[str, str] = {
    "view": "Jupyter AI: its magics send the prompt (and what it interpolates), never a "
    "notebook read by a tool, and have no agent request to compare",
    "review": "Jupyter AI: it has no review mode",
    "load_ext": "the Codex CLI: not a Jupyter extension (its start is measured whole, "
    "`codex exec` beside `ask`)",
    "ask": "Jupyter AI: no one-shot command outside a kernel (its magics are measured in "
    "`load_ext` and `first_panel`)",
    "first_panel": "the Codex CLI: it has no notebook cell",
    "big_notebook": "every peer: neither runs a notebook's cells headless in a kernel; "
    "compared with our code before issue 10 instead",
    "read_file": "every peer: compared with our code before issue 10 (the Codex CLI reads "
    "files with shell commands, Jupyter AI's magics do not read files)",
    "session": "every peer: neither keeps its session in the notebook, so nothing there "
    "compares like for like",
    "cells": "every peer: neither edits or reads a notebook through such operations (the "
    "Codex CLI reads and writes the .ipynb as text; Jupyter AI's magics do not edit notebooks)",
    "live": "every peer: neither edits the notebook on screen from the kernel",
    "sidebar": "every peer: Jupyter AI's chat needs its server extension and a chat model "
    "set up in JupyterLab, not measured in this run; the Codex CLI has no JupyterLab UI",
    "dask": "every peer: neither runs many notebooks on a cluster",
}


@dataclass
class Outcome:
    """What one benchmark's process did."""

    name: str
    code: int | None = None
    seconds: float = 0.0
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: str = ""
    error: str = ""


def run_one(name: str, env: dict[str, str], timeout: float) -> Outcome:
    outcome = Outcome(name)
    script = HERE / f"bench_{name}.py"
    if not script.exists():
        outcome.error = f"{script.name} does not exist"
        return outcome
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{name}.log"
    with tempfile.TemporaryDirectory() as tmp:
        rows_file = Path(tmp) / "rows.jsonl"
        started = time.monotonic()
        print(f"== {name}: {script.relative_to(ROOT)} (log: {log.relative_to(ROOT)})", flush=True)
        try:
            with log.open("w") as out:
                done = subprocess.run(
                    [sys.executable, str(script)],
                    env={**env, "CODEXMAX_BENCH_JSON": str(rows_file)},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    cwd=ROOT,
                    check=False,
                )
            outcome.code = done.returncode
        except subprocess.TimeoutExpired:
            outcome.error = f"did not finish in {timeout:.0f} s"
        outcome.seconds = time.monotonic() - started
        if rows_file.exists():
            for line in rows_file.read_text().splitlines():
                entry = json.loads(line)
                outcome.rows += entry["rows"]
                outcome.notes += entry["notes"]
                outcome.details = entry["details"] or outcome.details
    if outcome.code not in (0, 1) and not outcome.error:
        tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:]
        outcome.error = f"exit {outcome.code}: {tail[0][:300] if tail else 'no output'}"
    elif not outcome.rows and not outcome.error:
        outcome.error = "handed over no rows"
    missed = [r["row"] for r in outcome.rows if r["met"] is False]
    state = outcome.error or (f"NOT met: {'; '.join(missed)}" if missed else "targets met")
    rows = f"{len(outcome.rows)} row{'s' if len(outcome.rows) != 1 else ''}"
    print(f"   {outcome.seconds:.0f} s, {rows}: {state}", flush=True)
    return outcome


# -- the report ---------------------------------------------------------------------------------


def number(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "%":
        return f"{value:.1f} %"
    if unit in ("tokens", "bytes") or abs(value) >= 1000 or float(value).is_integer():
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if value else "0"


def ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or theirs == 0 or ours < 0 or theirs < 0:
        return "–"
    share = ours / theirs
    if share >= 0.1 or share == 0:
        return f"**{share:.2f}**"
    return f"**{share:.2g}** (1/{1 / share:,.0f})"


def missing_reason(key: str, peers: dict[str, Peer]) -> str:
    peer = peers.get(key)
    if peer is None:
        return "not set up in this run"
    if not peer.ok:
        return f"not installed: {peer.error}"
    return "not measured (see the notes)"


def table(title: str, rows: list[dict[str, Any]], peers: dict[str, Peer]) -> list[str]:
    keys = [k for k in PEERS if any(k in r["peers"] for r in rows)]
    has_target = any(r["target"] for r in rows)
    header = ["measure", "unit", "jupyter-codexmax"]
    for key in keys:
        header += [PEERS[key], "ratio"]
    if has_target:
        header += ["target", "met"]
    numbers = len(header) - 2 - 2 * has_target
    align = ["---", "---"] + ["---:"] * numbers + ["---"] * (2 * has_target)
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    missing: dict[str, str] = {}
    for r in rows:
        cells = [r["row"], r["unit"], f"**{number(r['ours'], r['unit'])}**"]
        for key in keys:
            if key not in r["peers"]:
                cells += ["(no counterpart)", ""]
                continue
            value = r["peers"][key]
            if value is None:
                missing[key] = missing_reason(key, peers)
            cells += [number(value, r["unit"]), ratio(r["ours"], value)]
        if has_target:
            met = {True: "met", False: "**NOT met**", None: ""}[r["met"]]
            cells += [r["target"], met]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if keys:
        lines.append("Ratio: ours ÷ the peer's, in the same run (below 1: ours is smaller/faster).")
    for key, why in missing.items():
        lines.append(f"- {PEERS[key]}: {why}.")
    for note in dict.fromkeys(r["note"] for r in rows if r["note"]):
        lines.append(f"- {note}")
    lines.append("")
    return lines


def describe() -> str:
    """This checkout's commit (``-dirty`` when its tracked files differ from it)."""
    return subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty", "--abbrev=10"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip


def versions(peers: dict[str, Peer], commit: str) -> list[str]:
    def dist(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    chromium = os.environ.get("CODEXMAX_CHROMIUM") or shutil.which("chromium") or ""
    browser = "not found (the browser benchmarks skip)"
    if chromium:
        browser = subprocess.run(
            [chromium, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    lines = [
        "| what | version |",
        "| --- | --- |",
        f"| jupyter-codexmax | {dist('jupyter-codexmax')} (commit `{commit or 'unknown'}`) |",
        f"| Python | {platform.python_version()} ({sys.executable}) |",
        *(
            f"| {name} | {dist(name)} |"
            for name in ("jupyterlab", "ipykernel", "ipywidgets", "httpx", "tiktoken", "dask")
        ),
        f"| Chromium | {browser} |",
    ]
    for peer in peers.values():
        state = f"{peer.version}" if peer.ok else f"**not installed**: {peer.error}"
        if peer.ok and peer.warning:
            state += f" ({peer.warning})"
        where = f" (`{peer.path}`, set up in {peer.setup_seconds:.0f} s)" if peer.ok else ""
        lines.append(f"| {peer.name} (peer) | {state}{where} |")
    return lines


def write(
    outcomes: dict[str, Outcome],
    peers: dict[str, Peer],
    seconds: float,
    *,
    commit: str = "",
    out: Path = RESULTS,
) -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    every = [r for o in outcomes.values() for r in o.rows]
    met = sum(r["met"] is True for r in every)
    missed = [r for r in every if r["met"] is False]
    scope = (
        "Every benchmark ran in this one run"
        if set(outcomes) == set(ORDER)
        else f"A partial run (`--only`): {len(outcomes)} of the {len(ORDER)} benchmarks ran"
    )
    lines = [
        "# Benchmarks, side by side with the peers",
        "",
        f"Run {now:%Y-%m-%d %H:%M} UTC on {machine()}, {platform.platform()}, by "
        f"`./dev bench` (`benchmarks/run_all.py`) in {seconds / 60:.0f} min. {scope}, one "
        "after another, each interleaving its own comparisons (this machine is shared and "
        "noisy: read the ratios more than the absolute numbers). The peers were set up "
        "outside the repository (`benchmarks/peers.py`); every peer number below was "
        "measured in this run, on the same inputs as ours.",
        "",
        *versions(peers, commit),
        "",
        f"**Targets: {met} met, {len(missed)} not met.**"
        + (
            " Not met: " + "; ".join(f"{r['table']}: {r['row']}" for r in missed) + "."
            if missed
            else ""
        ),
        "",
    ]
    failed = [o for o in outcomes.values() if o.error]
    if failed:
        lines += ["**Benchmarks that did not report:**", ""]
        lines += [f"- `bench_{o.name}.py`: {o.error}" for o in failed]
        lines.append("")
    for family, names in FAMILIES:
        ran = [outcomes[n] for n in names if n in outcomes]
        if not ran:
            continue
        lines += [f"## {family}", ""]
        for outcome in ran:
            if outcome.error:
                lines += [f"`bench_{outcome.name}.py` did not report: {outcome.error}.", ""]
            titles = list(dict.fromkeys(r["table"] for r in outcome.rows))
            for title in titles:
                lines += table(title, [r for r in outcome.rows if r["table"] == title], peers)
            if outcome.notes:
                lines += [*(f"- {n}" for n in outcome.notes), ""]
            if outcome.name in ABSENT:
                why = ABSENT[outcome.name]
                said = why.replace("every peer: ", "No peer columns: ", 1)
                lines += [said + "." if said != why else f"No column for {why}.", ""]
            if outcome.details:
                link = os.path.relpath(HERE / outcome.details, out.parent)
                lines += [
                    f"Details: [{outcome.details}]({link}) "
                    f"(`bench_{outcome.name}.py`, {outcome.seconds:.0f} s).",
                    "",
                ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="./dev bench",
        description="Every benchmark in one run, beside the peers, into benchmarks/RESULTS.md.",
        epilog=f"Benchmarks, in the order they run: {', '.join(ORDER)}.",
    )
    parser.add_argument("--only", help="some of them, comma-separated (e.g. view,ask)")
    parser.add_argument("--timeout", type=float, default=1800, help="per benchmark, seconds")
    parser.add_argument("--out", type=Path, help="default: RESULTS.md; with --only, build/")
    args = parser.parse_args()
    names = ORDER
    if args.only is not None:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in ORDER]
        if unknown or not names:
            what = f"no benchmark named {', '.join(unknown)}" if unknown else "give names"
            print(f"--only: {what} (known: {', '.join(ORDER)})", file=sys.stderr)
            return 2
    # RESULTS.md always holds a whole run; a partial one goes beside the logs.
    out = (args.out or (ROOT / "build" / "RESULTS-partial.md" if args.only else RESULTS)).resolve()
    commit = describe()  # before the benchmarks rewrite their RESULTS-<name>.md
    started = time.monotonic()
    print("== setting up the peers (outside the repository)", flush=True)
    peers = setup_all()
    for peer in peers.values():
        print(f"   {peer.name}: {peer.version if peer.ok else 'NOT installed: ' + peer.error}")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(environment(peers), PYTHONUNBUFFERED="1")  # logs that can be followed
    outcomes = {name: run_one(name, env, args.timeout) for name in ORDER if name in names}
    text = write(outcomes, peers, time.monotonic() - started, commit=commit, out=out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    rows = [r for o in outcomes.values() for r in o.rows]
    missed = [f"{r['table']}: {r['row']}" for r in rows if r["met"] is False]
    met = sum(r["met"] is True for r in rows)
    print(f"== wrote {out}: targets {met} met, {len(missed)} not met")
    for line in missed:
        print(f"   NOT met: {line}")
    failed = [o.name for o in outcomes.values() if o.error]
    if failed:
        print(f"== did not report: {', '.join(failed)} (see {LOGS.relative_to(ROOT)}/)")
    return 1 if failed or missed or any(not p.ok for p in peers.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
