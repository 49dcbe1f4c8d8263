"""Token counts for the per-role memory budget, computed without touching the network.

tiktoken fetches its rank files from a blob store on first use, which fails on offline
machines and stalls a first recall for seconds elsewhere. The ``bpe-openai`` package ships
the same files (``cl100k_base`` and ``o200k_base``), so gmem builds the encoding from the
bundled copy, checks it against the hash tiktoken expects, and never downloads. tiktoken's
own cache is used only when the bundled file is absent and the cache already holds it.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import importlib
import importlib.util
import os
import tempfile
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tiktoken

from gmem.errors import ConfigError, TokenizerUnavailableError, UserInputError

if TYPE_CHECKING:
    from gmem.config import MemoryConfig

INSTALL_HINT = "pip install bpe-openai"
# tiktoken's encoding definitions (pattern strings, special tokens, file hashes). The
# module ships no type information, so it is imported as a plain module object.
openai_public = importlib.import_module("tiktoken_ext.openai_public")


def _parse_ranks(data: bytes, source: str) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    for number, line in enumerate(data.splitlines(), start=1):
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except ValueError as exc:  # binascii.Error is a ValueError
            raise TokenizerUnavailableError(
                f"line {number} of {source} is not 'base64 rank'; reinstall with `{INSTALL_HINT}`"
            ) from exc
    return ranks


def bundled_ranks_path(filename: str) -> Path | None:
    """The gzipped ranks file inside ``bpe-openai``, located without importing it.

    Importing ``bpe_openai`` would parse its own copy of the ranks (and warn about a
    deprecated API) just to read one file we already know the place of.
    """
    try:
        spec = importlib.util.find_spec("bpe_openai")
    except (ImportError, ValueError):
        return None
    for root in (spec.submodule_search_locations or []) if spec else []:
        packaged = Path(root) / "data" / f"{filename}.gz"
        if packaged.is_file():
            return packaged
    return None


def _bundled_ranks(filename: str) -> tuple[bytes, str] | None:
    packaged = bundled_ranks_path(filename)
    if packaged is None:
        return None
    return gzip.decompress(packaged.read_bytes()), f"bpe-openai's {filename}.gz"


def _tiktoken_cache_dir() -> Path | None:
    """Where tiktoken itself would have cached a download (same rules as tiktoken)."""
    for variable in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if variable in os.environ:
            return Path(os.environ[variable]) if os.environ[variable] else None
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def _cached_ranks(blobpath: str) -> tuple[bytes, str] | None:
    cache_dir = _tiktoken_cache_dir()
    if cache_dir is None:
        return None
    cached = cache_dir / hashlib.sha1(blobpath.encode()).hexdigest()
    if not cached.is_file():
        return None
    return cached.read_bytes(), f"tiktoken cache file {cached}"


def _offline_load_tiktoken_bpe(blobpath: str, expected_hash: str | None = None) -> dict[bytes, int]:
    """Stands in for ``tiktoken.load.load_tiktoken_bpe``: local copies, never a download."""
    filename = blobpath.rsplit("/", 1)[-1]
    for found in (_bundled_ranks(filename), _cached_ranks(blobpath)):
        if found is None:
            continue
        data, source = found
        if expected_hash is None or hashlib.sha256(data).hexdigest() == expected_hash:
            return _parse_ranks(data, source)
    raise TokenizerUnavailableError(
        f"no local copy of {filename} (gmem never downloads it); run `{INSTALL_HINT}` or "
        "choose tokenizer cl100k_base"
    )


def _refuse_download(*_args: Any, **_kwargs: Any) -> dict[bytes, int]:
    raise TokenizerUnavailableError(
        "this encoding is only available by download, which gmem does not do; "
        "choose tokenizer cl100k_base or o200k_base"
    )


def _offline_constructors() -> dict[str, Callable[[], dict[str, Any]]]:
    """tiktoken's own encoding definitions, rebound to load ranks only from local files.

    The pattern strings and special tokens stay tiktoken's (nothing is copied here), and
    tiktoken's module is left untouched: each constructor is re-created over a private
    copy of its globals in which the loader reads local files. Constructors that call
    each other (``o200k_harmony`` builds on ``o200k_base``) see the rebound versions.
    """
    namespace = dict(vars(openai_public))
    namespace["load_tiktoken_bpe"] = _offline_load_tiktoken_bpe
    namespace["data_gym_to_mergeable_bpe_ranks"] = _refuse_download
    for key, value in vars(openai_public).items():
        if isinstance(value, types.FunctionType) and value.__module__ == openai_public.__name__:
            namespace[key] = types.FunctionType(
                value.__code__, namespace, value.__name__, value.__defaults__, value.__closure__
            )
    return {
        name: namespace[constructor.__name__]
        for name, constructor in openai_public.ENCODING_CONSTRUCTORS.items()
    }


_load_lock = threading.Lock()


@functools.cache
def _load_encoding_once(name: str) -> tiktoken.Encoding:
    constructors = _offline_constructors()
    if name not in constructors:
        raise ConfigError(
            f"unknown tokenizer {name!r}; use one of {', '.join(sorted(constructors))}"
        )
    return tiktoken.Encoding(**constructors[name]())


def load_encoding(name: str = "cl100k_base") -> tiktoken.Encoding:
    """The named tiktoken encoding, built once per process from local rank files."""
    with _load_lock:  # parsing the ranks takes ~0.3 s; do it once even under threads
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
