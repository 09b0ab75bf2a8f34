"""``jupyter codexmax`` as a user runs it: a real process against the scripted server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupyter_codexmax.testing import ScriptedModelServer

BIN = Path(sys.executable).parent
ANSWER = "Hello from the scripted server, streamed in pieces."
KEY = "sk-cli-test-key-abcdefghijklmnop"


def run(
    args: list[str],
    server: ScriptedModelServer | None = None,
    *,
    key: str | None = KEY,
    stdin: str | None = None,
    extra_env: dict[str, str] | None = None,
    launcher: str = "jupyter-codexmax",
) -> subprocess.CompletedProcess[str]:
    env = os.environ.copy()
    if server is not None:
        env["OPENAI_BASE_URL"] = server.base_url
    if key is not None:
        env["OPENAI_API_KEY"] = key
    env.update(extra_env or {})
    command = [str(BIN / "jupyter"), "codexmax"] if launcher == "jupyter" else [str(BIN / launcher)]
    return subprocess.run(
        command + args,
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=60,
        check=False,
    )


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], code: int, *needles: str
) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("provider", ["responses", "chat"])
def test_ask_streams_the_scripted_answer(
    provider: str, scripted_server: ScriptedModelServer
) -> None:
    scripted_server.load([{"text": ANSWER, "reasoning": "Greet them.", "chunk": 7}])
    result = run(
        ["ask", "--provider", provider, "Say hello"], scripted_server, key="x", launcher="jupyter"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ANSWER + "\n"
    (request,) = scripted_server.requests
    assert request.endpoint == ("responses" if provider == "responses" else "chat")
    body = request.body
    text = str(body.get("input") or body.get("messages"))
    assert "Say hello" in text


def test_ask_output_arrives_while_the_model_is_still_writing(
    scripted_server: ScriptedModelServer,
) -> None:
    scripted_server.load([{"text": "one two three four five six", "chunk": 4, "delay": 0.25}])
    env = {**os.environ, "OPENAI_BASE_URL": scripted_server.base_url, "OPENAI_API_KEY": KEY}
    with subprocess.Popen(
        [str(BIN / "jupyter-codexmax"), "ask", "count"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as proc:
        assert proc.stdout is not None
        first = proc.stdout.read(3)
        first_at = time.monotonic()
        rest = proc.stdout.read()
        done_at = time.monotonic()
        proc.wait(timeout=30)
    assert (first + rest).decode() == "one two three four five six\n"
    assert done_at - first_at > 1.0, "the first words were printed before the last arrived"


def test_ask_reads_the_prompt_from_stdin_and_shows_reasoning_and_usage(
    scripted_server: ScriptedModelServer,
) -> None:
    scripted_server.load(
        [
            {
                "text": "ok",
                "reasoning": "Thinking it over.",
                "usage": {"input_tokens": 321, "output_tokens": 5},
            }
        ]
    )
    result = run(
        ["ask", "-", "--reasoning", "--usage"], scripted_server, stdin="a question from a pipe\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"
    assert "Thinking it over." in result.stderr
    assert "321 in" in result.stderr
    assert "a question from a pipe" in str(scripted_server.requests[0].body["input"])


def test_ask_flags_reach_the_request(scripted_server: ScriptedModelServer) -> None:
    scripted_server.load(["fine"])
    result = run(
        ["ask", "--model", "gpt-5", "--effort", "minimal", "--instructions", "Terse.", "hi"],
        scripted_server,
    )
    assert result.returncode == 0, result.stderr
    body = scripted_server.requests[0].body
    assert body["model"] == "gpt-5"
    assert body["reasoning"]["effort"] == "minimal"
    assert body["instructions"] == "Terse."


def test_insufficient_quota_exits_1_after_one_request(
    scripted_server: ScriptedModelServer,
) -> None:
    scripted_server.load(
        [
            {
                "fault": "http",
                "status": 429,
                "code": "insufficient_quota",
                "type": "insufficient_quota",
                "message": "You exceeded your current quota.",
            },
            "never sent",
        ]
    )
    result = run(["ask", "hi"], scripted_server)
    assert_one_line_error(result, 1, "quota", "insufficient_quota")
    assert len(scripted_server.requests) == 1


def test_in_stream_quota_error_exits_1(scripted_server: ScriptedModelServer) -> None:
    scripted_server.load(
        [
            {
                "fault": "stream_error",
                "after": 4,
                "code": "insufficient_quota",
                "message": "You exceeded your current quota.",
            }
        ]
    )
    result = run(["ask", "hi"], scripted_server)
    assert result.returncode == 1
    assert "quota" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(scripted_server.requests) == 1


def test_retries_are_reported_on_stderr(scripted_server: ScriptedModelServer) -> None:
    scripted_server.load(
        [{"fault": "http", "status": 503, "headers": {"retry-after": "0"}}, ANSWER]
    )
    result = run(["ask", "hi"], scripted_server)
    assert result.returncode == 0
    assert result.stdout == ANSWER + "\n"
    assert "retrying" in result.stderr
    assert "503" in result.stderr
    # Once, not once by the answer's stream and again by the log.
    lines = [ln for ln in result.stderr.splitlines() if "retry" in ln.lower()]
    assert len(lines) == 1, result.stderr


def test_missing_key_names_openai_api_key_and_exits_2() -> None:
    result = run(["ask", "hi"], key=None)
    assert_one_line_error(result, 2, "OPENAI_API_KEY")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ask", "--effort", "huge", "hi"], "CodexMax.reasoning_effort"),
        (["ask", "--effort", "minimal", "hi"], "does not accept reasoning effort 'minimal'"),
        (["ask", "--provider", "anthropic", "hi"], "CodexMax.provider"),
        (["ask", "--base-url", "localhost:8000", "hi"], "not an http(s) URL"),
        (["ask"], "no question"),
        ([], "say what to do"),
    ],
)
def test_usage_mistakes_exit_2_with_one_line(
    args: list[str], needle: str, scripted_server: ScriptedModelServer
) -> None:
    result = run(args, scripted_server, stdin="")
    assert_one_line_error(result, 2, needle)
    assert scripted_server.requests == []


def test_unknown_flag_exits_2(scripted_server: ScriptedModelServer) -> None:
    result = run(["ask", "--no-such-flag", "hi"], scripted_server)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_help_and_version_exit_0() -> None:
    assert run(["--help"]).returncode == 0
    assert run(["ask", "--help"]).returncode == 0
    version = run(["--version"])
    assert version.returncode == 0
    assert version.stdout.strip()


def test_the_key_never_appears_in_any_output(scripted_server: ScriptedModelServer) -> None:
    scripted_server.load(
        [
            {
                "fault": "http",
                "status": 401,
                "code": "invalid_api_key",
                "message": f"Incorrect API key provided: {KEY}.",
            }
        ]
    )
    results = [
        run(["ask", "--debug", "hi"], scripted_server),
        run(["doctor", "--debug"], scripted_server),
        run(["ask", "--show-config"], scripted_server),
    ]
    for result in results:
        assert KEY not in result.stdout + result.stderr
    assert results[0].returncode == 1
    assert "refused the credentials" in results[0].stderr


def test_doctor_reports_settings_and_checks(scripted_server: ScriptedModelServer) -> None:
    result = run(["doctor"], scripted_server)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "model: gpt-5.1-codex-max" in out
    assert "context window: 272,000 tokens" in out
    assert "API key: set (from OPENAI_API_KEY)" in out
    assert "the scripted model server (not a model)" in out
    assert "token counting" in out
    assert "kernels" in out
    assert "JupyterLab extension" in out
    assert KEY not in out


def test_doctor_without_key_exits_2() -> None:
    result = run(["doctor"], key=None)
    assert result.returncode == 2
    assert "OPENAI_API_KEY" in result.stdout


def test_doctor_with_unreachable_endpoint_exits_1() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run(["doctor"], extra_env={"OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1"})
    assert result.returncode == 1
    assert "could not connect" in result.stdout


def test_config_file_and_generate_config(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    config_dir = Path(os.environ["JUPYTER_CONFIG_DIR"])
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "jupyter_codexmax_config.py").write_text("c.CodexMax.model = 'gpt-5-mini'\n")
    scripted_server.load(["ok"])
    assert run(["ask", "hi"], scripted_server).returncode == 0
    assert scripted_server.requests[0].body["model"] == "gpt-5-mini"

    target = tmp_path / "generated.py"
    result = run(["ask", "--generate-config", f"--config={target}", "-y"])
    assert result.returncode == 0, result.stderr
    text = target.read_text()
    assert "c.CodexMax.reasoning_effort" in text
    assert "CODEXMAX_EFFORT" in text


def test_broken_config_file_exits_2(scripted_server: ScriptedModelServer) -> None:
    config_dir = Path(os.environ["JUPYTER_CONFIG_DIR"])
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "jupyter_codexmax_config.py").write_text("c.CodexMax.model = (\n")
    result = run(["ask", "hi"], scripted_server)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "jupyter_codexmax_config.py" in result.stderr


def test_a_closed_pipe_ends_quietly(scripted_server: ScriptedModelServer) -> None:
    scripted_server.load([{"text": "line\n" * 5000, "chunk": 500}])
    env = {**os.environ, "OPENAI_BASE_URL": scripted_server.base_url, "OPENAI_API_KEY": KEY}
    with subprocess.Popen(
        [str(BIN / "jupyter-codexmax"), "ask", "hi"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.read(10)
        proc.stdout.close()
        err = proc.stderr.read().decode()
        proc.wait(timeout=30)
    assert "Traceback" not in err
    assert proc.returncode == 0


def test_library_logging_never_prints() -> None:
    code = (
        "import logging, jupyter_codexmax; "
        "logging.getLogger('jupyter_codexmax.providers').warning('should not print')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stderr == ""


def test_show_config_masks_secrets_from_config_files(scripted_server: ScriptedModelServer) -> None:
    config_dir = Path(os.environ["JUPYTER_CONFIG_DIR"])
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "jupyter_codexmax_config.py").write_text(
        "c.CodexMax.api_key = 'filesecret98765'\n"
        "c.CodexMax.extra_headers = {'X-Api-Key': 'headersecret4321', 'X-Team': 'data'}\n"
    )
    for flag in ("--show-config", "--show-config-json"):
        result = run(["ask", flag], scripted_server, key=None)
        out = result.stdout + result.stderr
        assert result.returncode == 0, out
        assert "filesecret98765" not in out
        assert "headersecret4321" not in out
        assert "********" in out
        assert "data" in out


def test_doctor_notices_a_base_url_without_v1(tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = run(
            ["doctor"],
            extra_env={"OPENAI_BASE_URL": f"http://127.0.0.1:{server.server_address[1]}"},
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 1
    assert "does the base URL end with /v1?" in result.stdout
