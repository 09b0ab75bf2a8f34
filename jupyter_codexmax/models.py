"""What we know about models: context window, accepted reasoning efforts, image input.

The table is a best-known default, not an authority: servers change, and OpenAI-compatible
servers (vLLM, Ollama, llama.cpp, Azure deployments) use names of their own. Every entry can
be overridden, and new ones added, with the ``CodexMax.models`` setting; the window alone
with ``CodexMax.context_window``.

A name matches an entry exactly or by its longest known prefix, so dated snapshots
(``gpt-5.1-codex-max-2025-11-19``) find their family.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .errors import ConfigError

__all__ = [
    "EFFORTS",
    "KNOWN_MODELS",
    "SCRIPTED_MODEL_PREFIX",
    "ModelInfo",
    "lookup_model",
    "served_label",
]

#: How the scripted model server (``jupyter_codexmax.testing``) names the model that
#: answered: ``scripted:<the model asked for>``, so no surface passes it off as the real one.
SCRIPTED_MODEL_PREFIX = "scripted:"

#: Every reasoning effort a user can choose, lowest first.
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")

#: Window assumed for a model we know nothing about; set ``CodexMax.context_window``.
UNKNOWN_CONTEXT_WINDOW = 128_000


def served_label(model: str) -> str:
    """How surfaces name the model that answered: ``scripted`` for the scripted server,
    else the name the server gave (a dated snapshot, an Azure deployment's model)."""
    return "scripted" if model.startswith(SCRIPTED_MODEL_PREFIX) else model


@dataclass(frozen=True)
class ModelInfo:
    """One model's known limits."""

    name: str
    context_window: int
    #: Reasoning efforts the model accepts; empty for models that do not reason.
    efforts: tuple[str, ...] = ()
    #: Whether the model takes images as input.
    images: bool = True
    #: False when the name matched nothing in the table.
    known: bool = True

    @property
    def reasons(self) -> bool:
        return bool(self.efforts)


_GPT5_CODEX_MAX = ("low", "medium", "high", "xhigh")
_GPT5_CODEX = ("low", "medium", "high")
_GPT5 = ("minimal", "low", "medium", "high")
_O_SERIES = ("low", "medium", "high")

KNOWN_MODELS: dict[str, ModelInfo] = {
    info.name: info
    for info in (
        ModelInfo("gpt-5.1-codex-max", 272_000, _GPT5_CODEX_MAX),
        ModelInfo("gpt-5.1-codex-mini", 272_000, ("medium", "high")),
        ModelInfo("gpt-5.1-codex", 272_000, _GPT5_CODEX),
        ModelInfo("gpt-5.1", 272_000, ("none", "low", "medium", "high")),
        ModelInfo("gpt-5.2-codex", 272_000, _GPT5_CODEX_MAX),
        ModelInfo("gpt-5.2", 272_000, ("none", "low", "medium", "high", "xhigh")),
        ModelInfo("gpt-5-codex", 272_000, _GPT5_CODEX),
        ModelInfo("gpt-5", 272_000, _GPT5),
        ModelInfo("gpt-5-mini", 272_000, _GPT5),
        ModelInfo("gpt-5-nano", 272_000, _GPT5),
        ModelInfo("o3", 200_000, _O_SERIES),
        ModelInfo("o4-mini", 200_000, _O_SERIES),
        ModelInfo("gpt-4.1", 1_047_576),
        ModelInfo("gpt-4o", 128_000),
    )
}


def _entry_from_mapping(name: str, value: Mapping[str, Any], base: ModelInfo | None) -> ModelInfo:
    unknown = set(value) - {"context_window", "efforts", "images"}
    if unknown:
        raise ConfigError(
            f"CodexMax.models[{name!r}] has unknown keys {sorted(unknown)}; "
            "use context_window, efforts, images"
        )
    info = base or ModelInfo(name, UNKNOWN_CONTEXT_WINDOW)
    window = value.get("context_window", info.context_window)
    if not isinstance(window, int) or isinstance(window, bool) or window < 1_000:
        raise ConfigError(
            f"CodexMax.models[{name!r}].context_window must be a whole number of tokens "
            f"(at least 1000), not {window!r}"
        )
    efforts = value.get("efforts", info.efforts)
    if not isinstance(efforts, (list, tuple)) or any(e not in EFFORTS for e in efforts):
        raise ConfigError(
            f"CodexMax.models[{name!r}].efforts must be a list drawn from {', '.join(EFFORTS)}"
        )
    images = value.get("images", info.images)
    if not isinstance(images, bool):
        raise ConfigError(f"CodexMax.models[{name!r}].images must be true or false")
    return replace(
        info, name=name, context_window=window, efforts=tuple(efforts), images=images, known=True
    )


def lookup_model(name: str, overrides: Mapping[str, Any] | None = None) -> ModelInfo:
    """The entry for ``name``: an override, else the table (exact or longest prefix)."""
    table = dict(KNOWN_MODELS)
    for key, value in (overrides or {}).items():
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"CodexMax.models[{key!r}] must be a mapping such as "
                "{'context_window': 131072, 'efforts': ['low', 'high']}"
            )
        table[key] = _entry_from_mapping(key, value, _match(table, key))
    found = _match(table, name)
    if found is None:
        return ModelInfo(name, UNKNOWN_CONTEXT_WINDOW, (), True, known=False)
    return replace(found, name=name) if found.name != name else found


def _match(table: Mapping[str, ModelInfo], name: str) -> ModelInfo | None:
    if name in table:
        return table[name]
    best: ModelInfo | None = None
    for key, info in table.items():
        if name.startswith(key) and (best is None or len(key) > len(best.name)):
            best = info
    return best
