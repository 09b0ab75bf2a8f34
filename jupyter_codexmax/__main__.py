"""``python -m jupyter_codexmax`` runs the command line."""

from .cli import main

main()
