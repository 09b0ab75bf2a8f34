"""Finding secrets in text, in every form a program may print them.

A secret shows up plain, and also as a program turns it around: reversed, in upper or
lower case, rot13, base64 (standard or URL-safe, at any of the three alignments it can have
inside a longer encoded text, and wrapped over lines), base32, hex (lower or upper case),
percent-encoded or as JSON ``\\u`` escapes, spelt out with separators between its
characters (spaces, new lines, ``', '`` of a printed list), as a list of character codes,
or cut in pieces (``print(key[:20]); print(key[20:])``). :class:`SecretForms` holds one
secret's forms; :func:`find_spans` finds them in a text.

Every form is matched by its *fragments*: any run of at least ``fragment`` characters of a
form is masked, so a piece is caught wherever it was cut: 8 characters of an API key that
looks random (20 characters or more, letters and digits; :func:`forms_of` with ``key``),
12 of any other secret (a password, a URL with one: their pieces can be words), 16 of its
base64 or base32, 24 of its hex. A run that long cannot occur by chance in a real
credential's forms. Secrets shorter than that are matched whole.

How it stays fast: each form is cut into aligned chunks of half the fragment length; any
fragment contains one whole chunk, so a text is searched for the chunks (C-speed
substring search), and only around a chunk found is the match grown to its full length.
"""

from __future__ import annotations

import base64
import codecs
import re
from functools import lru_cache

__all__ = ["SecretForms", "find_spans", "forms_of"]

#: The least run of a form that is masked (a whole secret shorter than it is matched whole).
FRAGMENT = {"plain": 12, "random": 8, "base64": 16, "hex": 24}


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

    def __init__(self, secret: str, key: bool = False) -> None:
        self.secret = secret
        raw = secret.encode("utf-8")
        random = (
            key
            and len(secret) >= 20
            and any(c.isdigit() for c in secret)
            and any(c.isalpha() for c in secret)
        )
        piece = FRAGMENT["random"] if random else FRAGMENT["plain"]
        # Every secret: plain, reversed, base64, hex. An API key (the one secret a program
        # is asked to leak, and random) also: case changes, rot13, base32, percent and JSON
        # escapes, character codes.
        texts = [secret, secret[::-1]]
        if key:
            texts += [secret.upper(), secret.lower(), codecs.encode(secret, "rot13")]
        forms = [_Form(text, piece) for text in dict.fromkeys(texts)]
        if len(raw) >= 8:
            encoded = [*_base64_forms(raw), *(_base32_forms(raw) if key else [])]
            forms += [_Form(text, FRAGMENT["base64"]) for text in encoded]
            hexes = [raw.hex(), raw.hex().upper()]
            if key:
                hexes += [
                    "".join(f"%{b:02X}" for b in raw),
                    "".join(f"%{b:02x}" for b in raw),
                    "".join(f"\\u{ord(c):04x}" for c in secret),
                    "".join(f"\\u{ord(c):04X}" for c in secret),
                ]
            forms += [_Form(text, FRAGMENT["hex"]) for text in hexes]
        self.forms = forms
        # Spelt out: every character, with a few separators between each (blanks, new lines,
        # the quotes and commas of a printed list); or as a list of character codes.
        self.patterns: list[re.Pattern[str]] = []
        if len(secret) >= FRAGMENT["plain"]:
            self.patterns.append(
                re.compile(r"[^A-Za-z0-9]{1,5}".join(re.escape(ch) for ch in secret))
            )
            if key:
                codes = r"\D{1,4}".join(str(ord(ch)) for ch in secret)
                self.patterns.append(re.compile(rf"(?<!\d){codes}(?!\d)"))


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


def _base32_forms(raw: bytes) -> list[str]:
    """The secret's base32 inside any longer encoded text (five byte alignments)."""
    found = []
    for pad in range(5):
        text = base64.b32encode(b"\0" * pad + raw).decode("ascii")
        start = -(-8 * pad // 5)
        end = (8 * (pad + len(raw))) // 5
        if end - start >= 8:
            found.append(text[start:end])
    return found


@lru_cache(maxsize=256)
def forms_of(secret: str, key: bool = False) -> SecretForms:
    """One secret's forms (cached); ``key``: an API key, whose shorter pieces count."""
    return SecretForms(secret, key)


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
                if right - left >= form.minimum and (
                    right - left >= FRAGMENT["plain"] or _looks_random(text[left:right])
                ):
                    spans.append((left, right))
                    # Occurrences inside this match add nothing (a periodic secret in a long
                    # run of the same character would otherwise cost a match per position).
                    start = text.find(chunk, max(start + 1, right - len(chunk) + 1))
                else:
                    start = text.find(chunk, start + 1)
    first, code = forms.secret[:1], str(ord(forms.secret[0])) if forms.secret else ""
    for pattern in forms.patterns:
        if first in text or code in text:
            spans.extend(m.span() for m in pattern.finditer(text))
    return spans


def _looks_random(piece: str) -> bool:
    """Whether a short piece of a key is random-looking (two of lower case, upper case and
    digits), not a word the key happens to contain (``sk-scripted-test-key``)."""
    kinds = (
        any(c.islower() for c in piece),
        any(c.isupper() for c in piece),
        any(c.isdigit() for c in piece),
    )
    return sum(kinds) >= 2


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
