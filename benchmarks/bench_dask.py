"""Benchmark: ``run --executor dask`` against ``--executor local`` on 20 small notebooks.

Target (issue 14): the Dask executor at most 1.5x the local wall time, in one run on this
machine; and the wall time with 1 and with 2 Dask workers. Each notebook has two cells; the
scripted model server plays the model (run every cell in the notebook's real kernel, then
answer). Measured: the whole ``jupyter codexmax run`` process, from start to exit:

- ``local --jobs 2``;
- ``dask --jobs 2`` (no --scheduler: a LocalCluster of 2 worker processes, started and
  closed inside the run, so its start is counted);
- ``dask --scheduler`` with 1 and with 2 ``dask worker`` processes (one thread each)
  started beforehand (the cluster's start is not counted: it is there already).

Configurations are interleaved round by round, so the shared machine's load hits all alike.

    .venv/bin/python benchmarks/bench_dask.py [--rounds N] [--notebooks 20]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from results import Row, report  # noqa: E402

from jupyter_codexmax.testing import ScriptedModelServer  # noqa: E402

BIN = Path(sys.executable).parent
RESULTS = ROOT / "benchmarks" / "RESULTS-dask.md"
TARGET = 1.5


def make_notebooks(folder: Path, count: int) -> list[Path]:
    import nbformat
    from nbformat import v4

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        nb = v4.new_notebook()
        nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3"}}
        nb.cells = [v4.new_code_cell(f"x = {n}"), v4.new_code_cell("print(x * 2)")]
        path = folder / f"nb{n:02d}.ipynb"
        path.write_text(nbformat.writes(nb))
        paths.append(path)
    return paths


SCRIPT = {
    "steps": [
        {"calls": [{"name": "run_cells", "arguments": {"all": True}, "id": "c1"}]},
        {"text": "Both cells run."},
    ],
    "after_last": "error",
}


def script(count: int) -> dict[str, object]:
    return {
        "conversations": [
            {"match": f"nb{n:02d}.ipynb", "steps": SCRIPT["steps"]} for n in range(count)
        ]
    }


@contextlib.contextmanager
def cluster(workers: int, folder: Path, env: dict[str, str]) -> Iterator[str]:
    procs: list[subprocess.Popen[bytes]] = []
    info = folder / f"scheduler-{workers}.json"
    try:
        log = (folder / f"s{workers}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [
                    *(str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0"),
                    *("--no-dashboard", "--scheduler-file", str(info)),
                ],
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=True,
            )
        )
        while not info.exists() or not info.read_text().strip():
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        logs = []
        for n in range(workers):
            wlog = folder / f"w{workers}-{n}.log"
            logs.append(wlog)
            out = wlog.open("wb")
            procs.append(
                subprocess.Popen(
                    [
                        *(str(BIN / "dask"), "worker", address, "--no-nanny", "--nthreads", "1"),
                        *("--host", "127.0.0.1", "--no-dashboard"),
                    ],
                    stdout=out,
                    stderr=out,
                    env=env,
                    start_new_session=True,
                )
            )
        for wlog in logs:
            while not re.search(r"Start worker at", wlog.read_text()):
                time.sleep(0.1)
        yield address
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def timed_run(paths: list[Path], args: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    result = subprocess.run(
        [
            *(str(BIN / "jupyter-codexmax"), "run", *map(str, paths), "--task", "run it"),
            *("--full-auto", "--quiet", "--new-session", *args),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    took = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"run {args} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--notebooks", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS)
    opts = parser.parse_args()
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, ScriptedModelServer([]) as server:
        folder = Path(tmp)
        env = {
            **os.environ,
            "HOME": str(folder),
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "sk-bench-0123456789",
            "CODEXMAX_TOKENIZER": "estimate",
            "JUPYTER_PLATFORM_DIRS": "1",
        }
        with cluster(1, folder, env) as one, cluster(2, folder, env) as two:
            configs = {
                "local --jobs 2": ["--executor", "local", "--jobs", "2"],
                "dask --jobs 2 (LocalCluster)": ["--executor", "dask", "--jobs", "2"],
                "dask --scheduler, 1 worker": ["--scheduler", one],
                "dask --scheduler, 2 workers": ["--scheduler", two],
            }
            for r in range(opts.rounds):
                for name, args in configs.items():
                    where = folder / f"round{r}-{len(times)}-{abs(hash(name))}"
                    paths = make_notebooks(where, opts.notebooks)
                    server.load(script(opts.notebooks))
                    took = timed_run(paths, args, env)
                    if server.failures:
                        raise SystemExit(f"script failures: {server.failures[:3]}")
                    times.setdefault(name, []).append(took)
                    print(f"round {r + 1}: {name}: {took:.1f} s", flush=True)
    med = {name: statistics.median(v) for name, v in times.items()}
    ratio = med["dask --jobs 2 (LocalCluster)"] / med["local --jobs 2"]
    ratio_ext = med["dask --scheduler, 2 workers"] / med["local --jobs 2"]
    scaling = med["dask --scheduler, 1 worker"] / med["dask --scheduler, 2 workers"]
    lines = [
        "# Benchmark: the Dask executor against the local one (issue 14)",
        "",
        f"{datetime.date.today()}, {platform.python_version()}, {os.cpu_count()} cores "
        f"(shared with other work), {opts.notebooks} notebooks of two cells, each run in its "
        f"own real kernel, the scripted model (2 requests per notebook), {opts.rounds} "
        "rounds, configurations interleaved. Wall time of the whole `jupyter codexmax run` "
        "process (`benchmarks/bench_dask.py`).",
        "",
        "| configuration | median wall time | runs |",
        "| --- | ---: | --- |",
        *(
            f"| {name} | {med[name]:.1f} s | {', '.join(f'{t:.1f}' for t in v)} |"
            for name, v in times.items()
        ),
        "",
        f"- Dask (LocalCluster, its start included) / local: **{ratio:.2f}x** "
        f"(target at most {TARGET}x: {'met' if ratio <= TARGET else 'NOT met'}).",
        f"- Dask (a running cluster of 2 workers) / local: **{ratio_ext:.2f}x**.",
        f"- 1 worker / 2 workers: **{scaling:.2f}x** faster with 2 "
        "(on 2 shared cores: each notebook's kernel and agent compete for the same cores).",
        "",
    ]
    opts.out.write_text("\n".join(lines))
    print("\n".join(lines))
    table = f"scale-out: {opts.notebooks} notebooks, the dask executor against local"
    report(
        [
            *(Row(table, name, "s", med[name]) for name in times),
            Row(table, "dask (LocalCluster) / local", "x", ratio,
                target=f"≤ {TARGET}x (issue 14)", met=ratio <= TARGET),
            Row(table, "1 worker / 2 workers (speed-up)", "x", scaling),
        ],
        details=opts.out.name,
    )  # fmt: skip


if __name__ == "__main__":
    main()
