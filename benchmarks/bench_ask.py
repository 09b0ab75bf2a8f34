"""Benchmark: ``jupyter codexmax ask`` as a whole process against the scripted server.

Target (issue 2): median at most 0.40 s. For comparison, in the same run and against the
same server: the Codex CLI's ``codex exec`` for the same one-shot request (when a ``codex``
binary is given with ``--codex`` or ``CODEX_BIN``), and a bare ``python -c pass``.
The commands are interleaved run by run, so load on this shared machine hits all alike;
compare the ratios more than the absolute numbers.

Child processes run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` removed), as
after any normal ``pip install``; warm-up runs fill the caches first.

    .venv/bin/python benchmarks/bench_ask.py            # writes benchmarks/RESULTS-ask.md
    CODEX_BIN=/path/to/codex .venv/bin/python benchmarks/bench_ask.py --runs 30

(``npm install @openai/codex`` in a scratch folder gives a ``codex`` binary; the benchmark
points it at the scripted server with a temporary ``CODEX_HOME``, model
``results.CODEX_MODEL``.) Under ``./dev bench`` it reports the median and p90 of both
commands (peer ``codex``).
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from results import Row, codex_version, machine, report, scripted_env  # noqa: E402

from jupyter_codexmax.testing import ScriptedModelServer  # noqa: E402

SCRIPT = ROOT / "examples" / "scripts" / "hello.json"
RESULTS = ROOT / "benchmarks" / "RESULTS-ask.md"
TARGET = 0.40


def timed(command: list[str], env: dict[str, str], expect: str) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0 or expect not in result.stdout:
        raise SystemExit(
            f"benchmark command failed: {' '.join(command)}\n{result.stdout}\n{result.stderr}"
        )
    return elapsed


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median": statistics.median(ordered),
        "p10": ordered[max(0, int(len(ordered) * 0.1) - 1)],
        "p90": ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))],
        "min": ordered[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--codex", default=os.environ.get("CODEX_BIN", ""))
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS-ask.md")
    args = parser.parse_args()

    bin_dir = Path(sys.executable).parent
    jupyter = str(bin_dir / "jupyter")
    expect = "scripted model server"
    with ScriptedModelServer(str(SCRIPT)) as server, tempfile.TemporaryDirectory() as tmp:
        env = scripted_env(server.base_url, Path(tmp))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["CODEXMAX_TOKENIZER"] = "estimate"
        commands: dict[str, tuple[list[str], dict[str, str], str]] = {
            "jupyter codexmax ask": ([jupyter, "codexmax", "ask", "hi"], env, expect),
            "jupyter-codexmax ask": ([str(bin_dir / "jupyter-codexmax"), "ask", "hi"], env, expect),
            "python -c pass": ([sys.executable, "-c", "pass"], env, ""),
        }
        codex = args.codex and shutil.which(args.codex)
        if codex:
            commands["codex exec"] = ([codex, "exec", "--skip-git-repo-check", "hi"], env, expect)
        for command, command_env, needle in commands.values():
            for _ in range(args.warmup):
                timed(command, command_env, needle)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, (command, command_env, needle) in commands.items():
                times[name].append(timed(command, command_env, needle))

    stats = {name: summary(values) for name, values in times.items()}
    ours = stats["jupyter codexmax ask"]["median"]
    lines = [
        "# Benchmark: `jupyter codexmax ask` (one-shot request, whole process)",
        "",
        f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on "
        f"{machine()}, {args.runs} interleaved runs after {args.warmup} "
        "warm-up runs each, against the scripted model server on loopback "
        f"(`{SCRIPT.relative_to(ROOT)}`). Produced by `benchmarks/bench_ask.py`.",
        "",
        "| command | median s | p10 s | p90 s | min s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, s in stats.items():
        lines.append(
            f"| `{name}` | {s['median']:.3f} | {s['p10']:.3f} | {s['p90']:.3f} | {s['min']:.3f} |"
        )
    lines += [
        "",
        f"Target: median at most {TARGET:.2f} s: "
        f"**{'met' if ours <= TARGET else 'NOT met'}** ({ours:.3f} s).",
    ]
    version = codex_version(codex or "")
    if "codex exec" in stats:
        ratio = ours / stats["codex exec"]["median"]
        lines.append(f"Ratio to `codex exec` ({version}) in the same run: {ratio:.2f}.")
    else:
        lines.append("`codex exec` was not measured in this run (no `--codex` binary given).")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        RESULTS.write_text(text)
    peer = stats.get("codex exec")
    table = "ask: one-shot request, whole process (s)"
    note = f"`codex exec` ({version}) against the same scripted server, interleaved"
    report(
        [
            Row(
                table,
                "median",
                "s",
                ours,
                {"codex": peer["median"] if peer else None},
                f"≤ {TARGET:.2f} s (issue 2)",
                ours <= TARGET,
                note,
            ),
            Row(
                table,
                "p90",
                "s",
                stats["jupyter codexmax ask"]["p90"],
                {"codex": peer["p90"] if peer else None},
            ),
        ],
        details=RESULTS.name,
    )
    return 0 if ours <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
