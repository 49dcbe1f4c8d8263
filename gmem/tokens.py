"""Token counts for the per-role memory budget, computed without touching the network.

tiktoken fetches its rank files from a blob store on first use, which fails on offline
machines and stalls a first recall for seconds elsewhere. The ``bpe-openai`` package ships
the same encodings (``cl100k_base`` and ``o200k_base``: ranks, pattern and special
tokens), so gmem hands its definition to tiktoken's public ``Encoding`` constructor and
never downloads. Without ``bpe-openai``, tiktoken's own ``get_encoding`` is used only when
its cache already holds the file, so it has nothing to fetch.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tiktoken

from gmem.errors import ConfigError, TokenizerUnavailableError, UserInputError

if TYPE_CHECKING:
    from gmem.config import MemoryConfig

INSTALL_HINT = "pip install bpe-openai"
#: The encodings bpe-openai ships, and where tiktoken would download each from.
_BUNDLED = ("cl100k_base", "o200k_base")
_BLOB_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"


def bundled_ranks_path(filename: str) -> Path | None:
    """The gzipped ranks file inside ``bpe-openai``, located without importing it."""
    try:
        spec = importlib.util.find_spec("bpe_openai")
    except (ImportError, ValueError):
        return None
    for root in (spec.submodule_search_locations or []) if spec else []:
        packaged = Path(root) / "data" / f"{filename}.gz"
        if packaged.is_file():
            return packaged
    return None


def _bundled_definition(name: str) -> dict[str, Any] | None:
    """bpe-openai's definition of ``name`` (the keyword arguments of ``tiktoken.Encoding``)."""
    try:
        from bpe_openai import registry
    except ImportError:
        return None
    definition: dict[str, Any] = registry.ENCODING_CONSTRUCTORS[name]()
    return definition


def _in_tiktoken_cache(name: str) -> bool:
    """Whether tiktoken's own cache holds ``name`` (its rules for where the cache is)."""
    cache_dir: Path | None = Path(tempfile.gettempdir()) / "data-gym-cache"
    for variable in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if variable in os.environ:
            cache_dir = Path(os.environ[variable]) if os.environ[variable] else None
            break
    if cache_dir is None:
        return False
    return (cache_dir / hashlib.sha1(_BLOB_URL.format(name).encode()).hexdigest()).is_file()


_load_lock = threading.Lock()


@functools.cache
def _load_encoding_once(name: str) -> tiktoken.Encoding:
    if name not in tiktoken.list_encoding_names():
        raise ConfigError(f"unknown tokenizer {name!r}; use one of {', '.join(_BUNDLED)}")
    if name not in _BUNDLED:
        raise TokenizerUnavailableError(
            f"tokenizer {name} is only available by download, which gmem does not do; "
            f"choose one of {', '.join(_BUNDLED)}"
        )
    definition = _bundled_definition(name)
    if definition is not None:
        return tiktoken.Encoding(**definition)
    if _in_tiktoken_cache(name):
        return tiktoken.get_encoding(name)
    raise TokenizerUnavailableError(
        f"no local copy of {name} (gmem never downloads it); run `{INSTALL_HINT}`"
    )


def load_encoding(name: str = "cl100k_base") -> tiktoken.Encoding:
    """The named tiktoken encoding, built once per process from local rank files."""
    with _load_lock:  # parsing the ranks takes a while; do it once even under threads
        return _load_encoding_once(name)


class TokenCounter:
    """Counts and cuts text in the tokens of the configured encoding.

    Text is encoded as ordinary text: a literal ``<|endoftext|>`` inside an agent message
    is counted like any other characters instead of raising, since memory content is data.
    """

    def __init__(self, encoding: str = "cl100k_base") -> None:
        self.name = encoding
        self.encoding = load_encoding(encoding)

    @classmethod
    def from_config(cls, config: MemoryConfig) -> TokenCounter:
        return cls(config.tokenizer)

    def encode(self, text: str) -> list[int]:
        return self.encoding.encode_ordinary(text)

    def count(self, text: str) -> int:
        return len(self.encoding.encode_ordinary(text))

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of ``text`` that is whole characters and fits ``max_tokens``.

        A cut between tokens can split a multi-byte character, and the prefix can encode
        differently once the rest is gone, so the cut steps back until both are fine.
        """
        if max_tokens < 0:
            raise UserInputError(f"max_tokens must be >= 0, got {max_tokens}")
        tokens = self.encoding.encode_ordinary(text)
        if len(tokens) <= max_tokens:
            return text
        for keep in range(max_tokens, 0, -1):
            try:
                prefix = self.encoding.decode_bytes(tokens[:keep]).decode("utf-8")
            except UnicodeDecodeError:
                continue
            if self.count(prefix) <= max_tokens:
                return prefix
        return ""

    def __repr__(self) -> str:
        return f"TokenCounter({self.name!r})"


__all__ = ["TokenCounter", "TokenizerUnavailableError", "bundled_ranks_path", "load_encoding"]
