"""What the engine needs from an embedder, and the checks every gmem embedder shares.

Every embedder returns float32 rows of unit length, so a dot product is a cosine and the
store can compare vectors from any of them the same way. An embedder's ``name``
identifies its vector space: two embedders with the same name produce comparable vectors
(the numpy and torch runtimes of MiniLM share one name).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from gmem.errors import EmbeddingDimensionError, UserInputError

FloatMatrix = NDArray[np.float32]


@runtime_checkable
class TextEmbedder(Protocol):
    """What the engine needs from an embedder; any object with these members will do."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """One unit-length float32 row per text, shape ``(len(texts), dim)``."""
        ...


def normalize_rows(vectors: NDArray[Any]) -> FloatMatrix:
    """Unit rows in float32; an all-zero row stays zero instead of turning into NaN."""
    out = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.maximum(norms, np.float32(1e-12), out=norms)
    return np.ascontiguousarray(out / norms, dtype=np.float32)


def one_line(text: str, limit: int = 200) -> str:
    """An error detail flattened to one short line, for gmem's one-line messages."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def check_texts(texts: Sequence[str]) -> list[str]:
    """The texts as a list, or a :class:`UserInputError` for what is not a list of strings."""
    if isinstance(texts, str):
        # A bare string is a Sequence[str] of characters: almost always a mistake.
        raise UserInputError("embed() takes a list of texts; wrap a single text as [text]")
    items = list(texts)
    for item in items:
        if not isinstance(item, str):
            raise UserInputError(f"embed() takes strings, got {type(item).__name__}")
    return items


class Embedder:
    """Validation, the empty case, normalization and the shape check, written once.

    Subclasses implement only ``_encode`` for a non-empty list of strings. Nothing is
    remembered between calls: :class:`gmem.embedding.cache.CachedEmbedder` does that, for
    any embedder, so what an embedder computes can be tested on its own.
    """

    name: str

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def _encode(self, texts: list[str]) -> NDArray[Any]:
        raise NotImplementedError

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        items = check_texts(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = normalize_rows(self._encode(items))
        if out.shape != (len(items), self.dim):
            raise EmbeddingDimensionError(
                f"embedder {self.name} returned shape {out.shape}, expected "
                f"({len(items)}, {self.dim}); check the embedding model setting"
            )
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class WrappedEmbedder:
    """An embedder in front of another (a cache, a check): the same name and dimension,
    since it changes neither the vector space nor the vectors."""

    def __init__(self, inner: TextEmbedder) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"
