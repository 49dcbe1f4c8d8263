"""The embedded store's approximate index: what it returns against exact search, that it is
kept beside the file and reused, follows other processes' writes, and is rebuilt when it
cannot be trusted."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from graph_store import EmbeddedStore, NodeKind, QueryNode, ann
from graph_store.errors import EmbeddingDimensionError
from graph_store.model import query_id_for
from graph_store.ops import PutNodes, VectorSearch

pytestmark = pytest.mark.ann

ROOT = Path(__file__).resolve().parents[1]
DIM = 16
SIDECAR = "Query.embedding.usearch"


def _vec(i: int) -> npt.NDArray[np.float32]:
    return np.random.default_rng(i).standard_normal(DIM).astype(np.float32)


def _emb(q: QueryNode) -> npt.NDArray[np.float32]:
    assert q.embedding is not None
    return q.embedding


def _query(i: int, namespace: str = "default") -> QueryNode:
    return QueryNode(
        id=query_id_for(namespace, f"task {i}"),
        text=f"task {i}",
        namespace=namespace,
        embedding=_vec(i),
    )


def _fill(store: EmbeddedStore, n: int) -> list[QueryNode]:
    # two namespaces, one a tenth of the other, so filtering by namespace is exercised
    queries = [_query(i, "small" if i % 10 == 0 else "default") for i in range(n)]
    for start in range(0, n, 200):
        store.put_nodes(queries[start : start + 200])
    return queries


def _builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = EmbeddedStore._build_ann

    def counted(self: EmbeddedStore, kind: str, field: str, dim: int) -> ann.ApproximateIndex:
        calls.append(1)
        return real(self, kind, field, dim)

    monkeypatch.setattr(EmbeddedStore, "_build_ann", counted)
    return calls


def test_above_the_threshold_hits_are_exact_scores_of_nearly_the_exact_neighbours(
    tmp_path: Path,
) -> None:
    """Approximate in which rows it finds, exact in what it says of them: every hit has
    its exact score, its namespace and no excluded id, and nearly all the exact
    neighbours are found."""
    path = tmp_path / "a.db"
    with EmbeddedStore(path, ann_min_rows=None) as store:
        queries = _fill(store, 1500)
    approx = EmbeddedStore(path, ann_min_rows=1000)
    exact = EmbeddedStore(path, ann_min_rows=None)
    namespace_of = {q.id: q.namespace for q in queries}
    excluded = frozenset(q.id for q in queries[:40])
    found = wanted = 0
    for i in range(60):
        probe = _vec(10_000 + i)
        for namespace in (None, "default", "small"):
            for exclude in (frozenset(), excluded):
                search = VectorSearch(NodeKind.QUERY, probe, 8, namespace, "embedding", exclude)
                (want,) = exact.batch([search])
                (got,) = approx.batch([search])
                assert len(got) == 8
                truth = {h.id: h.score for h in exact.vector_search(NodeKind.QUERY, probe, k=1500)}
                for hit in got:
                    assert hit.score == pytest.approx(truth[hit.id], abs=1e-5)
                    assert namespace in (None, namespace_of[hit.id])
                    assert hit.id not in exclude
                assert [h.score for h in got] == sorted((h.score for h in got), reverse=True)
                found += len({h.id for h in got} & {h.id for h in want})
                wanted += len(want)
    assert found / wanted >= 0.95
    assert (tmp_path / "a.db.ann" / SIDECAR).exists()
    approx.close()
    exact.close()


def test_below_the_threshold_search_is_exact_and_nothing_is_saved(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    with EmbeddedStore(path, ann_min_rows=1000) as store:
        _fill(store, 300)
    small, exact = EmbeddedStore(path, ann_min_rows=1000), EmbeddedStore(path, ann_min_rows=None)
    for i in range(20):
        for namespace in (None, "small"):
            want = exact.vector_search(NodeKind.QUERY, _vec(5000 + i), k=8, namespace=namespace)
            got = small.vector_search(NodeKind.QUERY, _vec(5000 + i), k=8, namespace=namespace)
            assert got == want
    small.close()
    exact.close()
    assert not (tmp_path / "b.db.ann").exists()


def test_a_reopen_reuses_the_saved_index_and_keeps_every_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.db"
    builds = _builds(monkeypatch)
    with EmbeddedStore(path, ann_min_rows=500) as store:
        queries = _fill(store, 1000)
        store.vector_search(NodeKind.QUERY, _vec(0), k=1)  # built here
        more = [_query(i) for i in range(1000, 1100)]  # arrive after the build
        store.put_nodes(more)
        store.vector_search(NodeKind.QUERY, _vec(0), k=1)
    assert builds == [1]
    with EmbeddedStore(path, ann_min_rows=500) as store:
        # approximate: nearly every task is among its own vector's nearest ten
        every = [*queries, *more]
        near = sum(
            q.id in {h.id for h in store.vector_search(NodeKind.QUERY, _emb(q), k=10)}
            for q in every
        )
        assert near / len(every) >= 0.99
        assert set(store._ann[("Query", "embedding")]._key_of) == {q.id for q in [*queries, *more]}
    assert builds == [1]  # reopened from the file, not rebuilt


WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from graph_store import EmbeddedStore, QueryNode
    from graph_store.model import query_id_for
    store = EmbeddedStore(sys.argv[1], ann_min_rows=None, change_log_keep=int(sys.argv[2]))
    store.put_nodes([QueryNode(id=query_id_for("default", "elsewhere"), text="elsewhere",
                               embedding=np.ones(16, dtype=np.float32))])
    store.delete_nodes([query_id_for("default", "task 1")])
    for i in range(int(sys.argv[3])):  # churn past what the log keeps
        store.put_nodes([QueryNode(id=query_id_for("default", f"churn {i}"), text=f"c {i}")])
    store.close()
    """
)


