"""Small helpers for text people read: counts with their nouns."""

from __future__ import annotations

__all__ = ["plural"]


def plural(n: int, noun: str) -> str:
    """``1 step``, ``2 steps``, ``0 steps``."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"
