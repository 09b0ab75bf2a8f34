"""Small helpers for text people read: counts with their nouns, text safe for a terminal."""

from __future__ import annotations

import re

__all__ = ["plural", "printable"]


def plural(n: int, noun: str) -> str:
    """``1 step``, ``2 steps``, ``0 steps``."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


#: Characters a terminal takes as commands (escape sequences, a carriage return that
#: overwrites the line, C1 controls) or that reorder what is shown (bidirectional
#: overrides): never written raw from what a model or a file says.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` safe to write to a terminal: control characters (but new lines and tabs)
    shown as escapes (``\\x1b``), so model output can neither clear the screen, forge lines,
    nor write the clipboard."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else
                       f"\\u{ord(m.group()):04x}", text)  # fmt: skip
