"""Which environment variables are credentials: real credentials masked, harmless values of
real environments (a JupyterLab kernel, a conda or venv shell, a CI runner) left alone."""

from __future__ import annotations

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

#: Real credentials, by the names their tools read them from.
CREDENTIALS = {
    "OPENAI_API_KEY": "sk-proj-" + "A" * 40,
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2VjEXAMPLETOKEN",
    "GITHUB_TOKEN": "ghp_" + "b" * 36,
    "HF_TOKEN": "hf_" + "c" * 34,
    "HUGGING_FACE_HUB_TOKEN": "hf_" + "d" * 34,
    "JUPYTER_TOKEN": "0123456789abcdef0123456789abcdef",
    "JUPYTERHUB_API_TOKEN": "fedcba9876543210fedcba9876543210",
    "ACTIONS_RUNTIME_TOKEN": "eyJ0eXAiOiJKV1QiLCJhbGciOi.runtime",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "eyJ0eXAiOiJKV1QiLCJhbGciOi.idtoken",
    "AZURE_CLIENT_SECRET": "azure~client~secret~value",
    "MYSQL_PWD": "mysql-password-1",
    "PGPASSWORD": "postgres-password-1",
    "DATABASE_PASSWORD": "database-password-1",
    "SENTRY_DSN": "https://0123456789abcdef@o1.ingest.sentry.io/1",
    "SECRET_KEY_BASE": "rails-secret-key-base-value",
    "NPM_AUTH": "npm-auth-value-123",
    "GPG_PASSPHRASE": "gpg-passphrase-123",
    "DB_PASS": "db-pass-value-1",
    "SMTP_PASS": "smtp-pass-value-1",
    "APP_CREDS": "app-creds-value-1",
    "REDIS_URL": "redis://:redis-Secret-9@cache:6379/0",
    "STRIPE_SK": "rk_live_" + "a1B2c3D4e5F6g7H8i9J0",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX",
}


def harmless_environment(home: Path, work: Path) -> dict[str, str]:
    """Variables a JupyterLab server's kernel, a conda or venv shell and a GitHub Actions
    runner have, with values of their usual shapes (paths that exist here)."""
    venv = home / "venv"
    conda = home / "miniconda3"
    for folder in (venv / "bin", conda / "envs" / "data" / "bin", home / ".ssh"):
        folder.mkdir(parents=True, exist_ok=True)
    sock = home / "agent.sock"
    sock.write_text("")
    creds = home / "gcp.json"
    creds.write_text("{}")
    runner = home / "runner"
    for name in ("_temp", "_tool", "_work", "_actions"):
        (runner / name).mkdir(parents=True, exist_ok=True)
    for name in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_STEP_SUMMARY"):
        (runner / "_temp" / name.lower()).write_text("")
    return {
        # The shell and the JupyterLab server.
        "PWD": str(work),
        "OLDPWD": str(home),
        "HOME": str(home),
        "SHELL": "/bin/bash",
        "PATH": f"{venv}/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TERM": "xterm-color",
        "SHLVL": "1",
        "USER": "analyst",
        "LOGNAME": "analyst",
        "SSH_AUTH_SOCK": str(sock),
        "SSH_AGENT_PID": "123456",
        "XAUTHORITY": str(home / ".Xauthority"),
        "GIT_ASKPASS": "/usr/lib/git-core/git-gui--askpass",
        "GOOGLE_APPLICATION_CREDENTIALS": str(creds),
        "HF_TOKEN_PATH": str(home / ".cache" / "hf_token"),
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        # A kernel started by jupyter_server.
        "JPY_SESSION_NAME": str(work / "analysis.ipynb"),
        "JPY_PARENT_PID": "4242",
        "PYDEVD_USE_FRAME_EVAL": "NO",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "CLICOLOR": "1",
        "FORCE_COLOR": "1",
        "CLICOLOR_FORCE": "1",
        "PAGER": "cat",
        "GIT_PAGER": "cat",
        "JUPYTER_CONFIG_DIR": str(home),
        "JUPYTER_DATA_DIR": str(home),
        "JUPYTER_RUNTIME_DIR": str(home),
        "JUPYTER_SERVER_ROOT": str(work),
        "JUPYTERHUB_API_URL": "http://hub:8081/hub/api",
        "JUPYTERHUB_USER": "analyst",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/analyst/",
        "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-analyst",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": "/user/analyst/oauth_callback",
        # A venv and a conda environment.
        "VIRTUAL_ENV": str(venv),
        "VIRTUAL_ENV_PROMPT": "(venv) ",
        "CONDA_PREFIX": str(conda / "envs" / "data"),
        "CONDA_DEFAULT_ENV": "data",
        "CONDA_EXE": str(conda / "bin" / "conda"),
        "CONDA_PYTHON_EXE": str(conda / "bin" / "python"),
        "CONDA_PROMPT_MODIFIER": "(data) ",
        "CONDA_SHLVL": "2",
        "_CE_CONDA": "",
        "_CE_M": "",
        # A GitHub Actions runner.
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(work),
        "GITHUB_SHA": "3f786850e387550fdab836ed7e6dc881de23001b",
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_REPOSITORY": "team/analysis",
        "GITHUB_ACTOR": "analyst",
        "GITHUB_API_URL": "https://api.github.com",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "9876543210",
        "GITHUB_ENV": str(runner / "_temp" / "github_env"),
        "GITHUB_OUTPUT": str(runner / "_temp" / "github_output"),
        "GITHUB_PATH": str(runner / "_temp" / "github_path"),
        "GITHUB_STEP_SUMMARY": str(runner / "_temp" / "github_step_summary"),
        "GITHUB_ACTION_PATH": str(runner / "_actions"),
        "RUNNER_TEMP": str(runner / "_temp"),
        "RUNNER_TOOL_CACHE": str(runner / "_tool"),
        "RUNNER_WORKSPACE": str(runner / "_work"),
        "RUNNER_OS": "Linux",
        "ACTIONS_CACHE_URL": "https://artifactcache.actions.githubusercontent.com/abc/",
        "ACTIONS_ID_TOKEN_REQUEST_URL": "https://pipelines.actions.githubusercontent.com/x",
        "ACTIONS_RESULTS_URL": "https://results-receiver.actions.githubusercontent.com/",
    }


