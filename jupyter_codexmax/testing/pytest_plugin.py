"""pytest fixtures: an isolated environment and the scripted model server.

- ``codexmax_isolated``: no user config, no ``OPENAI_*``/``CODEXMAX_*`` variables, Jupyter
  and IPython folders in a temporary directory, token counts by the estimate;
- ``scripted_server``: the scripted model server (one per test session, its script and
  record reset for each test);
- ``scripted_settings``: settings pointing at it, with a key and quick retries.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..config import CodexMax, load_settings
from .server import ScriptedModelServer

TEST_API_KEY = "sk-scripted-test-key-0123456789"


@pytest.fixture
def codexmax_isolated(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """An environment free of the user's settings; returns the temporary home."""
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "CODEXMAX_", "AZURE_OPENAI_", "JUPYTER_", "IPYTHON")):
            monkeypatch.delenv(name, raising=False)
    for name in (
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "ALL_PROXY",
        "https_proxy",
        "http_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(home / "jupyter-config"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(home / "jupyter-data"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(home / "jupyter-runtime"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("IPYTHONDIR", str(home / "ipython"))
    monkeypatch.setenv("CODEXMAX_TOKENIZER", "estimate")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return home


@pytest.fixture(scope="session")
def _scripted_server_session() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture
def scripted_server(_scripted_server_session: ScriptedModelServer) -> ScriptedModelServer:
    """The scripted model server, with an empty script and a clean record."""
    server = _scripted_server_session
    server.load([])
    server.api_key = None
    return server


@pytest.fixture
def scripted_settings(
    codexmax_isolated: Path, scripted_server: ScriptedModelServer, monkeypatch: pytest.MonkeyPatch
) -> CodexMax:
    """Settings for the scripted server: a key in the environment, retries without waits."""
    monkeypatch.setenv("OPENAI_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", scripted_server.base_url)
    settings = load_settings()
    settings.retry_base_delay = 0.01
    settings.retry_max_delay = 0.05
    settings.stream_idle_timeout = 5.0
    return settings
