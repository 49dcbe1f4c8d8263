"""Vector search in the embedded store: exact over a matrix read from SQLite, and through
an approximate index saved beside the file once a (kind, field) holds enough vectors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graph_store import ops, refusals
from graph_store.ann import ApproximateIndex
from graph_store.blas import one_blas_thread
from graph_store.embedded.mirror import Mirrors, Undo
from graph_store.embedded.rows import (
    chunks,
)
from graph_store.model import NodeKind
from graph_store.vectors import VectorIndex

#: Vectors of one (kind, field) from which search goes through an approximate index (with
#: the ``ann`` extra installed); below it, exact search.
ANN_MIN_ROWS = 20_000
#: Changes an approximate index takes in before it is saved again (besides on close).
ANN_SAVE_EVERY = 2_000
#: Candidates an approximate search may widen to (for a namespace holding a small share
#: of the vectors, or many excluded ids) before it searches that namespace exactly.
ANN_MAX_CANDIDATES = 2_048


class Search(Mirrors):
    """Exact and approximate vector search over the rows of one snapshot."""

    _ann_min: int | None
    _ann_dir: Path
    _ann: dict[tuple[str, str], ApproximateIndex]
    _store_id: str

    def _index(self, kind: str, field: str, undo: list[Undo]) -> VectorIndex | None:
        """The vector matrix of a (kind, field), read from SQLite in one pass when first
        needed (inside the batch's snapshot, so it agrees with the mirrors)."""
        index = self._indexes.get((kind, field))
        if index is not None:
            return index
        dim = self._dims.get((kind, field))
        if dim is None:
            return None
        rows = self._db.execute(
            f"SELECT id, namespace, {field} FROM nodes WHERE kind=? AND {field} IS NOT NULL "
            "ORDER BY seq",
            (kind,),
        ).fetchall()
        matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32)
        index = VectorIndex.from_rows(
            dim, [r[0] for r in rows], [r[1] for r in rows], matrix.reshape(len(rows), dim)
        )
        self._indexes[(kind, field)] = index

        def unload() -> None:  # it may hold rows this batch wrote and is rolling back
            self._indexes.pop((kind, field), None)

        undo.append(unload)
        return index

    def _searches_ahead(self, batch: list[ops.Op], undo: list[Undo]) -> dict[int, Any]:
        """Results of a read batch's vector searches, several per matrix product.

        A batch that only reads sees one snapshot, so its searches of one (kind, field)
        can all be scored together; a bulk writer asks for hundreds at once. Keyed by the
        operation object, which is what the batch hands the backend.
        """
        groups: dict[tuple[str, str, int], list[ops.VectorSearch]] = {}
        for op in batch:
            if isinstance(op, ops.VectorSearch):
                groups.setdefault((NodeKind(op.kind).value, op.field, op.k), []).append(op)
        ahead: dict[int, Any] = {}
        for (kind, field, k), searches in groups.items():
            if len(searches) < 2 or self._ann_for(kind, field) is not None:
                continue  # one search, or searches through the approximate index
            index = self._index(kind, field, undo)
            if index is None:
                continue
            found = index.search_many(
                [np.asarray(op.vector, dtype=np.float32) for op in searches],
                k,
                [op.namespace for op in searches],
                [op.exclude_ids for op in searches],
            )
            ahead.update((id(op), hits) for op, hits in zip(searches, found, strict=True))
        return ahead

    def _vector_search(
        self,
        kind: NodeKind,
        vector: npt.NDArray[np.float32],
        k: int,
        namespace: str | None,
        field: ops.VectorField,
        exclude: frozenset[str],
        undo: list[Undo],
    ) -> list[ops.Hit]:
        vec = np.asarray(vector, dtype=np.float32)
        approximate = self._ann_for(NodeKind(kind).value, field)
        if approximate is not None:
            if vec.shape != (approximate.dim,):
                raise refusals.wrong_dimension("query vector", vec, approximate.dim)
            with one_blas_thread():
                return self._ann_search(
                    approximate, NodeKind(kind).value, field, vec, k, namespace, exclude
                )
        index = self._index(NodeKind(kind).value, field, undo)
        if index is None:
            return []
        # One query's products are too little work to share between BLAS threads.
        with one_blas_thread():
            return index.search(vec, k, namespace, exclude)

    def _reaches(self, through: int) -> bool:
        """Whether the change log still holds every entry after ``through``."""
        if through > self._seq:
            return False  # the file was written for a later state: this one is older
        first = self._db.execute("SELECT MIN(seq) FROM changes").fetchone()[0]
        return first is None or first <= through + 1 or through == self._seq

    def _ann_for(self, kind: str, field: str) -> ApproximateIndex | None:
        """The approximate index of a (kind, field), brought up to the snapshot, or None
        where search is exact (no extra, too few vectors, or a write batch that would have
        to build it: rows it has written may still roll back)."""
        if self._ann_min is None or self._dims.get((kind, field)) is None:
            return None
        key = (kind, field)
        index = self._ann.get(key)
        if index is not None and not self._reaches(index.through):
            index = None  # the log no longer reaches back to it: the saved file may
        if index is None:
            exact = self._indexes.get(key)
            if exact is not None and len(exact) < self._ann_min:
                return None
            dim = self._dims[key]
            index = ApproximateIndex.load(
                self._ann_dir / f"{kind}.{field}.usearch", self._store_id, dim
            )
            if index is not None and not self._reaches(index.through):
                index = None
            if index is None:
                if self._writing:
                    return None
                if exact is None:
                    (count,) = self._db.execute(
                        f"SELECT COUNT(*) FROM nodes WHERE kind=? AND {field} IS NOT NULL", (kind,)
                    ).fetchone()
                    if count < self._ann_min:
                        return None
                index = self._build_ann(kind, field, dim)
            self._ann[key] = index
            self._indexes.pop(key, None)  # the matrix is no longer searched
        if not self._writing and index.through < self._seq:
            self._catch_up(index, kind, field)
        return index

    def _build_ann(self, kind: str, field: str, dim: int) -> ApproximateIndex:
        index = ApproximateIndex.empty(
            self._ann_dir / f"{kind}.{field}.usearch", self._store_id, dim
        )
        rows = self._db.execute(
            f"SELECT seq, id, {field} FROM nodes WHERE kind=? AND {field} IS NOT NULL ORDER BY seq",
            (kind,),
        ).fetchall()
        matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32)
        index.upsert([r[1] for r in rows], [r[0] for r in rows], matrix.reshape(len(rows), dim))
        index.through = self._seq
        index.save()
        return index

    def _catch_up(self, index: ApproximateIndex, kind: str, field: str) -> None:
        """Take in the nodes the log names since the index was last brought up to date
        (this process's commits and any other's); only in a read batch, whose snapshot
        holds committed rows alone."""
        changed = [
            r[0]
            for r in self._db.execute(
                "SELECT DISTINCT node FROM changes WHERE seq > ? AND seq <= ? AND node IS NOT NULL",
                (index.through, self._seq),
            )
        ]
        found: dict[str, tuple[int, bytes]] = {}
        for chunk in chunks(changed):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT id, seq, {field} FROM nodes WHERE id IN ({marks}) AND kind=? "
                f"AND {field} IS NOT NULL",
                (*chunk, kind),
            )
            found.update((node_id, (seq, blob)) for node_id, seq, blob in rows)
        index.remove([node_id for node_id in changed if node_id not in found])
        if found:
            ids = list(found)
            matrix = np.frombuffer(b"".join(found[i][1] for i in ids), dtype=np.float32)
            index.upsert(ids, [found[i][0] for i in ids], matrix.reshape(len(ids), index.dim))
        index.through = self._seq
        if index.unsaved >= max(ANN_SAVE_EVERY, len(index) // 20):
            index.save()

    def _ann_search(
        self,
        index: ApproximateIndex,
        kind: str,
        field: str,
        vec: npt.NDArray[np.float32],
        k: int,
        namespace: str | None,
        exclude: frozenset[str],
    ) -> list[ops.Hit]:
        """Candidates from the index, each read back and scored exactly; widened until k
        pass the namespace and exclusions, else that namespace is searched exactly."""
        if k <= 0:
            return []
        norm = float(np.linalg.norm(vec))
        q = (vec / norm if norm > 0 else vec).astype(np.float32, copy=False)
        # In a write batch the index is not brought up to date (its rows may roll back):
        # what the log names since, and what this batch wrote, are scored as candidates too.
        extra: list[str] = []
        if self._writing:
            extra = list(self._written)
            extra += [
                r[0]
                for r in self._db.execute(
                    "SELECT DISTINCT node FROM changes WHERE seq > ? AND seq <= ? "
                    "AND node IS NOT NULL",
                    (index.through, self._seq),
                )
            ]
        count = max(4 * (k + len(exclude)), k + len(exclude) + 32)
        while True:
            keys = index.candidates(q, count)
            hits = self._score(keys, extra, kind, field, q, namespace, exclude)
            if len(hits) >= k:
                break
            if count >= ANN_MAX_CANDIDATES or count >= len(index):
                hits = self._score_namespace(kind, field, q, namespace, exclude)
                break
            count *= 4
        hits.sort(key=lambda h: (-h[0], h[1]))
        return [ops.Hit(node_id, score) for score, _, node_id in hits[:k]]

    def _score(
        self,
        keys: list[int],
        extra: list[str],
        kind: str,
        field: str,
        q: npt.NDArray[np.float32],
        namespace: str | None,
        exclude: frozenset[str],
    ) -> list[tuple[float, int, str]]:
        rows: dict[int, tuple[str, str, bytes]] = {}
        for column, values in (("seq", keys), ("id", extra)):
            for chunk in chunks(list(values)):  # type: ignore[arg-type]
                marks = ",".join("?" * len(chunk))
                found = self._db.execute(
                    f"SELECT seq, id, namespace, {field} FROM nodes WHERE {column} IN ({marks}) "
                    f"AND kind=? AND {field} IS NOT NULL",
                    (*chunk, kind),
                )
                for seq, node_id, ns, blob in found:
                    rows[seq] = (node_id, ns, blob)
        return self._scored(rows, q, namespace, exclude)

    def _score_namespace(
        self,
        kind: str,
        field: str,
        q: npt.NDArray[np.float32],
        namespace: str | None,
        exclude: frozenset[str],
    ) -> list[tuple[float, int, str]]:
        sql = f"SELECT seq, id, namespace, {field} FROM nodes WHERE kind=? AND {field} IS NOT NULL"
        params: list[Any] = [kind]
        if namespace is not None:
            sql += " AND namespace=?"
            params.append(namespace)
        rows = {
            seq: (node_id, ns, blob) for seq, node_id, ns, blob in self._db.execute(sql, params)
        }
        return self._scored(rows, q, namespace, exclude)

    @staticmethod
    def _scored(
        rows: dict[int, tuple[str, str, bytes]],
        q: npt.NDArray[np.float32],
        namespace: str | None,
        exclude: frozenset[str],
    ) -> list[tuple[float, int, str]]:
        kept = [
            (seq, node_id, blob)
            for seq, (node_id, ns, blob) in rows.items()
            if (namespace is None or ns == namespace) and node_id not in exclude
        ]
        if not kept:
            return []
        matrix = np.frombuffer(b"".join(r[2] for r in kept), dtype=np.float32)
        matrix = matrix.reshape(len(kept), q.shape[0])
        norms = np.linalg.norm(matrix, axis=1)
        norms[norms == 0] = 1.0
        scores = (matrix @ q) / norms
        return [(float(s), seq, node_id) for s, (seq, node_id, _) in zip(scores, kept, strict=True)]
