"""Token counting: the estimate, a local .tiktoken file, and the fallback notice.
None of these tests downloads anything."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from jupyter_codexmax.agent import tokens
from jupyter_codexmax.agent.tokens import IMAGE_TOKENS, TokenCounter, estimate_tokens
from jupyter_codexmax.providers.items import user_message


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "_cache", {})
    monkeypatch.setattr(tokens, "_noticed", set())


def test_estimate_is_bytes_over_four_rounded_up() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("é") == 1  # two bytes
    counter = TokenCounter(mode="estimate")
    assert counter.count("x" * 400) == 100
    assert not counter.exact
    assert "estimate" in counter.source


def test_local_tiktoken_file(tmp_path: Path) -> None:
    """A small rank file in the .tiktoken format: each byte, plus two merges."""
    ranks = {bytes([b]): b for b in range(256)}
    ranks[b"he"] = 256
    ranks[b"hel"] = 257
    path = tmp_path / "tiny.tiktoken"
    path.write_text("".join(f"{base64.b64encode(k).decode()} {v}\n" for k, v in ranks.items()))
    counter = TokenCounter(tiktoken_file=str(path))
    assert counter.exact
    assert str(path) in counter.source
    assert counter.count("hel") == 1
    assert counter.count("hello") == 3  # "hel" + "l" + "o"
    assert counter.count("<|endoftext|>") > 1, "special-token text is counted as ordinary text"


def test_missing_file_falls_back_with_one_notice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="jupyter_codexmax.tokens")
    missing = str(tmp_path / "nope.tiktoken")
    first = TokenCounter(tiktoken_file=missing)
    assert first.count("abcdefgh") == 2
    assert not first.exact
    assert "nope.tiktoken" in first.source
    TokenCounter(tiktoken_file=missing).count("again")
    notices = [r for r in caplog.records if "estimated" in r.getMessage()]
    assert len(notices) == 1
    assert "CodexMax.tiktoken_file" in notices[0].getMessage()


def test_slow_loader_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    release = threading.Event()

    def hang() -> None:
        release.wait(10)
        raise RuntimeError("unreachable network")

    monkeypatch.setattr(tokens, "_load_o200k", hang)
    counter = TokenCounter(load_timeout=0.2)
    try:
        assert counter.count("abcd") == 1
        assert "longer than 0.2 s" in counter.source
    finally:
        release.set()


def test_items_count_text_and_images() -> None:
    counter = TokenCounter(mode="estimate")
    plain = counter.count_items([user_message("x" * 40)])
    with_image = counter.count_items(
        [user_message("x" * 40, images=["data:image/png;base64," + "A" * 100_000])]
    )
    assert with_image - plain == IMAGE_TOKENS
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "e" * 400}
    assert counter.count_items([reasoning]) == tokens.ITEM_OVERHEAD + 100


def test_a_load_that_outlives_its_wait_is_used_when_it_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    release = threading.Event()
    real = tokens._load_o200k_from_file
    path = tmp_path / "tiny.tiktoken"
    path.write_text("".join(f"{base64.b64encode(bytes([b])).decode()} {b}\n" for b in range(256)))

    def slow(file: str) -> object:
        release.wait(10)
        return real(file)

    monkeypatch.setattr(tokens, "_load_o200k_from_file", slow)
    first = TokenCounter(tiktoken_file=str(path), load_timeout=0.1)
    assert not first.exact
    release.set()
    for _ in range(100):
        later = TokenCounter(tiktoken_file=str(path), load_timeout=0.1)
        if later.exact:
            break
        import time

        time.sleep(0.05)
    assert later.exact
