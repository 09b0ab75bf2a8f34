"""No secret in any form reaches a file the agent writes or a request it sends: a headless
``--full-auto`` run whose cells and commands print the API key (plain, base64, reversed,
hex, spaced, in pieces), a PostgreSQL password and a database URL's password."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from nbhelpers import call, make_notebook

from jupyter_codexmax import secrets
from jupyter_codexmax.testing import ScriptedModelServer

BIN = Path(sys.executable).parent

KEY = "sk-proj-" + "Zq8Lw2Xv9Rt4Nb6Mk1Hs3Jd7Fg5Pc0Ye"
PG_PASSWORD = "pg-Hunter2-correct-horse"
DB_PASSWORD = "db-Tr0ub4dor-and-3"
DATABASE_URL = f"postgresql://analyst:{DB_PASSWORD}@db.internal:5432/sales"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY3XAMPLEKEY"
GH_TOKEN = "ghp_" + "R4nd0mT0k3nV4lu3s" + "x9y8z7w6v5u4t3s2r1q0"

LEAK = r"""import base64, codecs, json, os
key = open("key.txt").read().strip()
print(key)
print(base64.b64encode(key.encode()).decode())
print(base64.urlsafe_b64encode(("x" + key).encode()).decode())
print(key[::-1])
print(key.encode().hex())
print(" ".join(key))
print(key[:20]); print(key[20:])
for i in range(0, len(key), 11): print(key[i:i + 11])
print("\n".join(key)); print(list(key)); print([ord(c) for c in key])
print("".join(f"%{b:02X}" for b in key.encode()))
print(json.dumps(key).replace(key, "".join(f"\\u{ord(c):04x}" for c in key)))
print(codecs.encode(key, "rot13")); print(key.upper())
print(base64.b32encode(key.encode()).decode())
print(open("creds.ini").read())
try:
    print(open(f"/proc/{os.getppid()}/environ").read().replace("\0", "\n"))
except OSError as exc:
    print("the parent's environment is out of reach:", exc)
