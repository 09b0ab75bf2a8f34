"""Finding secrets in text, in every form a program may print them.

A secret shows up plain, and also as a program turns it around: reversed, base64 (standard
or URL-safe, at any of the three alignments it can have inside a longer encoded text, and
wrapped over lines), hex (lower or upper case), spelt out with spaces between its
characters, or cut in pieces (``print(key[:20]); print(key[20:])``). :class:`SecretForms`
holds one secret's forms; :func:`find_spans` finds them in a text.

Every form is matched by its *fragments*: any run of at least ``fragment`` characters of a
form (12 for the plain and reversed secret, 16 for base64, 24 for hex) is masked, so a
piece is caught wherever it was cut. A run that long cannot occur by chance in a real
credential's forms. Secrets shorter than that are matched whole.

How it stays fast: each form is cut into aligned chunks of half the fragment length; any
fragment contains one whole chunk, so a text is searched for the chunks (C-speed
substring search), and only around a chunk found is the match grown to its full length.
"""

from __future__ import annotations

import base64
import re
from functools import lru_cache

__all__ = ["SecretForms", "find_spans", "forms_of"]

#: The least run of a form that is masked (a whole secret shorter than it is matched whole).
FRAGMENT = {"plain": 12, "reversed": 12, "base64": 16, "hex": 24}


class _Form:
    """One form of a secret, and its chunks (offset, text)."""

    __slots__ = ("chunks", "minimum", "text")

    def __init__(self, text: str, minimum: int) -> None:
        self.text = text
        self.minimum = min(minimum, len(text))
        size = max(1, self.minimum // 2)
        self.chunks = [(i, text[i : i + size]) for i in range(0, len(text) - size + 1, size)]


class SecretForms:
    """Every form of one secret that is searched for."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        raw = secret.encode("utf-8")
        forms = [_Form(secret, FRAGMENT["plain"]), _Form(secret[::-1], FRAGMENT["reversed"])]
        if len(raw) >= 8:
            for text in _base64_forms(raw):
                forms.append(_Form(text, FRAGMENT["base64"]))
            forms.append(_Form(raw.hex(), FRAGMENT["hex"]))
            forms.append(_Form(raw.hex().upper(), FRAGMENT["hex"]))
        self.forms = forms
        # Spelt out: every character, with one or two blanks between each.
        self.spaced = (
            re.compile(r"[ \t]{1,2}".join(re.escape(ch) for ch in secret))
            if len(secret) >= FRAGMENT["plain"]
            else None
        )


def _base64_forms(raw: bytes) -> list[str]:
    """The secret's base64 as it reads inside any longer encoded text: for each of the three
    byte alignments, the characters that depend on the secret's bytes only."""
    found = []
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * pad + raw).decode("ascii")
            start = -(-8 * pad // 6)  # the first character past the padding's bits
            end = (8 * (pad + len(raw))) // 6  # the last one holding no later byte's bits
            if end - start >= 8:
                found.append(text[start:end])
    return list(dict.fromkeys(found))


@lru_cache(maxsize=256)
def forms_of(secret: str) -> SecretForms:
    return SecretForms(secret)


def find_spans(text: str, forms: SecretForms) -> list[tuple[int, int]]:
    """Where ``text`` holds a form of the secret (or a long enough piece of one)."""
    spans: list[tuple[int, int]] = []
    for form in forms.forms:
        target = form.text
        for offset, chunk in form.chunks:
            start = text.find(chunk)
            while start != -1:
                # Grow the match around the chunk, as far as text and form agree.
                left, right = start, start + len(chunk)
                at = offset
                while left > 0 and at > 0 and text[left - 1] == target[at - 1]:
                    left -= 1
                    at -= 1
                end = offset + len(chunk)
                while right < len(text) and end < len(target) and text[right] == target[end]:
                    right += 1
                    end += 1
                if right - left >= form.minimum:
                    spans.append((left, right))
                    # Occurrences inside this match add nothing (a periodic secret in a long
                    # run of the same character would otherwise cost a match per position).
                    start = text.find(chunk, max(start + 1, right - len(chunk) + 1))
                else:
                    start = text.find(chunk, start + 1)
    if forms.spaced is not None and forms.secret[0] in text:
        spans.extend(m.span() for m in forms.spaced.finditer(text))
    return spans


def mask_spans(text: str, spans: list[tuple[int, int]], mask: str) -> str:
    """``text`` with each span (merged where they overlap or touch) replaced by ``mask``."""
    if not spans:
        return text
    spans.sort()
    merged = [list(spans[0])]
    for start, end in spans[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    parts, last = [], 0
    for start, end in merged:
        parts.append(text[last:start])
        parts.append(mask)
        last = end
    parts.append(text[last:])
    return "".join(parts)
