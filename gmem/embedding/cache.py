"""Recent vectors remembered in front of any embedder.

The engine embeds the same short texts again and again (a task at recall and at finish,
insight texts at every derivation and merge), so :class:`Memory` puts a
:class:`CachedEmbedder` in front of the embedder it is given. Being a wrapper, not a
feature of each embedder, it is written once, and the embedders themselves stay honest to
test: a second call reaches the model.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from gmem.embedding.protocol import FloatMatrix, TextEmbedder, WrappedEmbedder, check_texts

#: Texts whose vectors one cache keeps (about 6 MiB at 384 dimensions).
CACHE_SIZE = 4096


class CachedEmbedder(WrappedEmbedder):
    """``inner``'s vectors, each text encoded once while it stays among the last ``size``.

    Safe to share between threads (the async twins of Memory and Task embed from worker
    threads); two threads missing the same text may both encode it, which costs time,
    never correctness.
    """

    def __init__(self, inner: TextEmbedder, size: int = CACHE_SIZE) -> None:
        super().__init__(inner)
        self.size = size
        self._rows: OrderedDict[str, FloatMatrix] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        items = check_texts(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            found = {t: self._rows[t] for t in items if t in self._rows}
        missing = list(dict.fromkeys(t for t in items if t not in found))
        if missing:
            fresh = self.inner.embed(missing)
            if not _well_formed(fresh, len(missing), self.dim):
                # Not the cache's to judge or keep: the embedder's own answer for the whole
                # request goes on to whoever checks it (Memory's CheckedEmbedder).
                return fresh if missing == items else self.inner.embed(items)
            found.update(zip(missing, fresh, strict=True))
        with self._lock:
            for text, row in found.items():
                self._rows[text] = row
                self._rows.move_to_end(text)
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)
        return np.stack([found[t] for t in items]).astype(np.float32, copy=False)


def _well_formed(rows: object, count: int, dim: int) -> bool:
    return (
        isinstance(rows, np.ndarray)
        and rows.shape == (count, dim)
        and bool(np.isfinite(rows).all())
    )


def cached(embedder: TextEmbedder) -> TextEmbedder:
    """``embedder`` behind a cache, unless a cache already stands in its chain of wrappers
    (Memory hands the reasoner its checked, cached embedder; a second cache would only
    hold the same vectors twice)."""
    layer: TextEmbedder = embedder
    while True:
        if isinstance(layer, CachedEmbedder):
            return embedder
        if not isinstance(layer, WrappedEmbedder):
            return CachedEmbedder(embedder)
        layer = layer.inner