@pytest.mark.parametrize(("keep", "churn", "rebuilt"), [(50_000, 0, 0), (5, 30, 1)])
def test_the_index_follows_another_process_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: int, churn: int, rebuilt: int
) -> None:
    """Within the log's reach the index takes the other process's rows in; beyond it, or
    never sees them, it is rebuilt. Either way no stale row is returned."""
    path = tmp_path / "d.db"
    reader = EmbeddedStore(path, ann_min_rows=500)
    queries = _fill(reader, 800)
    assert reader.vector_search(NodeKind.QUERY, _vec(1), k=1)[0].id == queries[1].id
    builds = _builds(monkeypatch)
    subprocess.run(
        [sys.executable, "-c", WRITER, str(path), str(keep), str(churn)],
        check=True,
        env={"PYTHONPATH": str(ROOT)},
    )
    (hit,) = reader.vector_search(NodeKind.QUERY, np.ones(DIM, dtype=np.float32), k=1)
    assert hit.id == query_id_for("default", "elsewhere")
    assert queries[1].id not in {h.id for h in reader.vector_search(NodeKind.QUERY, _vec(1), k=20)}
    assert len(builds) == rebuilt
    reader.close()


def test_a_missing_or_foreign_index_file_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, other = tmp_path / "e.db", tmp_path / "other.db"
    with EmbeddedStore(path, ann_min_rows=100) as store:
        queries = _fill(store, 300)
        store.vector_search(NodeKind.QUERY, _vec(0), k=1)
    with EmbeddedStore(other, ann_min_rows=100) as store:
        store.put_nodes([_query(i + 5000) for i in range(300)])
        store.vector_search(NodeKind.QUERY, _vec(0), k=1)
    builds = _builds(monkeypatch)
    # another store's index copied over this one's: refused by its store id
    shutil.copy(tmp_path / "other.db.ann" / SIDECAR, tmp_path / "e.db.ann" / SIDECAR)
    with EmbeddedStore(path, ann_min_rows=100) as store:
        assert store.vector_search(NodeKind.QUERY, _emb(queries[5]), k=1)[0].id == queries[5].id
    assert builds == [1]
    (tmp_path / "e.db.ann" / SIDECAR).write_bytes(b"not an index")
    with EmbeddedStore(path, ann_min_rows=100) as store:
        assert store.vector_search(NodeKind.QUERY, _emb(queries[6]), k=1)[0].id == queries[6].id
    (tmp_path / "e.db.ann" / SIDECAR).unlink()
    with EmbeddedStore(path, ann_min_rows=100) as store:
        assert store.vector_search(NodeKind.QUERY, _emb(queries[7]), k=1)[0].id == queries[7].id
    assert builds == [1, 1, 1]


