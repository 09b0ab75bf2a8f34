"""``CodexMax``: the one ``Configurable`` every surface reads, made of the groups of settings
in this package (the model, the endpoint, requests, the agent)."""

from __future__ import annotations

from typing import Any

from traitlets.config import Configurable

from .. import secrets
from ._agent import AgentSettings
from ._endpoint import EndpointSettings
from ._model import ModelSettings
from ._requests import RequestSettings
from ._sandbox import SandboxSettings

__all__ = ["CodexMax"]


class CodexMax(
    Configurable,
    ModelSettings,
    EndpointSettings,
    RequestSettings,
    AgentSettings,
    SandboxSettings,
):
    """Settings for jupyter-codexmax: which model, where, how hard it thinks, how it retries."""

    @classmethod
    def class_own_traits(cls, **metadata: Any) -> dict[str, Any]:
        """The groups' traits count as CodexMax's own: generated config files, ``--help-all``
        and ``%config`` list them all under ``CodexMax``, the one name users configure."""
        if cls is not CodexMax:
            return super().class_own_traits(**metadata)
        return {
            name: trait
            for name, trait in cls.class_traits(**metadata).items()
            if getattr(Configurable, name, None) is not trait
        }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._register_secrets()

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
