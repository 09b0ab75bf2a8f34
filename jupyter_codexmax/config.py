"""Settings shared by every surface: one traitlets ``Configurable``, ``CodexMax``.

Where a value comes from, lowest priority first:

1. the default written here;
2. config files: ``jupyter_codexmax_config.py`` / ``.json`` in the Jupyter config path
   (``jupyter --paths``), and in a kernel also IPython's own config
   (``ipython_config.py``, ``ipython_kernel_config.py``): ``c.CodexMax.model = "..."``;
3. environment variables (each trait's help names its variable, e.g. ``OPENAI_BASE_URL``);
4. command-line flags (``--model``, ``--CodexMax.model=...``) and ``%config CodexMax.model``.

The API key is a :class:`~jupyter_codexmax.secrets.Secret`: ``%config CodexMax``,
``--show-config``, logs and errors show a mask, never the key.
"""

from __future__ import annotations

import ipaddress
import os
from copy import deepcopy
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from traitlets import Bool, Dict, Enum, Float, Int, Unicode, observe, validate
from traitlets.config import Config, Configurable

from . import secrets
from .errors import ConfigError, MissingAPIKeyError
from .models import EFFORTS, ModelInfo, lookup_model
from .secrets import Secret, SecretTrait

__all__ = ["APPROVALS", "CONFIG_FILE_NAME", "CodexMax", "env_config", "load_settings"]

#: The approval levels (``agent/approvals.py`` says what each allows).
APPROVALS = ("read-only", "ask", "auto")

#: Base name of the Jupyter config file read by every surface.
CONFIG_FILE_NAME = "jupyter_codexmax_config"

DEFAULT_BASE_URL = "https://api.openai.com/v1"

_AZURE_HOST_MARKS = (
    ".openai.azure.com",
    ".cognitiveservices.azure.com",
    ".services.ai.azure.com",
    ".azure-api.net",
    "openai.azure.",
)


