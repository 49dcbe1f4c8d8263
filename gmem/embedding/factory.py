"""Choosing an embedder from the short spec strings of configuration and the CLI."""

from __future__ import annotations

import os
import warnings

from gmem.embedding.cache import CachedEmbedder
from gmem.embedding.hashing import HashingEmbedder
from gmem.embedding.minilm import MiniLMEmbedder
from gmem.embedding.openai_endpoint import OpenAIEmbedder
from gmem.embedding.protocol import TextEmbedder
from gmem.errors import ConfigError, EmbedderUnavailableError


def make_embedder(spec: str | None = None) -> CachedEmbedder:
    """An embedder from a short spec string, as used in configuration and on the CLI,
    behind a cache (what asks by spec is the engine, which repeats texts; ``.inner`` is the
    embedder itself).

    ``minilm`` (the default; ``minilm:numpy`` or ``minilm:sentence-transformers`` pins the
    runtime), ``hashing`` or ``hashing:<dim>``, ``openai`` or ``openai:<model>``, and
    ``auto``: MiniLM when its weights are installed, else hashing with a warning. Without a
    spec, ``GMEM_EMBEDDER`` is read, then ``minilm``.
    """
    return CachedEmbedder(_choose((spec or os.environ.get("GMEM_EMBEDDER") or "minilm").strip()))


def _choose(spec: str) -> TextEmbedder:
    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    if kind == "minilm":
        backend = arg or "auto"
        if backend not in ("auto", "numpy", "sentence-transformers"):
            raise ConfigError(
                f"unknown MiniLM backend {backend!r} in embedder spec {spec!r}; "
                "use minilm, minilm:numpy or minilm:sentence-transformers"
            )
        return MiniLMEmbedder(backend=backend)  # type: ignore[arg-type]
    if kind == "hashing":
        if not arg:
            return HashingEmbedder()
        if not arg.isdigit():
            raise ConfigError(f"hashing dimension must be an integer in {spec!r}, e.g. hashing:256")
        return HashingEmbedder(int(arg))
    if kind == "openai":
        return OpenAIEmbedder(arg or None)
    if kind == "auto":
        try:
            return MiniLMEmbedder()
        except EmbedderUnavailableError as exc:
            warnings.warn(
                f"using the lexical hashing embedder because MiniLM is unavailable: {exc}",
                stacklevel=2,
            )
            return HashingEmbedder()
    raise ConfigError(f"unknown embedder {spec!r}; use minilm, hashing, openai:<model> or auto")
