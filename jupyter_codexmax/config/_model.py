"""The model: which API, which model, its window, how hard it thinks."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from traitlets import Dict, Enum, HasTraits, Int, Unicode, observe, validate

from ..errors import ConfigError
from ..models import EFFORTS, ModelInfo, lookup_model

if TYPE_CHECKING:
    from traitlets.config import Config

__all__ = ["ModelSettings"]


class ModelSettings(HasTraits):
    """Settings of :class:`~jupyter_codexmax.config.CodexMax`: the model."""

    if TYPE_CHECKING:
        config: Config

    _effort_explicit = False

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

    @observe("reasoning_effort")
    def _effort_was_set(self, change: dict[str, Any]) -> None:
        self._effort_explicit = True

    @validate("context_window")
    def _check_window(self, proposal: dict[str, Any]) -> int | None:
        value = proposal["value"]
        if value is not None and value < 1_000:
            raise ConfigError(f"context window {value} is too small (at least 1000 tokens)")
        return value  # type: ignore[no-any-return]

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
