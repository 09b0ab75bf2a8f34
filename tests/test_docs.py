"""The written docs stay true to the code they describe."""

from __future__ import annotations

from pathlib import Path

from jupyter_codexmax.config import CodexMax
from jupyter_codexmax.models import KNOWN_MODELS

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_setting_is_documented_with_its_environment_variable() -> None:
    text = (DOCS / "configuration.md").read_text()
    for name, trait in CodexMax.class_traits(config=True).items():
        assert f"`{name}`" in text, name
        env = trait.metadata.get("env")
        if env:
            assert f"`{env}`" in text, env
        assert trait.help.strip(), f"CodexMax.{name} has no help text"


def test_every_known_model_is_in_the_table() -> None:
    text = (DOCS / "configuration.md").read_text()
    for name, info in KNOWN_MODELS.items():
        assert name in text, name
        assert f"{info.context_window:,}" in text, name


def test_every_error_class_is_in_the_error_tree() -> None:
    from jupyter_codexmax import errors

    tree = errors.__doc__ or ""
    for name in errors.__all__:
        assert name in tree, name


def test_every_agent_option_is_in_the_help_usage_line() -> None:
    """``%agent help`` and docs/kernel.md show each ``%%agent`` option in the usage line."""
    from jupyter_codexmax.kernel.magics import HELP, _cell_options

    parser = _cell_options.parser
    options = [a.option_strings[0] for a in parser._actions if a.option_strings[0] != "-h"]
    usage = next(line for line in HELP.splitlines() if line.startswith("%%agent ["))
    doc_usage = next(
        line
        for line in (DOCS / "kernel.md").read_text().splitlines()
        if line.startswith("%%agent [")
    )
    for option in options:
        assert option in usage, option
        assert option in doc_usage, option
