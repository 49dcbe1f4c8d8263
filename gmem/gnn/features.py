"""Node features and the procedural training signal, computed from what the store holds.

A trace is summarised by the shingles of its action skeleton (:mod:`gmem.procedure`),
hashed into a fixed number of slots and weighted by inverse document frequency over the
namespace: "go to the countertop" opens most trajectories and says little, "heat <obj>
with microwave" says what the task needed. Two successful tasks whose weighted vectors
point the same way share a procedure; those pairs are the label-free positives of the
encoder's contrastive loss and the targets of the MLP baseline. Nothing here needs torch.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from graph_store.model import Outcome

FloatMatrix = npt.NDArray[np.float32]
#: Hashed slots for the roles that spoke in a trace.
ROLE_SLOTS = 8
#: Outcome one-hot (success, failure, unknown), success rate, log attempts.
QUERY_EXTRA = 5
#: Role shares, log length, outcome of the summarised attempt.
TRACE_EXTRA = ROLE_SLOTS + 2
#: Score and retired flag.
INSIGHT_EXTRA = 2


@lru_cache(maxsize=1 << 16)
def slot(feature: str, dim: int) -> int:
    """A stable hash slot: Python's ``hash`` changes per process, weights must not.

    Cached: a namespace repeats a few thousand shingles over every trace."""
    digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % dim


class ShingleWeights:
    """Inverse document frequencies of skeleton shingles over a set of traces."""

    def __init__(self, document_frequency: Counter[str], documents: int) -> None:
        self.df = document_frequency
        self.documents = documents

    @classmethod
    def fit(cls, shingle_sets: Iterable[frozenset[str]]) -> ShingleWeights:
        df: Counter[str] = Counter()
        n = 0
        for shingles in shingle_sets:
            df.update(shingles)
            n += 1
        return cls(df, n)

    def weight(self, shingle: str) -> float:
        # Smoothed so an unseen shingle (a new task's) weighs like the rarest seen one.
        return math.log((1 + self.documents) / (1 + self.df.get(shingle, 0))) + 1.0

    def vector(self, shingles: frozenset[str], dim: int) -> FloatMatrix:
        out = np.zeros(dim, dtype=np.float32)
        for s in shingles:
            out[slot(s, dim)] += self.weight(s)
        norm = float(np.linalg.norm(out))
        return out / norm if norm > 0 else out

    def to_json(self) -> dict[str, object]:
        return {"documents": self.documents, "df": dict(self.df)}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ShingleWeights:
        df = data.get("df", {})
        docs = data.get("documents", 0)
        assert isinstance(df, dict) and isinstance(docs, int)
        return cls(Counter({str(k): int(v) for k, v in df.items()}), docs)


def query_extra(outcome: Outcome, successes: int, attempts: int) -> list[float]:
    return [
        float(outcome == Outcome.SUCCESS),
        float(outcome == Outcome.FAILURE),
        float(outcome == Outcome.UNKNOWN),
        successes / attempts if attempts else 0.0,
        math.log1p(attempts) / 3.0,
    ]


#: What a task nobody has attempted looks like: its outcome is not known yet.
NEW_QUERY_EXTRA = query_extra(Outcome.UNKNOWN, 0, 0)


def trace_extra(roles: Sequence[str], steps: int, success: bool) -> list[float]:
    shares = [0.0] * ROLE_SLOTS
    for role in roles:
        shares[slot(role, ROLE_SLOTS)] += 1.0 / max(len(roles), 1)
    return [*shares, math.log1p(steps) / 4.0, float(success)]


def procedure_pairs(
    vectors: FloatMatrix, k: int, threshold: float, block: int = 1024
) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, whose procedure vectors' cosine is at least ``threshold``,
    at most ``k`` per row (each row's best). Rows of zeros pair with nothing.

    Row blocks keep memory at ``block * n`` floats, so ten thousand successes need no
    dense ``n * n`` matrix.
    """
    n = vectors.shape[0]
    if n < 2:
        return np.zeros((2, 0), dtype=np.int64)
    kk = min(k, n - 1)
    keys: list[np.ndarray] = []
    for start in range(0, n, block):
        sims = vectors[start : start + block] @ vectors.T
        rows = np.arange(sims.shape[0])
        sims[rows, rows + start] = -1.0
        top = np.argpartition(sims, n - kk, axis=1)[:, n - kk :]
        good = np.take_along_axis(sims, top, axis=1) >= threshold
        i = np.broadcast_to((rows + start)[:, None], top.shape)[good]
        j = top[good]
        keys.append(np.minimum(i, j).astype(np.int64) * n + np.maximum(i, j))
    found = np.unique(np.concatenate(keys)) if keys else np.zeros(0, dtype=np.int64)
    if found.size == 0:
        return np.zeros((2, 0), dtype=np.int64)
    return np.stack([found // n, found % n])
