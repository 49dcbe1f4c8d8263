"""A lexical stand-in for machines without the model and for tests that want fast encodes."""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
from collections import defaultdict
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gmem.embedding.protocol import Embedder
from gmem.errors import ConfigError

_WORD = re.compile(r"\w+")


@functools.lru_cache(maxsize=1 << 16)
def _feature_slot(feature: str, dim: int) -> tuple[int, float]:
    """Stable across processes (unlike ``hash``), so stored vectors stay comparable."""
    digest = int.from_bytes(
        hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little"
    )
    return digest % dim, (1.0 if digest >> 63 else -1.0)


class HashingEmbedder(Embedder):
    """Lexical vectors by feature hashing: shared words and spellings, not shared meaning.

    Features are lower-cased word unigrams, word bigrams (some word order) and character
    3-grams inside words (inflections and typos), each hashed to a signed slot; the sign
    keeps collisions from adding up in expectation. "Put the mug in the microwave" and
    "heat the cup" share almost nothing here although they mean much the same, so use this
    for tests, for demos on machines without the MiniLM weights, and where texts reuse a
    fixed vocabulary (task templates), not as a substitute for a semantic model.
    """

    UNIGRAM_WEIGHT = 1.0
    BIGRAM_WEIGHT = 0.7
    TRIGRAM_WEIGHT = 0.3

    def __init__(self, dim: int = 256) -> None:
        if dim < 8:
            raise ConfigError(f"HashingEmbedder needs dim >= 8, got {dim}")
        self._dim = dim
        # The version tag changes whenever the features do, so stores notice the switch.
        self.name = f"hashing-v1-{dim}"

    @property
    def dim(self) -> int:
        return self._dim

    @classmethod
    def features(cls, text: str) -> dict[str, float]:
        words: list[str] = _WORD.findall(text.lower())
        feats: defaultdict[str, float] = defaultdict(float)
        for word in words:
            feats["w:" + word] += cls.UNIGRAM_WEIGHT
            padded = f"<{word}>"
            for i in range(len(padded) - 2):
                feats["c:" + padded[i : i + 3]] += cls.TRIGRAM_WEIGHT
        for a, b in itertools.pairwise(words):
            feats[f"b:{a} {b}"] += cls.BIGRAM_WEIGHT
        if not feats:
            # Texts without words (empty, punctuation) share one direction, not a zero row.
            feats["empty"] = 1.0
        return feats

    def _encode(self, texts: list[str]) -> NDArray[Any]:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature, weight in self.features(text).items():
                slot, sign = _feature_slot(feature, self._dim)
                out[row, slot] += sign * weight
        return out
