"""Get tiktoken's ``o200k_base.tiktoken`` on a machine that cannot download it.

tiktoken fetches the file from openaipublic.blob.core.windows.net, which these machines
cannot reach; the npm registry can be reached, and the ``js-tiktoken`` package carries the
same ranks in its own format. This installs it in ``benchmarks/.work`` (not committed),
writes the ranks in tiktoken's format, and checks the result is the official file by its
SHA-256 (the hash tiktoken itself checks: ``tiktoken_ext/openai_public.py``). Benchmarks
then count real tokens by pointing ``CodexMax.tiktoken_file`` at it.

    .venv/bin/python benchmarks/o200k.py      # prints the file's path
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

WORK = Path(__file__).resolve().parent / ".work"
TARGET = WORK / "o200k_base.tiktoken"
OFFICIAL_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
JS_TIKTOKEN = "js-tiktoken@1.0.21"

CONVERT = """
const m = require("js-tiktoken/ranks/o200k_base");
const ranks = (m.default || m).bpe_ranks;
const out = [];
for (const line of ranks.split("\\n")) {
  if (!line) continue;
  const [, offset, ...tokens] = line.split(" ");
  const start = parseInt(offset, 36);
  tokens.forEach((token, i) => out.push(token + " " + (start + i)));
}
require("fs").writeFileSync(process.argv[1], out.join("\\n") + "\\n");
"""


def ensure() -> Path | None:
    """The official o200k_base.tiktoken, or None (with the reason on stderr)."""
    if TARGET.exists() and hashlib.sha256(TARGET.read_bytes()).hexdigest() == OFFICIAL_SHA256:
        return TARGET
    if not shutil.which("npm") or not shutil.which("node"):
        print("o200k: node and npm are needed to fetch js-tiktoken", file=sys.stderr)
        return None
    WORK.mkdir(exist_ok=True)
    install = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(WORK), JS_TIKTOKEN],
        capture_output=True,
        text=True,
        check=False,
    )
    if install.returncode != 0:
        print(f"o200k: npm install failed: {install.stderr[-500:]}", file=sys.stderr)
        return None
    subprocess.run(["node", "-e", CONVERT, str(TARGET)], cwd=WORK, check=True)
    digest = hashlib.sha256(TARGET.read_bytes()).hexdigest()
    if digest != OFFICIAL_SHA256:
        print(f"o200k: the converted file is not the official one ({digest})", file=sys.stderr)
        TARGET.unlink()
        return None
    return TARGET


if __name__ == "__main__":
    path = ensure()
    if path is None:
        raise SystemExit(1)
    print(path)