def test_a_write_batch_sees_its_own_rows_and_a_rollback_leaves_none(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    store = EmbeddedStore(path, ann_min_rows=100)
    _fill(store, 300)
    store.vector_search(NodeKind.QUERY, _vec(0), k=1)
    new = _query(777_777)
    (_, found) = store.batch([PutNodes([new]), VectorSearch(NodeKind.QUERY, _emb(new), 1)])
    assert [h.id for h in found] == [new.id]
    doomed = _query(888_888)
    with pytest.raises(EmbeddingDimensionError):
        store.batch(
            [
                PutNodes([doomed]),
                VectorSearch(NodeKind.QUERY, _emb(doomed), 1),
                VectorSearch(NodeKind.QUERY, np.ones(3, dtype=np.float32), 1),
            ]
        )
    assert store.vector_search(NodeKind.QUERY, _emb(doomed), k=1)[0].id != doomed.id
    assert store.vector_search(NodeKind.QUERY, _emb(new), k=1)[0].id == new.id
    store.close()


def test_a_process_that_searched_through_the_index_can_still_load_pyg(tmp_path: Path) -> None:
    """usearch's compiled module, loaded before torch, made ``import torch_geometric``
    spin forever (TorchScript compilation never returned): ``gmem embed`` on a large
    store, and every test module importing gmem.gnn after the store, hung."""
    code = textwrap.dedent(
        f"""
        import numpy as np
        from graph_store import EmbeddedStore, NodeKind, QueryNode
        from graph_store.ops import VectorSearch

        store = EmbeddedStore({str(tmp_path / "s.db")!r}, ann_min_rows=1)
        rng = np.random.default_rng(0)
        store.put_nodes([
            QueryNode(text=f"task {{i}}", embedding=rng.standard_normal(8).astype(np.float32))
            for i in range(50)
        ])
        (hits,) = store.batch([VectorSearch(NodeKind.QUERY, np.ones(8, np.float32), 3)])
        import sys
        assert len(hits) == 3 and "usearch.compiled" in sys.modules  # the index was used
        import torch_geometric.nn  # hung here
        print("loaded")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("loaded")


def test_a_deleted_node_leaves_no_trace_of_its_vector_in_the_saved_index(
    tmp_path: Path,
) -> None:
    """Forgetting is erasure: the index file keeps no bytes of a deleted node's vector
    (usearch itself only marks a removed entry), while live vectors stay searchable."""
    path = tmp_path / "e.db"
    with EmbeddedStore(path, ann_min_rows=500) as store:
        queries = _fill(store, 800)
        store.vector_search(NodeKind.QUERY, _vec(0), k=1)  # built and saved
        gone, kept = queries[:25], queries[25:]
        store.delete_nodes([q.id for q in gone])
        store.vector_search(NodeKind.QUERY, _vec(0), k=1)

    def stored(q: QueryNode) -> bytes:
        # the index keeps cosine vectors as given, in half precision
        return _emb(q).astype(np.float16).tobytes()

    saved = (tmp_path / "e.db.ann" / SIDECAR).read_bytes()
    unseen = [q.id for q in kept[:50] if stored(q) not in saved]
    assert not unseen, f"{len(unseen)} live vectors not found in {len(saved)} bytes"
    left = [q.id for q in gone if stored(q) in saved]
    assert not left, f"{len(left)} of {len(gone)} deleted vectors still in the file"
    with EmbeddedStore(path, ann_min_rows=500) as store:
        near = sum(
            q.id in {h.id for h in store.vector_search(NodeKind.QUERY, _emb(q), k=10)} for q in kept
        )
        assert near / len(kept) >= 0.99, near
        assert all(q.id not in store._ann[("Query", "embedding")]._key_of for q in gone)
