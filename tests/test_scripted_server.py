"""The scripted model server: scripts, expectations, recording, control, command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from jupyter_codexmax.testing import ScriptedModelServer, ScriptError, load_script

ROOT = Path(__file__).resolve().parents[1]


def post(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(), exc.headers


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ({"steps": [{"txt": "typo"}]}, "step 1: unknown key(s) ['txt']"),
        ({"steps": [{"fault": "explode"}]}, "unknown fault 'explode'"),
        ({"steps": [{"calls": [{"arguments": {}}]}]}, 'each call needs a "name"'),
        ({"steps": [{"text": "a", "output": []}]}, 'either "output"'),
        ({"steps": [{"fault": "http", "status": 999}]}, "HTTP status code"),
        ({"steps": [{"text": "x", "usage": {"input": 3}}]}, "unknown key(s) ['input']"),
        ({"steps": [], "extra": 1}, "unknown key(s) ['extra']"),
        ("{not json", "is not valid JSON"),
        ("/no/such/script.json", "cannot read script"),
    ],
)
def test_script_mistakes_are_named(script: Any, message: str) -> None:
    with pytest.raises(ScriptError) as info:
        load_script(script)
    assert message in str(info.value)


def test_repeat_and_after_last() -> None:
    script = load_script({"steps": [{"text": "a", "repeat": 2}, "b"], "after_last": "repeat"})
    assert script.remaining == 3
    texts = [script.next_step().text for _ in range(5)]  # type: ignore[union-attr]
    assert texts == ["a", "a", "b", "b", "b"]


def test_expectations_fail_loudly(scripted_server: ScriptedModelServer) -> None:
    scripted_server.load([{"text": "hi", "expect": {"model": "gpt-5", "contains": "plot"}}])
    status, body, _ = post(
        scripted_server.base_url + "/responses",
        {"model": "gpt-4o", "input": "make a table", "stream": True},
    )
    assert status == 400
    assert "expected model 'gpt-5'" in json.loads(body)["error"]["message"]
    assert scripted_server.failures


def test_it_presents_itself_as_scripted(scripted_server: ScriptedModelServer) -> None:
    scripted_server.load(["hello"])
    status, body, headers = post(
        scripted_server.base_url + "/responses",
        {"model": "gpt-5.1-codex-max", "input": "hi", "stream": False},
    )
    assert status == 200
    assert headers["x-codexmax-scripted"] == "1"
    assert headers["Server"].startswith("codexmax-scripted/")
    assert json.loads(body)["model"] == "scripted:gpt-5.1-codex-max"
    with urllib.request.urlopen(scripted_server.base_url + "/models") as response:
        models = json.loads(response.read())
    assert "not a model" in models["data"][0]["owned_by"]


def test_records_requests_with_credentials_masked(scripted_server: ScriptedModelServer) -> None:
    scripted_server.load(["hello"])
    post(
        scripted_server.base_url + "/chat/completions?x=1",
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        {"Authorization": "Bearer sk-real-looking-key-123456", "api-key": "k-123456789"},
    )
    (record,) = scripted_server.requests
    assert record.endpoint == "chat"
    assert record.query == {"x": ["1"]}
    assert record.body["messages"][0]["content"] == "hi"
    assert record.headers["authorization"] == "********"
    assert record.headers["api-key"] == "********"
    with urllib.request.urlopen(scripted_server.url + "/_scripted/requests") as response:
        recorded = json.loads(response.read())
    assert "sk-real-looking-key" not in json.dumps(recorded)
    assert recorded["requests"][0]["endpoint"] == "chat"


def test_control_endpoint_loads_scripts(scripted_server: ScriptedModelServer) -> None:
    status, body, _ = post(scripted_server.url + "/_scripted/script", {"steps": ["a", "b"]})
    assert status == 200
    assert json.loads(body) == {"loaded": True, "steps": 2}
    status, body, _ = post(scripted_server.url + "/_scripted/script", {"steps": [{"bad": 1}]})
    assert status == 400
    assert "unknown key" in json.loads(body)["error"]["message"]


def test_unknown_endpoint_and_bad_json(scripted_server: ScriptedModelServer) -> None:
    status, _body, _ = post(scripted_server.base_url + "/embeddings", {"input": "x"})
    assert status == 404
    request = urllib.request.Request(
        scripted_server.base_url + "/responses", data=b"{nope", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 400
    info.value.close()


def test_command_line_server(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"steps": ["from the command line"]}))
    url_file = tmp_path / "url"
    exe = Path(sys.executable).parent / "jupyter-codexmax"
    proc = subprocess.Popen(
        [str(exe), "scripted-server", str(script), "--url-file", str(url_file), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        for _ in range(200):
            if url_file.exists():
                break
            time.sleep(0.05)
        base = url_file.read_text().strip()
        status, body, _ = post(base + "/responses", {"model": "m", "input": "hi", "stream": False})
        assert status == 200
        assert json.loads(body)["output"][0]["content"][0]["text"] == "from the command line"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "not a model" in out
    assert not url_file.exists()


def test_command_line_server_bad_script(tmp_path: Path) -> None:
    script = tmp_path / "bad.json"
    script.write_text('{"steps": [{"txt": 1}]}')
    exe = Path(sys.executable).parent / "jupyter-codexmax"
    result = subprocess.run(
        [str(exe), "scripted-server", str(script)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown key(s) ['txt']" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_example_scripts_load() -> None:
    for path in (ROOT / "examples" / "scripts").glob("*.json"):
        assert load_script(str(path)).steps, path
