"""Exact cosine top-k over one node kind, as a growing normalized float32 matrix.

Exact search never misses a neighbour, and up to tens of thousands of rows it costs
little next to the rest of a recall; past ``EmbeddedStore(ann_min_rows=...)`` rows the
store searches through ``graph_store.ann`` instead (with the ``ann`` extra installed).
Rows are soft-deleted and compacted when half are dead.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from graph_store import refusals
from graph_store.ops import Hit

Undo = Callable[[], None]
#: Query vectors scored per matrix product in :meth:`VectorIndex.search_many` (bounds the
#: score matrix it holds: rows x this many float32).
_SEARCH_CHUNK = 64


class VectorIndex:
    def __init__(self, dim: int, capacity: int = 1024) -> None:
        self.dim = dim
        self._mat = np.zeros((capacity, dim), dtype=np.float32)
        self._ns = np.zeros(capacity, dtype=np.int32)
        self._alive = np.zeros(capacity, dtype=bool)
        self._ids: list[str] = []
        self._pos: dict[str, int] = {}
        self._ns_codes: dict[str, int] = {}
        self._dead = 0
        # The scores of the last query vector, valid until the matrix changes: recall asks
        # for the same task's neighbours more than once (seeds, then a wider pool), and at
        # a hundred thousand rows one product with the matrix is most of a search.
        self._version = 0
        self._last: tuple[bytes, int, npt.NDArray[np.float32]] | None = None

    @classmethod
    def from_rows(
        cls,
        dim: int,
        ids: list[str],
        namespaces: list[str],
        matrix: npt.NDArray[np.float32],
    ) -> VectorIndex:
        """An index over rows read in one pass (a store's blobs joined into one matrix),
        normalized in one step instead of row by row."""
        index = cls(dim, capacity=max(1024, len(ids) + len(ids) // 4))
        n = len(ids)
        if n:
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            norms[norms == 0] = 1.0
            index._mat[:n] = matrix / norms
            index._ns[:n] = [index._code(ns) for ns in namespaces]
            index._alive[:n] = True
        index._ids = list(ids)
        index._pos = {node_id: i for i, node_id in enumerate(ids)}
        return index

    def __len__(self) -> int:
        return len(self._pos)

    def _code(self, namespace: str) -> int:
        code = self._ns_codes.get(namespace)
        if code is None:
            code = self._ns_codes[namespace] = len(self._ns_codes) + 1
        return code

    def check(self, vec: npt.NDArray[np.float32], what: str) -> None:
        if vec.shape != (self.dim,):
            raise refusals.wrong_dimension(what, vec, self.dim)

    def upsert(self, node_id: str, vec: npt.NDArray[np.float32], namespace: str) -> Undo:
        self.check(vec, f"vector of node {node_id}")
        self._version += 1
        norm = float(np.linalg.norm(vec))
        unit = vec / norm if norm > 0 else vec
        row = self._pos.get(node_id)
        if row is not None:
            old_vec, old_ns = self._mat[row].copy(), int(self._ns[row])
            self._mat[row] = unit
            self._ns[row] = self._code(namespace)

            def undo_update() -> None:
                self._version += 1
                self._mat[row] = old_vec
                self._ns[row] = old_ns

            return undo_update
        row = len(self._ids)
        if row == self._mat.shape[0]:
            self._grow()
        self._mat[row] = unit
        self._ns[row] = self._code(namespace)
        self._alive[row] = True
        self._ids.append(node_id)
        self._pos[node_id] = row
        return lambda: self._kill(node_id)

    def remove(self, node_id: str) -> Undo:
        row = self._pos.get(node_id)
        if row is None:
            return lambda: None
        self._kill(node_id)

        def undo_remove() -> None:
            self._version += 1
            self._pos[node_id] = row
            self._alive[row] = True
            self._dead -= 1

        return undo_remove

    def _kill(self, node_id: str) -> None:
        self._version += 1
        row = self._pos.pop(node_id)
        self._alive[row] = False
        self._dead += 1

    def _grow(self) -> None:
        cap = self._mat.shape[0] * 2
        self._mat = np.resize(self._mat, (cap, self.dim))
        self._ns = np.resize(self._ns, cap)
        alive = np.zeros(cap, dtype=bool)
        alive[: self._alive.shape[0]] = self._alive
        self._alive = alive

    def compact(self) -> None:
        """Drop dead rows. Only called between batches, when no undo can refer to rows."""
        if self._dead == 0 or self._dead * 2 < len(self._ids):
            return
        rows = np.array(sorted(self._pos.values()), dtype=np.int64)
        ids = [self._ids[r] for r in rows]
        cap = max(1024, len(ids) * 2)
        mat = np.zeros((cap, self.dim), dtype=np.float32)
        mat[: len(ids)] = self._mat[rows]
        ns = np.zeros(cap, dtype=np.int32)
        ns[: len(ids)] = self._ns[rows]
        alive = np.zeros(cap, dtype=bool)
        alive[: len(ids)] = True
        self._mat, self._ns, self._alive = mat, ns, alive
        self._ids = ids
        self._pos = {node_id: i for i, node_id in enumerate(ids)}
        self._dead = 0
        self._version += 1

    def search(
        self,
        vec: npt.NDArray[np.float32],
        k: int,
        namespace: str | None,
        exclude: frozenset[str],
    ) -> list[Hit]:
        self.check(vec, "query vector")
        n = len(self._ids)
        if k <= 0 or n == 0:
            return []
        key = np.ascontiguousarray(vec, dtype=np.float32).tobytes()
        if self._last is not None and self._last[0] == key and self._last[1] == self._version:
            scores = self._last[2]
        else:
            norm = float(np.linalg.norm(vec))
            q = (vec / norm if norm > 0 else vec).astype(np.float32, copy=False)
            scores = np.asarray(self._mat[:n] @ q, dtype=np.float32)
            self._last = (key, self._version, scores)
        return self._top(scores, k, namespace, exclude)

    def search_many(
        self,
        vecs: list[npt.NDArray[np.float32]],
        k: int,
        namespaces: list[str | None],
        excludes: list[frozenset[str]],
    ) -> list[list[Hit]]:
        """:meth:`search` for many query vectors, with one matrix product per chunk of
        them instead of one matrix-vector product each: at a hundred thousand rows the
        product is memory-bound, so reading the matrix once per chunk is most of a bulk
        writer's searches."""
        for vec in vecs:
            self.check(vec, "query vector")
        n = len(self._ids)
        if k <= 0 or n == 0:
            return [[] for _ in vecs]
        out: list[list[Hit]] = []
        alive = self._alive[:n]
        take = min(k, n)
        for start in range(0, len(vecs), _SEARCH_CHUNK):
            stop = min(len(vecs), start + _SEARCH_CHUNK)
            part = np.stack([np.asarray(v, dtype=np.float32) for v in vecs[start:stop]])
            norms = np.linalg.norm(part, axis=1, keepdims=True)
            norms[norms == 0] = 1.0
            scores = (part / norms) @ self._mat[:n].T  # one row of scores per query
            # Rows a search may not return score -inf: dead, another namespace, excluded.
            for namespace in set(namespaces[start:stop]):
                mine = [j for j in range(stop - start) if namespaces[start + j] == namespace]
                mask = alive
                if namespace is not None:
                    mask = alive & (self._ns[:n] == self._ns_codes.get(namespace, -1))
                scores[mine] = np.where(mask, scores[mine], -np.inf)
            for j in range(stop - start):
                for node_id in excludes[start + j]:
                    row = self._pos.get(node_id)
                    if row is not None:
                        scores[j, row] = -np.inf
            top = _best_columns(scores, take)
            for j in range(stop - start):
                rows = top[j]
                got = scores[j, rows]
                keep = np.isfinite(got)
                rows, got = rows[keep], got[keep]
                order = np.lexsort((rows, -got))
                out.append([Hit(self._ids[rows[i]], float(got[i])) for i in order])
        return out

    def _top(
        self,
        scores: npt.NDArray[np.float32],
        k: int,
        namespace: str | None,
        exclude: frozenset[str],
    ) -> list[Hit]:
        """The best ``k`` live rows of ``namespace`` outside ``exclude``, best first."""
        n = len(self._ids)
        mask = self._alive[:n].copy()
        if namespace is not None:
            code = self._ns_codes.get(namespace)
            if code is None:
                return []
            mask &= self._ns[:n] == code
        for node_id in exclude:
            row = self._pos.get(node_id)
            if row is not None:
                mask[row] = False
        candidates = np.flatnonzero(mask)
        if candidates.size == 0:
            return []
        cand_scores = scores[candidates]
        top = _best(cand_scores, k)
        order = top[np.lexsort((candidates[top], -cand_scores[top]))]
        return [Hit(self._ids[candidates[i]], float(cand_scores[i])) for i in order]


#: Up to this many hits per search are picked by repeated argmax (one fast pass over the
#: scores each) rather than by argpartition, which costs more than the product itself.
_ARGMAX_K = 16


def _best(scores: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.intp]:
    """Positions of the ``k`` highest of ``scores`` (any order), of equal scores the
    first: every search picks the same rows, however it was computed."""
    if scores.size <= k:
        return np.arange(scores.size)
    kth = np.partition(scores, scores.size - k)[scores.size - k]
    better = np.flatnonzero(scores > kth)
    tied = np.flatnonzero(scores == kth)[: k - better.size]
    return np.concatenate([better, tied])


def _best_columns(scores: npt.NDArray[np.float32], take: int) -> npt.NDArray[np.intp]:
    """Per row of ``scores``, the columns of its ``take`` highest values (any order; of
    equal scores the first, as :func:`_best`); ``scores`` is overwritten where they were
    picked and put back."""
    n = scores.shape[1]
    if take >= n:
        return np.broadcast_to(np.arange(n), scores.shape)
    if take > _ARGMAX_K:
        return np.stack([_best(row, take) for row in scores])
    rows = np.arange(scores.shape[0])
    picked = np.empty((scores.shape[0], take), dtype=np.intp)
    saved = np.empty((scores.shape[0], take), dtype=scores.dtype)
    for i in range(take):
        best = np.argmax(scores, axis=1)
        picked[:, i] = best
        saved[:, i] = scores[rows, best]
        scores[rows, best] = -np.inf
    for i in range(take):  # put the picked scores back, for the caller to read
        scores[rows, picked[:, i]] = saved[:, i]
    return picked
