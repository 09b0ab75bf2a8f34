"""Settings: defaults, config files, environment and flags in that order; efforts; secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from traitlets.config import Config

from jupyter_codexmax.config import CodexMax, env_config, load_settings
from jupyter_codexmax.errors import ConfigError, MissingAPIKeyError
from jupyter_codexmax.models import lookup_model
from jupyter_codexmax.secrets import MASK, Secret, redact


def write_config(text: str) -> Path:
    folder = Path(os.environ["JUPYTER_CONFIG_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "jupyter_codexmax_config.py"
    path.write_text(text)
    return path


def test_defaults() -> None:
    s = load_settings()
    assert s.provider == "responses"
    assert s.model == "gpt-5.1-codex-max"
    assert s.model_info().context_window == 272_000
    assert s.reasoning_effort == "medium"
    assert s.base_url == "https://api.openai.com/v1"
    assert s.store_value is False
    assert s.max_retries == 5


def test_priority_files_then_environment_then_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(
        "c.CodexMax.model = 'from-file'\n"
        "c.CodexMax.reasoning_effort = 'high'\n"
        "c.CodexMax.base_url = 'http://file.example/v1'\n"
    )
    s = load_settings()
    assert (s.model, s.reasoning_effort, s.base_url) == (
        "from-file",
        "high",
        "http://file.example/v1",
    )

    monkeypatch.setenv("CODEXMAX_MODEL", "from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env.example/v1/")
    s = load_settings()
    assert (s.model, s.reasoning_effort, s.base_url) == (
        "from-env",
        "high",
        "http://env.example/v1",
    )

    cli = Config({"CodexMax": {"model": "from-flag"}})
    s = load_settings(cli_config=cli)
    assert (s.model, s.base_url) == ("from-flag", "http://env.example/v1")


def test_kernel_config_is_a_layer_below_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    shell_config = Config({"CodexMax": {"model": "from-ipython-config", "max_retries": 2}})
    s = load_settings(config=shell_config)
    assert (s.model, s.max_retries) == ("from-ipython-config", 2)
    monkeypatch.setenv("CODEXMAX_MODEL", "from-env")
    assert load_settings(config=shell_config).model == "from-env"


def test_bad_values_name_the_setting_and_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEXMAX_EFFORT", "huge")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "CodexMax.reasoning_effort" in message
    assert "environment" in message
    assert "xhigh" in message
    monkeypatch.delenv("CODEXMAX_EFFORT")

    monkeypatch.setenv("CODEXMAX_CONTEXT_WINDOW", "lots")
    with pytest.raises(ConfigError, match="CODEXMAX_CONTEXT_WINDOW"):
        load_settings()
    monkeypatch.delenv("CODEXMAX_CONTEXT_WINDOW")

    with pytest.raises(ConfigError, match="not an http"):
        load_settings(cli_config=Config({"CodexMax": {"base_url": "ftp://nowhere"}}))

    write_config("c.CodexMax.model = (\n")
    with pytest.raises(ConfigError, match=r"could not read .*jupyter_codexmax_config\.py"):
        load_settings()


def test_effort_per_model() -> None:
    s = load_settings()
    assert s.effort_for() == "medium"
    assert s.effort_for(effort="xhigh") == "xhigh"
    with pytest.raises(
        ConfigError,
        match=r"gpt-5.1-codex-max does not accept reasoning effort 'minimal' "
        r"\(it accepts low, medium, high, xhigh\)",
    ):
        s.effort_for(effort="minimal")
    assert s.effort_for(model="gpt-5", effort="minimal") == "minimal"
    assert s.effort_for(model="gpt-5.1", effort="none") == "none"
    # A model that does not reason: the default is not sent, a chosen effort is an error.
    assert s.effort_for(model="gpt-4o") is None
    with pytest.raises(ConfigError, match="does not take a reasoning effort"):
        s.effort_for(model="gpt-4o", effort="high")
    # An unknown model (a local server's): only an explicit choice is sent.
    assert s.effort_for(model="qwen3-coder") is None
    assert s.effort_for(model="qwen3-coder", effort="low") == "low"


def test_explicit_effort_from_config_is_checked() -> None:
    s = load_settings(cli_config=Config({"CodexMax": {"reasoning_effort": "minimal"}}))
    with pytest.raises(ConfigError, match="does not accept reasoning effort 'minimal'"):
        s.effort_for()
    # A default effort the model cannot take falls back instead of failing.
    default = load_settings(cli_config=Config({"CodexMax": {"model": "gpt-5.1-codex-mini"}}))
    assert default.effort_for() == "medium"


def test_model_table_lookup_and_overrides() -> None:
    assert lookup_model("gpt-5.1-codex-max-2025-11-19").context_window == 272_000
    assert lookup_model("gpt-5.1-codex-max-2025-11-19").efforts[-1] == "xhigh"
    assert lookup_model("gpt-4o-mini").context_window == 128_000
    unknown = lookup_model("llama3.3:70b")
    assert not unknown.known
    assert unknown.context_window == 128_000
    custom = lookup_model("my-model", {"my-model": {"context_window": 32_768, "efforts": ["low"]}})
    assert (custom.context_window, custom.efforts, custom.known) == (32_768, ("low",), True)
    with pytest.raises(ConfigError, match="unknown keys"):
        lookup_model("x", {"x": {"window": 1}})
    with pytest.raises(ConfigError, match="efforts"):
        lookup_model("x", {"x": {"efforts": ["turbo"]}})

    s = load_settings(cli_config=Config({"CodexMax": {"context_window": 50_000}}))
    assert s.model_info().context_window == 50_000


def test_api_key_from_environment_and_masked_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    s = load_settings()
    assert s.require_api_key().reveal() == key
    assert s.auth_headers()["Authorization"].reveal() == f"Bearer {key}"
    # Nothing that shows settings shows the key.
    help_text = CodexMax.class_get_help(s)
    assert key not in help_text
    assert key not in repr(s.api_key) + str(s.resolved_api_key())
    assert key not in str(s.describe())
    assert key not in repr(env_config())
    assert (
        redact(f"Authorization: Bearer {key} and {key}")
        == f"Authorization: Bearer {MASK} and {MASK}"
    )


def test_api_key_in_config_file_is_a_secret() -> None:
    write_config("c.CodexMax.api_key = 'sk-config-file-key-1234567890'\n")
    s = load_settings()
    assert isinstance(s.api_key, Secret)
    assert "sk-config-file-key" not in CodexMax.class_get_help(s)
    assert s.describe()["API key"] == "set (from config)"


def test_missing_key_names_the_variable() -> None:
    s = load_settings()
    with pytest.raises(MissingAPIKeyError, match="set OPENAI_API_KEY") as info:
        s.require_api_key()
    assert info.value.exit_code == 2
    # Servers on this machine may run without a key.
    local = load_settings(cli_config=Config({"CodexMax": {"base_url": "http://127.0.0.1:8000/v1"}}))
    assert not local.require_api_key()


def test_azure_endpoint_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key-0123456789")
    s = load_settings(
        cli_config=Config(
            {
                "CodexMax": {
                    "base_url": "https://my-resource.openai.azure.com/openai/v1",
                    "api_key_env": "AZURE_OPENAI_API_KEY",
                    "extra_query": {"api-version": "preview"},
                }
            }
        )
    )
    assert s.is_azure
    assert s.store_value is True
    headers = s.auth_headers()
    assert list(headers) == ["api-key"]
    assert headers["api-key"].reveal() == "azure-key-0123456789"


def test_sensitive_extra_headers_are_secrets() -> None:
    s = load_settings(
        cli_config=Config(
            {
                "CodexMax": {
                    "base_url": "http://localhost:9/v1",
                    "extra_headers": {"X-Gateway-Token": "gw-secret-value-123", "X-Team": "data"},
                }
            }
        )
    )
    assert s.auth_headers()["X-Gateway-Token"].reveal() == "gw-secret-value-123"
    assert s.plain_headers() == {"X-Team": "data"}
    assert "gw-secret-value-123" not in str(s.describe())
    assert redact("token gw-secret-value-123 leaked") == f"token {MASK} leaked"


def test_explicit_medium_effort_counts_as_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    cli = Config({"CodexMax": {"reasoning_effort": "medium"}})
    assert load_settings(cli_config=cli).effort_for(model="qwen3-coder") == "medium"
    monkeypatch.setenv("CODEXMAX_EFFORT", "medium")
    with pytest.raises(ConfigError, match="does not take a reasoning effort"):
        load_settings().effort_for(model="gpt-4o")


def test_keys_are_stripped_and_control_characters_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    write_config("c.CodexMax.api_key = 'key-from-a-file-0123456789\\n'\n")
    assert load_settings().api_key.reveal() == "key-from-a-file-0123456789"
    write_config("c.CodexMax.api_key = 'two\\nlines-0123456789'\n")
    with pytest.raises(ConfigError, match="control character") as info:
        load_settings()
    assert "lines-0123456789" not in str(info.value)
    write_config("")
    with pytest.raises(ConfigError, match="control character"):
        load_settings(cli_config=Config({"CodexMax": {"extra_headers": {"X-A": "b\r\nc"}}}))


def test_base_url_with_a_query_is_refused() -> None:
    with pytest.raises(ConfigError, match="extra_query"):
        load_settings(
            cli_config=Config(
                {
                    "CodexMax": {
                        "base_url": "https://r.openai.azure.com/openai/v1?api-version=preview"
                    }
                }
            )
        )


def test_a_header_that_cannot_be_sent_never_echoes_its_value() -> None:
    import httpx

    from jupyter_codexmax.providers.http import convert_transport_error

    exc = httpx.LocalProtocolError("Illegal header value b'secret-value-0123\\n'")
    err = convert_transport_error(exc, "https://api.openai.com/v1/responses")
    assert isinstance(err, ConfigError)
    assert "secret-value" not in str(err)
