"""The endpoint: where requests go, with which credentials and headers."""

from __future__ import annotations

import ipaddress
import os
from typing import Any
from urllib.parse import urlsplit

from traitlets import Bool, Dict, HasTraits, Unicode, observe, validate

from .. import secrets
from ..errors import ConfigError, MissingAPIKeyError
from ..secrets import Secret, SecretTrait

__all__ = ["DEFAULT_BASE_URL", "EndpointSettings"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"

_AZURE_HOST_MARKS = (
    ".openai.azure.com",
    ".cognitiveservices.azure.com",
    ".services.ai.azure.com",
    ".azure-api.net",
    "openai.azure.",
)


class EndpointSettings(HasTraits):
    """Settings of :class:`~jupyter_codexmax.config.CodexMax`: the endpoint."""

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

    @observe("api_key", "extra_headers")
    def _secrets_changed(self, change: dict[str, Any]) -> None:
        self._register_secrets()

    def _register_secrets(self) -> None:
        secrets.register(self.api_key, key=True)
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

    def resolved_api_key(self) -> Secret:
        """The key from the setting, else from the environment variable ``api_key_env``
        (or handed over by a run that left it out of its environment: :mod:`..keyhandoff`)."""
        if self.api_key:
            return self.api_key
        from ..keyhandoff import handed_over_key

        value = os.environ.get(self.api_key_env, "").strip()
        if not value:
            value = handed_over_key(self.api_key_env).strip()
        key = Secret(value)
        secrets.register(key, key=True)
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
