"""Counting tokens between the server's own reports.

The usage a server reports is the truth; this only estimates what was added since. With
``CodexMax.tokenizer = "auto"`` it uses tiktoken's ``o200k_base`` (the encoding of the
GPT-5 family). tiktoken downloads that encoding's data file on first use and caches it;
a machine that cannot download it can point ``CodexMax.tiktoken_file`` at a local copy.

When the encoding cannot be loaded, or with ``tokenizer = "estimate"``, the count is the
documented estimate: **one token per 4 bytes of UTF-8, rounded up** (the Codex CLI's own
estimate). It overcounts English prose a little and undercounts dense non-Latin scripts;
a one-time notice in the log says the estimate is in use, and why.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..config import CodexMax

__all__ = ["IMAGE_TOKENS", "TokenCounter", "estimate_tokens"]

log = logging.getLogger("jupyter_codexmax.tokens")

#: What one image counts for (a 512x512 tile at high detail and its base cost).
IMAGE_TOKENS = 765
#: Per-item framing overhead (role, type markers).
ITEM_OVERHEAD = 4


class _Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


def estimate_tokens(text: str) -> int:
    """The documented estimate: bytes of UTF-8 divided by 4, rounded up."""
    return (len(text.encode("utf-8")) + 3) // 4


_cache_lock = threading.Lock()
_cache: dict[str, tuple[_Encoding | None, str]] = {}
#: Loads that outlived their wait: a later counter uses them once they finish.
_pending: dict[str, Future[_Encoding]] = {}
_patch_lock = threading.Lock()
_noticed: set[str] = set()


def _load_o200k() -> _Encoding:
    import tiktoken

    return tiktoken.get_encoding("o200k_base")


def _load_o200k_from_file(path: str) -> _Encoding:
    """o200k_base with its ranks read from a local ``.tiktoken`` file.

    tiktoken defines the encoding (its split pattern and special tokens) in
    ``tiktoken_ext.openai_public.o200k_base``, which fetches the ranks itself; we let it
    build the definition with our ranks instead, so nothing is downloaded.
    """
    import tiktoken
    import tiktoken.load
    import tiktoken_ext.openai_public as public

    ranks = tiktoken.load.load_tiktoken_bpe(path)
    with _patch_lock:
        original = public.load_tiktoken_bpe
        public.load_tiktoken_bpe = lambda *args, **kwargs: ranks
        try:
            spec = public.o200k_base()
        finally:
            public.load_tiktoken_bpe = original
    return tiktoken.Encoding(**spec)


def _load(tiktoken_file: str, timeout: float) -> tuple[_Encoding | None, str]:
    """(encoding, source) or (None, why not). Bounded by ``timeout`` seconds: tiktoken's
    download has no timeout of its own, and a blocked network must not hang us."""
    key = tiktoken_file or "<download>"
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        late = _pending.get(key)
    if late is not None:
        if not late.done():
            return None, "tiktoken's o200k_base is still loading"
        with _cache_lock:
            _pending.pop(key, None)
        try:
            result: tuple[_Encoding | None, str] = (late.result(), "tiktoken o200k_base")
        except Exception as exc:
            result = (None, f"tiktoken's o200k_base could not be loaded ({type(exc).__name__})")
        with _cache_lock:
            _cache[key] = result
        return result
    loader = (lambda: _load_o200k_from_file(tiktoken_file)) if tiktoken_file else _load_o200k
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="codexmax-tiktoken")
    future = pool.submit(loader)
    pool.shutdown(wait=False)
    try:
        encoding = future.result(timeout=timeout)
        result = (
            encoding,
            f"tiktoken o200k_base ({'from ' + tiktoken_file if tiktoken_file else 'cached'})",
        )
    except FutureTimeout:
        # Not cached: the load goes on in the background, for later counters.
        with _cache_lock:
            _pending[key] = future
        return None, f"loading tiktoken's o200k_base took longer than {timeout:g} s"
    except Exception as exc:
        if tiktoken_file:
            reason = " ".join(str(exc).split())[:160] or type(exc).__name__
            result = (None, f"tiktoken's o200k_base could not load {tiktoken_file}: {reason}")
        else:
            # Download failures carry pages of nested detail; the kind is what helps.
            result = (
                None,
                f"tiktoken's o200k_base data could not be downloaded ({type(exc).__name__})",
            )
    with _cache_lock:
        _cache.setdefault(key, result)
        return _cache[key]


class TokenCounter:
    """Counts tokens of text and of items. Loads its encoding on first use."""

    def __init__(
        self, *, mode: str = "auto", tiktoken_file: str = "", load_timeout: float = 10.0
    ) -> None:
        self.mode = mode
        self.tiktoken_file = tiktoken_file
        self.load_timeout = load_timeout
        self._encoding: _Encoding | None = None
        self._source: str | None = None

    @classmethod
    def from_settings(cls, settings: CodexMax) -> TokenCounter:
        return cls(
            mode=settings.tokenizer,
            tiktoken_file=settings.tiktoken_file,
            load_timeout=settings.tokenizer_load_timeout,
        )

    def _ensure(self) -> None:
        if self._source is not None:
            return
        if self.mode == "estimate":
            self._source = "estimate (CodexMax.tokenizer = 'estimate')"
            return
        encoding, source = _load(self.tiktoken_file, self.load_timeout)
        self._encoding = encoding
        if encoding is None:
            self._source = f"estimate: {source}"
            if source not in _noticed:
                _noticed.add(source)
                log.warning(
                    "token counts between server reports are estimated (1 token per 4 bytes) "
                    "because %s. To count exactly offline, set CodexMax.tiktoken_file to a "
                    "local o200k_base.tiktoken.",
                    source,
                )
        else:
            self._source = source

    @property
    def exact(self) -> bool:
        """Whether counts come from the real encoding."""
        self._ensure()
        return self._encoding is not None

    @property
    def source(self) -> str:
        """Where counts come from, in words (for ``doctor`` and status displays)."""
        self._ensure()
        assert self._source is not None
        return self._source

    def count(self, text: str) -> int:
        self._ensure()
        if self._encoding is None:
            return estimate_tokens(text)
        return len(self._encoding.encode_ordinary(text))

    def count_items(self, items: Iterable[dict[str, Any]]) -> int:
        """Tokens in a list of items: text counted, each image at :data:`IMAGE_TOKENS`,
        encrypted content at the estimate (it is opaque to any tokenizer)."""
        total = 0
        for item in items:
            total += ITEM_OVERHEAD + self._count_value(item)
        return total

    def _count_value(self, value: Any) -> int:
        if isinstance(value, str):
            return self.count(value)
        if isinstance(value, list):
            return sum(self._count_value(v) for v in value)
        if not isinstance(value, dict):
            return self.count(json.dumps(value)) if value is not None else 0
        if value.get("type") == "input_image":
            return IMAGE_TOKENS
        total = 0
        for key, sub in value.items():
            if key in ("id", "type", "status", "call_id", "annotations", "detail"):
                continue
            if key == "encrypted_content" and isinstance(sub, str):
                total += estimate_tokens(sub)
            else:
                total += self._count_value(sub)
        return total