def test_real_credentials_are_credentials() -> None:
    for name, value in CREDENTIALS.items():
        assert secrets.is_credential(name, value), name
    found = set(secrets.credential_values(CREDENTIALS))
    # The whole value; for a URL named for what it is, the password inside it.
    url = CREDENTIALS["REDIS_URL"]
    assert found == {*CREDENTIALS.values(), "redis-Secret-9"} - {url}
    assert secrets.redact(url, found) == "redis://:********@cache:6379/0"
    assert secrets.without_credentials(CREDENTIALS) == {}


def test_no_harmless_variable_of_a_real_environment_is_a_credential(tmp_path: Path) -> None:
    environ = harmless_environment(tmp_path / "home", tmp_path / "work")
    (tmp_path / "work").mkdir()
    masked = [k for k, v in environ.items() if secrets.is_credential(k, v)]
    assert masked == []
    assert secrets.credential_values(environ) == []
    assert secrets.without_credentials(environ) == environ
    # Mixed together, only the credentials go.
    both = {**environ, **CREDENTIALS}
    assert secrets.without_credentials(both) == environ
    text = json.dumps(both)
    cleaned = secrets.redact(text, secrets.credential_values(both))
    for value in CREDENTIALS.values():
        assert value not in cleaned
    for value in environ.values():
        assert len(value) < secrets.MIN_REDACTED_LENGTH or value in cleaned


def test_a_real_kernels_environment_has_no_credential(tmp_path: Path) -> None:
    """What a kernel started as jupyter_server starts one sees (JPY_SESSION_NAME, the
    kernel's own variables, this machine's shell): nothing in it is taken for a credential
    (this test machine holds no credential in its environment)."""
    from jupyter_client.manager import KernelManager

    env = {**os.environ, "JPY_SESSION_NAME": str(tmp_path / "analysis.ipynb"), "PWD": str(tmp_path)}
    env = {k: v for k, v in env.items() if not k.startswith(("CODEXMAX", "OPENAI"))}
    km = KernelManager(kernel_name="python3", transport="ipc", ip=str(tmp_path / "k"))
    km.start_kernel(env=env, cwd=str(tmp_path))
    client = km.client()
    target = tmp_path / "env.json"
    try:
        client.start_channels()
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive(
            f"import os, json; open({str(target)!r}, 'w').write(json.dumps(dict(os.environ)))",
            timeout=60,
        )
        assert reply["content"]["status"] == "ok"
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
    kernel_env = json.loads(target.read_text())
    assert kernel_env["JPY_SESSION_NAME"].endswith("analysis.ipynb")
    assert [k for k, v in kernel_env.items() if secrets.is_credential(k, v)] == []


def test_a_run_started_in_the_workspace_shows_the_model_its_path(
    tmp_path: Path, scripted_server: ScriptedModelServer
) -> None:
    """PWD is the folder the run started in, not a password: the model is told the real
    workspace, and an absolute path inside it works in read_file."""
    work = tmp_path / "project"
    work.mkdir()
    (work / ".git").mkdir()
    (work / "data.csv").write_text("city,sales\nOslo,3\n")
    notebook = make_notebook(work / "report.ipynb", [("c1", "code", "print(1)")])
    scripted_server.load(
        [
            {"calls": [call("read_file", {"path": str(work / "data.csv")})]},
            {"text": "Read it."},
        ]
    )
    env = {
        **os.environ,
        "OPENAI_BASE_URL": scripted_server.base_url,
        "OPENAI_API_KEY": "sk-pwd-test-0123456789",
        "PWD": str(work),
        "OLDPWD": str(tmp_path),
    }
    result = subprocess.run(
        [str(BIN / "jupyter"), "codexmax", "run", str(notebook), "--task", "read the data"],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    first = json.dumps(scripted_server.requests[0].body)
    assert f"Workspace: {work}" in first
    assert secrets.MASK not in first
    second = json.dumps(scripted_server.requests[1].body)
    assert "Oslo,3" in second
    assert secrets.MASK not in second
    assert secrets.MASK not in result.stdout + result.stderr


@pytest.mark.parametrize("name", ["PWD", "OLDPWD"])
def test_the_shells_folders_are_never_credentials(name: str) -> None:
    assert not secrets.is_credential_name(name)
    assert not secrets.is_credential(name, "/no/such/folder/anywhere")
