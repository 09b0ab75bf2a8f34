"""Where settings come from, and in which order: files, the environment, flags."""

from __future__ import annotations

import os
from copy import deepcopy
from typing import Any

from traitlets import Enum
from traitlets.config import Config, Configurable

from ..errors import ConfigError
from ..secrets import SecretTrait
from ._settings import CodexMax

__all__ = ["CONFIG_FILE_NAME", "env_config", "load_config_files", "load_settings"]

#: Base name of the Jupyter config file read by every surface.
CONFIG_FILE_NAME = "jupyter_codexmax_config"


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
