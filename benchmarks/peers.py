"""Set up the peers the benchmarks compare us with, in scratch environments outside the repo.

- the Codex CLI: ``npm install @openai/codex@<newest>`` into ``<home>/codex``;
- Jupyter AI's magics, a virtual environment each, made with uv from this Python, with
  ``ipykernel`` (:data:`JAI_SPECS`): ``<home>/jai2``, the newest ``jupyter-ai-magics`` 2.x
  (with ``langchain-openai``, which ``%%ai`` needs for an OpenAI-compatible server);
  ``<home>/jai3``, the newest ``jupyter-ai-magics`` 3.x, a pre-release (the line has no
  final release: Jupyter AI 3 moved its magics to another package), with the
  ``jupyter-ai`` of the same version it needs; ``<home>/jai``, the magics the current
  Jupyter AI installs (``jupyter-ai[magics]``: ``jupyter-ai-magic-commands``).

``<home>`` is ``$CODEXMAX_BENCH_PEERS``, else ``~/.cache/jupyter-codexmax/bench-peers``; it is
refused when inside the repository. Installs are kept between runs and brought to the
newest version each run (npm and uv say quickly when nothing changed). A peer that cannot be
installed is returned with the reason, for RESULTS.md to say so.

    .venv/bin/python benchmarks/peers.py     # sets them up; prints what it found and the
                                             # variables that hand them to a benchmark
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from results import PEERS

ROOT = Path(__file__).resolve().parents[1]

#: Jupyter AI's magics: what each environment holds (beside ``ipykernel``), the package whose
#: version names it, and whether its newest version is a pre-release to be pinned first.
JAI_SPECS: dict[str, tuple[list[str], str, bool]] = {
    # 2.x; %%ai against an OpenAI-compatible server needs langchain-openai (of langchain 0.3)
    "jai2": (["jupyter-ai-magics>=2,<3", "langchain-openai<1"], "jupyter-ai-magics", False),
    # 3.x of jupyter-ai-magics is pre-releases only, and loads only beside jupyter-ai of the
    # same version (its model list lives there)
    "jai3": (["jupyter-ai-magics>=3.0.0a0,<4"], "jupyter-ai-magics", True),
    # the current Jupyter AI's magics (what jupyter-ai[magics] installs)
    "jai": (["jupyter-ai-magic-commands"], "jupyter-ai-magic-commands", False),
}
CODEX_PACKAGE = "@openai/codex"


@dataclass
class Peer:
    """One peer as set up: where it is and its version, or why it is missing."""

    key: str
    name: str
    version: str = ""
    #: The ``codex`` binary, or the Python of the Jupyter AI environment.
    path: str = ""
    error: str = ""
    #: Set when the newest version could not be had and the one installed was kept.
    warning: str = ""
    setup_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.path) and not self.error


def home() -> Path:
    chosen = os.environ.get("CODEXMAX_BENCH_PEERS") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        / "jupyter-codexmax"
        / "bench-peers"
    )
    base = Path(os.environ.get("CODEXMAX_BENCH_CALLER_DIR") or Path.cwd())
    path = (base / Path(chosen).expanduser()).resolve()
    if path == ROOT or ROOT in path.parents:
        raise SystemExit(
            f"CODEXMAX_BENCH_PEERS: {path} is inside the repository; the peers are set up "
            "outside it"
        )
    return path


def _run(command: list[str], *, timeout: float = 900, cwd: Path | None = None) -> str:
    """Run ``command``; its output, or an error naming the command and its last words."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"{Path(command[0]).name}: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(
            f"{Path(command[0]).name} {' '.join(command[1:3])} failed "
            f"({done.returncode}): {' / '.join(tail)}"
        )
    return done.stdout


def setup_codex(base: Path) -> Peer:
    peer = Peer("codex", PEERS["codex"])
    started = time.monotonic()
    try:
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm not found (the Codex CLI comes from the npm registry)")
        folder = base / "codex"
        folder.mkdir(parents=True, exist_ok=True)
        binary = folder / "node_modules" / ".bin" / "codex"
        installed = folder / "node_modules" / "@openai" / "codex" / "package.json"
        have = json.loads(installed.read_text())["version"] if installed.exists() else ""
        try:
            newest = _run([npm, "view", CODEX_PACKAGE, "version"], timeout=120).strip()
        except RuntimeError as exc:
            if not (have and binary.exists()):
                raise
            newest = have
            peer.warning = f"kept the installed {have}; the newest is unknown ({exc})"
        if have != newest or not binary.exists():
            _run(
                [npm, "install", "--no-audit", "--no-fund", "--loglevel=error",
                 "--prefix", str(folder), f"{CODEX_PACKAGE}@{newest}"],
            )  # fmt: skip
        peer.version = _run([str(binary), "--version"], timeout=60).strip()
        peer.path = str(binary)
    except RuntimeError as exc:
        peer.error = str(exc)
    peer.setup_seconds = time.monotonic() - started
    return peer


def _uv() -> str:
    uv = Path(sys.executable).parent / "uv"
    found = str(uv) if uv.exists() else shutil.which("uv")
    if not found:
        raise RuntimeError("uv not found (run ./dev bench, which installs it into .venv)")
    return found


def _version(python: Path, dist: str) -> str:
    return _run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
        timeout=60,
    ).strip()


def setup_jai(base: Path, key: str) -> Peer:
    requirements, dist, pinned = JAI_SPECS[key]
    peer = Peer(key, PEERS[key])
    started = time.monotonic()
    try:
        uv = _uv()
        venv = base / key
        python = venv / "bin" / "python"
        if not python.exists():
            _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)])
        install = [uv, "pip", "install", "--quiet", "--upgrade", "--python", str(python)]
        failed: RuntimeError | None = None
        try:
            if pinned:
                # the newest pre-release alone first, then it and its jupyter-ai, pinned
                _run([*install, "--prerelease=allow", "--no-deps", *requirements])
                newest = _version(python, dist)
                requirements = [f"{dist}=={newest}", f"jupyter-ai=={newest}"]
            _run([*install, *requirements, "ipykernel"])
        except RuntimeError as exc:
            failed = exc
        try:
            peer.version = f"{dist} {_version(python, dist)}"
        except RuntimeError:
            raise failed or RuntimeError(f"{venv}: {dist} is not installed") from None
        if failed is not None:
            peer.warning = f"kept the version installed before; could not upgrade ({failed})"
        peer.path = str(python)
    except RuntimeError as exc:
        peer.error = str(exc)
    peer.setup_seconds = time.monotonic() - started
    return peer


def setup_all() -> dict[str, Peer]:
    """Every peer, set up (or with the reason it could not be)."""
    base = home()
    base.mkdir(parents=True, exist_ok=True)
    return {
        "codex": setup_codex(base),
        **{key: setup_jai(base, key) for key in JAI_SPECS},
    }


def environment(peers: dict[str, Peer]) -> dict[str, str]:
    """The variables that hand the peers to the benchmarks (see ``results.py``)."""
    env = {}
    for key, peer in peers.items():
        if not peer.ok:
            continue
        if key == "codex":
            env["CODEX_BIN"] = peer.path
        else:
            env[f"CODEXMAX_BENCH_{key.upper()}_PYTHON"] = peer.path
    return env


def main() -> int:
    peers = setup_all()
    for peer in peers.values():
        state = f"{peer.version} ({peer.path})" if peer.ok else f"NOT installed: {peer.error}"
        print(f"{peer.name}: {state}, {peer.setup_seconds:.1f} s")
    for name, value in environment(peers).items():
        print(f"export {name}={value}")
    return 0 if all(p.ok for p in peers.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