class CodexMax(Configurable):
    """Settings for jupyter-codexmax: which model, where, how hard it thinks, how it retries."""

    # -- the model ---------------------------------------------------------------------------
    provider = Enum(
        ["responses", "chat"],
        default_value="responses",
        help="""Which API to speak. ``responses``: the OpenAI Responses API (OpenAI, Azure
        OpenAI, and servers that implement it). ``chat``: Chat Completions, for any
        OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio, OpenRouter).
        Environment: CODEXMAX_PROVIDER.""",
    ).tag(config=True, env="CODEXMAX_PROVIDER")

    model = Unicode(
        "gpt-5.1-codex-max",
        help="""The model (or Azure deployment) name. Environment: CODEXMAX_MODEL.""",
    ).tag(config=True, env="CODEXMAX_MODEL")

    context_window = Int(
        None,
        allow_none=True,
        help="""The model's context window in tokens. Default: from the table of known
        models (272000 for gpt-5.1-codex-max), else 128000. Environment:
        CODEXMAX_CONTEXT_WINDOW.""",
    ).tag(config=True, env="CODEXMAX_CONTEXT_WINDOW")

    models = Dict(
        help="""Add to or override the table of known models, by name:
        ``{"my-vllm-model": {"context_window": 131072, "efforts": ["low", "medium",
        "high"], "images": false}}``. A name matches its entry exactly or by the longest
        prefix.""",
    ).tag(config=True)

    reasoning_effort = Enum(
        list(EFFORTS),
        default_value="medium",
        help="""How hard the model thinks: none, minimal, low, medium, high or xhigh. Models
        accept different sets (gpt-5.1-codex-max: low to xhigh); a value the model is
        known to refuse is reported before anything is sent. For a model that does not
        reason, the default is simply not sent. Environment: CODEXMAX_EFFORT.""",
    ).tag(config=True, env="CODEXMAX_EFFORT")

    reasoning_summary = Enum(
        ["auto", "concise", "detailed", "none"],
        default_value="auto",
        help="""Ask reasoning models for a summary of their reasoning, streamed as it is
        written (``none`` to not ask).""",
    ).tag(config=True)

    # -- the endpoint ------------------------------------------------------------------------
    base_url = Unicode(
        DEFAULT_BASE_URL,
        help="""The API base URL, up to and including ``/v1``: for example
        ``http://localhost:11434/v1`` (Ollama), ``http://localhost:8000/v1`` (vLLM),
        ``https://RESOURCE.openai.azure.com/openai/v1`` (Azure). Environment:
        OPENAI_BASE_URL.""",
    ).tag(config=True, env="OPENAI_BASE_URL")

    api_key = SecretTrait(
        help="""The API key. Prefer the environment variable named by ``api_key_env``
        (OPENAI_API_KEY) to writing a key in a config file. Never logged, shown or
        stored.""",
    ).tag(config=True)

    api_key_env = Unicode(
        "OPENAI_API_KEY",
        help="""The environment variable the API key is read from, for example
        ``AZURE_OPENAI_API_KEY``.""",
    ).tag(config=True)

    api_key_header = Unicode(
        "",
        help="""The header that carries the key. Empty (the default): ``api-key`` for Azure
        endpoints, else ``Authorization: Bearer <key>``. Any other name sends the bare
        key in that header.""",
    ).tag(config=True)

    organization = Unicode(
        "",
        help="OpenAI organization id, sent as OpenAI-Organization. Environment: OPENAI_ORG_ID.",
    ).tag(config=True, env="OPENAI_ORG_ID")

    project = Unicode(
        "",
        help="OpenAI project id, sent as OpenAI-Project. Environment: OPENAI_PROJECT_ID.",
    ).tag(config=True, env="OPENAI_PROJECT_ID")

    extra_headers = Dict(
        value_trait=Unicode(),
        help="""Headers added to every request, e.g. for a gateway. Values of headers whose
        names look like credentials (key, token, auth, secret) are treated as secrets.""",
    ).tag(config=True)

    extra_query = Dict(
        value_trait=Unicode(),
        help="""Query parameters added to every request, e.g. ``{"api-version": "preview"}``
        for Azure.""",
    ).tag(config=True)

    store = Bool(
        None,
        allow_none=True,
        help="""Send ``store`` to the Responses API. Default: false, so nothing is kept on
        the server and reasoning travels encrypted in the request; true for Azure, whose
        Responses API needs stored items to accept reasoning.""",
    ).tag(config=True)

    proxy = Unicode(
        "",
        help="""A proxy URL for every request. Default: the usual HTTPS_PROXY, HTTP_PROXY,
        ALL_PROXY and NO_PROXY environment variables.""",
    ).tag(config=True)

    # -- time and retries --------------------------------------------------------------------
    connect_timeout = Float(10.0, help="Seconds allowed for connecting to the server.").tag(
        config=True
    )

    stream_idle_timeout = Float(
        300.0,
        help="""Seconds a streamed response may stay silent before it counts as stalled
        (an error, retried like a dropped connection).""",
    ).tag(config=True)

    request_timeout = Float(
        600.0,
        help="Seconds allowed for a request that is not streamed (remote compaction).",
    ).tag(config=True)

    max_retries = Int(
        5,
        help="""How many times a failed request is retried: connection errors, timeouts,
        dropped streams, HTTP 408, 409, 429 and 5xx. Never retried: invalid requests,
        authentication errors, ``insufficient_quota``, ``context_length_exceeded``.""",
    ).tag(config=True)

    retry_base_delay = Float(
        0.5,
        help="""Seconds before the first retry; doubled for each further one, with jitter.
        A server's ``retry-after-ms`` or ``retry-after`` header takes precedence.""",
    ).tag(config=True)

    retry_max_delay = Float(
        20.0, help="Longest wait between retries that we choose ourselves, in seconds."
    ).tag(config=True)

    retry_after_limit = Float(
        60.0,
        help="""Longest wait a server may ask for (``retry-after``) that we honour; a request
        that asks for more fails at once with the wait in its message.""",
    ).tag(config=True)

    # -- token counting ----------------------------------------------------------------------
    tokenizer = Enum(
        ["auto", "estimate"],
        default_value="auto",
        help="""How tokens are counted between server reports. ``auto``: tiktoken's
        o200k_base (its data file is downloaded once, on first use), falling back to the
        estimate when it cannot be loaded. ``estimate``: one token per 4 bytes of UTF-8,
        rounded up. Environment: CODEXMAX_TOKENIZER.""",
    ).tag(config=True, env="CODEXMAX_TOKENIZER")

    tiktoken_file = Unicode(
        "",
        help="""A local copy of ``o200k_base.tiktoken``, for machines that cannot download
        it. Environment: CODEXMAX_TIKTOKEN_FILE.""",
    ).tag(config=True, env="CODEXMAX_TIKTOKEN_FILE")

    tokenizer_load_timeout = Float(
        10.0,
        help="Seconds to wait for tiktoken's data before using the estimate instead.",
    ).tag(config=True)

    # -- the agent ---------------------------------------------------------------------------
    approval = Enum(
        list(APPROVALS),
        default_value="ask",
        help="""What the agent may do without asking. ``read-only``: it reads; edits come
        back as proposals. ``ask``: notebook edits are applied (undo restores them);
        running cells, shell commands, kernel restarts and writing other files ask first
        (headless runs cannot ask: they refuse, and tell the model). ``auto``: everything
        inside the workspace. Environment: CODEXMAX_APPROVAL.""",
    ).tag(config=True, env="CODEXMAX_APPROVAL")

    workspace_root = Unicode(
        "",
        help="""The folder the agent may read and change. Default: the nearest folder
        holding ``.git`` above the notebook, else the notebook's folder.""",
    ).tag(config=True)

    allow_destructive_outside_workspace = Bool(
        False,
        help="""Let shell commands delete, move or overwrite paths outside the workspace,
        and run ``sudo``. Off: such commands are refused at every approval level.""",
    ).tag(config=True)

    cell_timeout = Float(
        600.0,
        help="""Seconds a cell may run before the kernel is interrupted (the model can
        ask for less or more per run).""",
    ).tag(config=True)

    max_steps = Int(
        200,
        help="""Most requests to the model in one turn (one message from you); the turn
        stops with an error past it.""",
    ).tag(config=True)

    tool_output_limit = Int(
        24_000,
        help="""Characters of one tool result kept for the model; longer results are cut
        head and tail, with a marker saying how much was cut.""",
    ).tag(config=True)

    agents_md_limit = Int(
        32_768,
        help="""Bytes of AGENTS.md instructions (from the workspace root down to the
        notebook's folder) added to the conversation.""",
    ).tag(config=True)

    # -- long sessions ------------------------------------------------------------------------
    compaction = Enum(
        ["auto", "local"],
        default_value="auto",
        help="""How the history is compacted. ``auto``: the server's compaction endpoint
        (``POST /responses/compact``) where the provider has one, else (or when it fails) a
        hand-off summary written by the model. ``local``: always the summary.""",
    ).tag(config=True)

    compaction_threshold = Float(
        0.9,
        help="""Compact before a request when the context would pass this share of the
        model's window (the server's last report plus an estimate of what was added).""",
    ).tag(config=True)

    compaction_user_budget = Int(
        20_000,
        help="""Tokens of the most recent user messages kept word for word through a
        compaction (and stored with the session).""",
    ).tag(config=True)

    compaction_max_attempts = Int(
        3,
        help="""Compactions tried in a row before giving up with an error, when one does
        not bring the context under the threshold.""",
    ).tag(config=True)

    session_cap = Int(
        65_536,
        min=8_192,
        help="""Bytes the session record may take in the notebook's metadata (at least
        8192); over it, the oldest parts are dropped (see docs/session.md).""",
    ).tag(config=True)

    journal = Bool(
        True,
        help="""Keep each session's full transcript as JSON lines in the Jupyter data folder
        (``codexmax/sessions/``), for audit and exact resume on this machine.""",
    ).tag(config=True)

    prices = Dict(
        help="""Prices for the cost estimate, in US dollars per million tokens, by model:
        ``{"my-model": {"input": 1.25, "cached_input": 0.125, "output": 10.0}}``. Known
        OpenAI models have list prices built in.""",
    ).tag(config=True)

    kernel_keeps_api_key = Bool(
        False,
        help="""Leave the agent's API key variable in the kernel's environment, for
        notebooks that call the same API themselves. Off: the kernel does not get it.
        Either way, tool output is redacted before the model sees it.""",
    ).tag(config=True)

    # ----------------------------------------------------------------------------------------

    def __init__(self, **kwargs: Any) -> None:
        self._effort_explicit = False
        super().__init__(**kwargs)
        self._register_secrets()

    @observe("reasoning_effort")
    def _effort_was_set(self, change: dict[str, Any]) -> None:
        self._effort_explicit = True

    @observe("api_key", "extra_headers")
    def _secrets_changed(self, change: dict[str, Any]) -> None:
        self._register_secrets()

    def _register_secrets(self) -> None:
        secrets.register(self.api_key)
        secrets.register(
            *(v for k, v in self.extra_headers.items() if secrets.is_sensitive_header(k))
        )

    @validate("base_url")
    def _check_base_url(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"]).strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"base URL {value!r} is not an http(s) URL; "
                "expected something like https://api.openai.com/v1"
            )
        if parts.query or parts.fragment:
            raise ConfigError(
                f"base URL {value!r} has a query or fragment; put query parameters in "
                "CodexMax.extra_query, e.g. {'api-version': 'preview'}"
            )
        return value.rstrip("/")

    @validate("extra_headers", "extra_query")
    def _check_header_values(self, proposal: dict[str, Any]) -> dict[str, str]:
        value = dict(proposal["value"])
        for key, item in value.items():
            if any(ord(ch) < 32 or ord(ch) == 127 for ch in f"{key}{item}"):
                raise ConfigError(
                    f"CodexMax.{proposal['trait'].name}[{key!r}] contains a control character"
                )
        return value

    @validate("context_window")
    def _check_window(self, proposal: dict[str, Any]) -> int | None:
        value = proposal["value"]
        if value is not None and value < 1_000:
            raise ConfigError(f"context window {value} is too small (at least 1000 tokens)")
        return value  # type: ignore[no-any-return]

    @validate("max_retries")
    def _check_retries(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        if not 0 <= value <= 100:
            raise ConfigError(f"max_retries must be between 0 and 100, not {value}")
        return value

    # -- derived values ----------------------------------------------------------------------

    @property
    def is_azure(self) -> bool:
        """Whether the base URL is an Azure OpenAI endpoint."""
        host = (urlsplit(self.base_url).hostname or "").lower()
        return any(mark in host or host.endswith(mark) for mark in _AZURE_HOST_MARKS)

    @property
    def is_local(self) -> bool:
        """Whether the base URL points at this machine (local servers often need no key)."""
        host = (urlsplit(self.base_url).hostname or "").lower()
        if host == "localhost" or host.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @property
    def store_value(self) -> bool:
        return self.is_azure if self.store is None else bool(self.store)

    def model_info(self, model: str | None = None) -> ModelInfo:
        """What is known about ``model`` (default: the configured one)."""
        info = lookup_model(model or self.model, self.models)
        if self.context_window is not None and (model is None or model == self.model):
            info = replace(info, context_window=self.context_window)
        return info

    def effort_for(self, model: str | None = None, effort: str | None = None) -> str | None:
        """The reasoning effort to send, or None to send none.

        ``effort`` overrides the setting (a per-request choice counts as explicit). Raises
        :class:`ConfigError` when an explicitly chosen effort is one the model is known to
        refuse; a default the model cannot take is dropped instead of failing.
        """
        info = self.model_info(model)
        configured = self.config.get("CodexMax", {})
        explicit = effort is not None or self._effort_explicit or "reasoning_effort" in configured
        chosen = effort or self.reasoning_effort
        if chosen not in EFFORTS:
            raise ConfigError(f"reasoning effort {chosen!r} is not one of {', '.join(EFFORTS)}")
        if not info.known:
            return chosen if explicit else None
        if not info.reasons:
            if explicit:
                raise ConfigError(
                    f"model {info.name} does not take a reasoning effort; "
                    "leave the effort unset for it"
                )
            return None
        if chosen not in info.efforts:
            if explicit:
                raise ConfigError(
                    f"model {info.name} does not accept reasoning effort {chosen!r} "
                    f"(it accepts {', '.join(info.efforts)})"
                )
            return "medium" if "medium" in info.efforts else info.efforts[-1]
        return chosen

    def resolved_api_key(self) -> Secret:
        """The key from the setting, else from the environment variable ``api_key_env``."""
        if self.api_key:
            return self.api_key
        value = os.environ.get(self.api_key_env, "").strip()
        key = Secret(value)
        secrets.register(key)
        return key

    def require_api_key(self) -> Secret:
        """The API key, or :class:`MissingAPIKeyError` when the endpoint needs one.

        Endpoints on this machine (localhost) often run without a key and may go without.
        """
        key = self.resolved_api_key()
        if not key and not self.is_local:
            raise MissingAPIKeyError(
                f"no API key: set {self.api_key_env} in the environment "
                f"(needed for {self.base_url})"
            )
        return key

    def auth_headers(self) -> dict[str, Secret]:
        """Credential headers, as secrets."""
        key = self.require_api_key()
        headers: dict[str, Secret] = {}
        if key:
            name = self.api_key_header or ("api-key" if self.is_azure else "Authorization")
            if name.lower() == "authorization":
                headers["Authorization"] = Secret(f"Bearer {key.reveal()}")
            else:
                headers[name] = key
        for name, value in self.extra_headers.items():
            if secrets.is_sensitive_header(name):
                headers[name] = Secret(value)
        return headers

    def plain_headers(self) -> dict[str, str]:
        """Headers that are not credentials."""
        headers = {
            k: v for k, v in self.extra_headers.items() if not secrets.is_sensitive_header(k)
        }
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.project:
            headers["OpenAI-Project"] = self.project
        return headers

    def describe(self) -> dict[str, str]:
        """The settings as text for people (doctor, status), with secrets masked."""
        info = self.model_info()
        key = self.resolved_api_key()
        key_text = (
            f"set (from {'config' if self.api_key else self.api_key_env})"
            if key
            else f"not set ({self.api_key_env})"
        )
        headers = {
            k: (secrets.MASK if secrets.is_sensitive_header(k) else v)
            for k, v in self.extra_headers.items()
        }
        return {
            "provider": self.provider,
            "model": self.model + ("" if info.known else " (not in the known-model table)"),
            "context window": f"{info.context_window:,} tokens",
            "reasoning effort": self.reasoning_effort
            + ("" if info.reasons or not info.known else " (not sent: the model does not reason)"),
            "base URL": self.base_url + (" (Azure)" if self.is_azure else ""),
            "API key": key_text,
            "extra headers": ", ".join(f"{k}: {v}" for k, v in headers.items()) or "none",
            "extra query": ", ".join(f"{k}={v}" for k, v in self.extra_query.items()) or "none",
            "retries": f"{self.max_retries} (idle timeout {self.stream_idle_timeout:g} s)",
        }


def env_config(environ: dict[str, str] | None = None) -> Config:
    """A ``Config`` holding the settings given by environment variables."""
    environ = dict(os.environ if environ is None else environ)
    section: dict[str, Any] = {}
    for name, trait in CodexMax.class_traits(config=True).items():
        var = trait.metadata.get("env")
        if var and environ.get(var, "").strip():
            raw = environ[var].strip()
            try:
                section[name] = trait.from_string(raw)
            except Exception as exc:
                raise ConfigError(
                    f"environment variable {var}={raw!r} is not valid: {exc}"
                ) from exc
    return Config({"CodexMax": section}) if section else Config()


def load_config_files() -> Config:
    """``jupyter_codexmax_config.py`` / ``.json`` from the Jupyter config path, merged.

    Later (more specific) folders win, as in every Jupyter application.
    """
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config.loader import (
        ConfigFileNotFound,
        JSONFileConfigLoader,
        PyFileConfigLoader,
    )

    merged = Config()
    for folder in reversed(jupyter_config_path()):
        for loader in (
            PyFileConfigLoader(CONFIG_FILE_NAME + ".py", path=folder),
            JSONFileConfigLoader(CONFIG_FILE_NAME + ".json", path=folder),
        ):
            try:
                merged.merge(loader.load_config())
            except ConfigFileNotFound:
                continue
            except Exception as exc:
                name = os.path.join(folder, loader.filename)
                raise ConfigError(f"could not read {name}: {exc}") from exc
    return merged


def load_settings(
    config: Config | None = None,
    cli_config: Config | None = None,
    *,
    read_files: bool = True,
    parent: Configurable | None = None,
) -> CodexMax:
    """Build the settings with the documented priority: files, environment, then flags.

    ``config`` is configuration already loaded by the host (a kernel's IPython config or a
    Jupyter application's files and flags); ``cli_config`` is re-applied last so flags win
    over the environment. A bad value raises :class:`ConfigError` naming the setting and
    where it came from.
    """
    layers: list[tuple[Config, str]] = []
    if read_files:
        layers.append((load_config_files(), "in a config file"))
    if config is not None:
        layers.append((deepcopy(config), "in the configuration"))
    layers.append((env_config(), "in the environment"))
    if cli_config is not None:
        layers.append((deepcopy(cli_config), "on the command line"))
    merged = Config()
    for layer, source in layers:
        _check_layer(layer, source)
        merged.merge(layer)
    try:
        return CodexMax(config=merged, parent=parent)
    except ConfigError:
        raise
    except Exception as exc:  # traitlets.TraitError: values that conflict with each other
        raise ConfigError("invalid setting: " + " ".join(str(exc).split())) from exc


def _check_layer(layer: Config, source: str) -> None:
    """Try each CodexMax value of one layer alone, to name the bad one precisely."""
    if "CodexMax" not in layer:
        return
    traits = CodexMax.class_traits(config=True)
    probe: CodexMax | None = None
    for name, raw in layer["CodexMax"].items():
        trait = traits.get(name)
        if trait is None:
            continue  # traitlets itself warns about unknown names
        if probe is None:
            probe = CodexMax()
        shown, value = raw, raw
        try:
            if hasattr(raw, "get_value"):  # a command-line string not yet converted
                shown = getattr(raw, "s", raw)
                value = raw.get_value(trait)
            setattr(probe, name, value)
        except ConfigError as exc:
            raise ConfigError(f"CodexMax.{name} {source}: {exc}") from exc
        except Exception as exc:
            if isinstance(trait, Enum):
                choices = ", ".join(str(v) for v in trait.values or ())
                reason = f"choose one of {choices}"
            else:
                reason = " ".join(str(exc).split())
            shown_text = "(secret)" if isinstance(trait, SecretTrait) else repr(shown)
            raise ConfigError(
                f"invalid value {shown_text} for CodexMax.{name} {source}: {reason}"
            ) from exc
