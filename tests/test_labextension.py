"""The JupyterLab extension ships prebuilt in the wheel: a wheel built where there is no
node installs in a fresh environment, and JupyterLab lists the extension as enabled."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILT = ROOT / "jupyter_codexmax" / "labextension"

pytestmark = pytest.mark.slow


def _uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(found).exists():
        pytest.skip("uv is not installed (./dev installs it into .venv)")
    return found


def test_a_wheel_built_without_node_installs_and_lists_the_extension(tmp_path: Path) -> None:
    if not (BUILT / "package.json").is_file():
        pytest.skip("the JupyterLab extension is not built: `./dev build` builds it with npm")
    uv = _uv()
    # node, npm and jlpm that fail loudly: the build must not need them.
    fake = tmp_path / "no-node"
    fake.mkdir()
    for name in ("node", "npm", "npx", "jlpm", "yarn"):
        (fake / name).write_text("#!/bin/sh\necho no node here >&2\nexit 97\n")
        (fake / name).chmod(0o755)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTER", "VIRTUAL_ENV", "PYTHONPATH", "SKIP_JUPYTER"))
    }
    env["PATH"] = f"{fake}{os.pathsep}{env.get('PATH', '')}"
    dist = tmp_path / "dist"
    built = subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(dist), str(ROOT)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert "no node here" not in built.stderr
    (wheel,) = dist.glob("jupyter_codexmax-*.whl")
    venv = tmp_path / "venv"
    for command in (
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel)],
    ):
        done = subprocess.run(
            command, check=False, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-3000:]
    listed = subprocess.run(
        [str(venv / "bin" / "jupyter"), "labextension", "list"],
        check=False,
        env={**env, "JUPYTER_PLATFORM_DIRS": "1", "HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)
    assert re.search(r"jupyter-codexmax v\d+\.\d+\.\d+ enabled OK", text), text
    installed = venv / "share" / "jupyter" / "labextensions" / "jupyter-codexmax"
    assert (installed / "package.json").is_file() and (installed / "install.json").is_file()
    assert not (installed / "node_modules").exists()