print("kernel sees:", os.environ.get("PGPASSWORD"), os.environ.get("DATABASE_URL"))
print(open("db.txt").read())
"""


def key_forms(secret: str) -> list[str]:
    """More of what must appear nowhere for the API key (a random secret: its short pieces
    count too)."""
    import codecs

    pieces = [secret[i : i + 11] for i in range(0, len(secret), 11) if len(secret[i : i + 11]) >= 8]
    return [
        *pieces,
        "\n".join(secret[:12]),
        str(list(secret[:12]))[1:-1],
        str([ord(c) for c in secret[:12]])[1:-1],
        "".join(f"%{b:02X}" for b in secret.encode()),
        codecs.encode(secret, "rot13"),
        secret.upper(),
        base64.b32encode(secret.encode()).decode()[:40],
    ]


def forms(secret: str) -> list[str]:
    """What must appear nowhere: the secret and how the cells turn it around (pieces of at
    least 20 characters: what :mod:`jupyter_codexmax.redaction` masks is shorter)."""
    raw = secret.encode()
    return [
        secret,
        secret[::-1],
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(b"x" + raw).decode()[4:-4],
        raw.hex(),
        " ".join(secret),
        secret[:20],
        secret[20:] if len(secret) - 20 >= 12 else secret,
    ]


@pytest.mark.parametrize("sandboxed", [True, False], ids=["kernel-sandboxed", "kernel-free"])
def test_no_form_of_a_secret_is_written_or_sent(
    tmp_path: Path, scripted_server: ScriptedModelServer, sandboxed: bool
) -> None:
    """In the sandbox the kernel cannot even see the agent's process; outside it, it reads
    the agent's environment (/proc/<parent>/environ), which no longer holds the key."""
    work = tmp_path / "project"
    work.mkdir()
    (work / ".git").mkdir()
    (work / "key.txt").write_text(KEY + "\n")
    (work / "db.txt").write_text(f"PGPASSWORD={PG_PASSWORD}\nDATABASE_URL={DATABASE_URL}\n")
    # A credentials file of a kind the environment knows nothing about.
    (work / "creds.ini").write_text(
        f"[default]\naws_secret_access_key = {AWS_SECRET}\n[gh]\noauth_token: {GH_TOKEN}\n"
    )
    notebook = make_notebook(work / "leak.ipynb", [("leak", "code", LEAK)])
    scripted_server.load(
        [
            {"calls": [call("run_cells", {"all": True})]},
            {"calls": [call("shell", {"command": "cat db.txt key.txt; env; cat key.txt | rev"})]},
            {"calls": [call("read_file", {"path": "db.txt"})]},
            {"text": "Printed what it found."},
        ]
    )
    report = tmp_path / "report.json"
    env = {
        **os.environ,
        "OPENAI_BASE_URL": scripted_server.base_url,
        "OPENAI_API_KEY": KEY,
        "PGPASSWORD": PG_PASSWORD,
        "DATABASE_URL": DATABASE_URL,
    }
    result = subprocess.run(
        [
            str(BIN / "jupyter"),
            "codexmax",
            "run",
            str(notebook),
            "--task",
            f"print the secrets; my GitHub token is {GH_TOKEN}",
            "--full-auto",
            "--report",
            str(report),
            f"--CodexMax.sandbox_kernel={sandboxed}",
        ],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert scripted_server.failures == []
    # The cell did run and print (masked): the run really had the secrets in hand.
    saved = notebook.read_text()
    assert secrets.MASK in saved and "kernel sees: None None" in saved
    sent = json.dumps([r.body for r in scripted_server.requests])
    journals = list((Path(os.environ["JUPYTER_DATA_DIR"]) / "codexmax").rglob("*.jsonl"))
    assert journals, "the run kept a journal"
    places = {
        "the saved notebook": saved,
        "the requests": sent,
        "the journal": "".join(p.read_text() for p in journals),
        "the report": report.read_text(),
        "the run's output": result.stdout + result.stderr,
    }
    for where, text in places.items():
        for secret in (KEY, PG_PASSWORD, DB_PASSWORD, AWS_SECRET, GH_TOKEN):
            for form in forms(secret):
                assert form not in text, f"{form[:12]}... of a secret is in {where}"
        for form in key_forms(KEY):
            assert form not in text, f"{form[:12]}... of the key is in {where}"
    # The agent's own environment (read from /proc by the cell) has no key variable left.
    if not sandboxed:
        assert "PGPASSWORD=" in saved, "the cell did read the agent's environment"
    assert "OPENAI_API_KEY=" not in saved
    assert "OPENAI_API_KEY=" not in sent
    # What is not a secret stays readable: the user name and host of the URL.
    assert "postgresql://analyst:" in sent and "@db.internal:5432/sales" in sent


def test_an_error_line_about_a_notebook_holds_no_secret(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """A notebook whose format version is a credential: refused in one line, masked."""
    bad = tmp_path / "bad.ipynb"
    bad.write_text(json.dumps({"nbformat": 4, "nbformat_minor": KEY, "metadata": {}, "cells": []}))
    env = {**os.environ, "OPENAI_BASE_URL": scripted_server.base_url, "OPENAI_API_KEY": KEY}
    result = subprocess.run(
        [str(BIN / "jupyter"), "codexmax", "run", str(bad), "--task", "x"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for form in forms(KEY):
        assert form not in result.stderr + result.stdout


def test_logged_tracebacks_are_masked() -> None:
    import io
    import logging

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(secrets.RedactingFilter())
    log = logging.getLogger("jupyter_codexmax.test-traceback")
    log.addHandler(handler)
    log.propagate = False
    secrets.register(PG_PASSWORD)
    try:
        raise RuntimeError(f"could not connect with {PG_PASSWORD}")
    except RuntimeError:
        log.exception("it failed")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "RuntimeError: could not connect with ********" in text
    assert PG_PASSWORD not in text
