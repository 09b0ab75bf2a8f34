"""The ``jupyter codexmax`` command line (``jupyter-codexmax``)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    """Entry point; imports the application only when called."""
    from .app import main as run

    run(argv)
