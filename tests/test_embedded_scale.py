"""The embedded store's scaling paths: what stays in memory, what is read from SQLite,
and how a handle follows another process's commits through the change log."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from itertools import pairwise
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from graph_store import Edge, EdgeKind, EmbeddedStore, NodeKind, QueryNode, Utterance
from graph_store.errors import NotFoundError, StoreCorruptError
from graph_store.model import Insight, query_id_for
from graph_store.ops import Op, PutEdges, PutNodes, VectorSearch
from graph_store.vectors import VectorIndex

ROOT = Path(__file__).resolve().parents[1]
DIM = 16


def _vec(i: int) -> npt.NDArray[np.float32]:
    return np.random.default_rng(i).standard_normal(DIM).astype(np.float32)


def _task(i: int, steps: int = 5) -> tuple[QueryNode, list[Op]]:
    q = QueryNode(id=query_id_for("default", f"task {i}"), text=f"task {i}", embedding=_vec(i))
    utts = [
        Utterance(query_id=q.id, step=s, agent="a", role="actor", content=f"t{i} s{s}")
        for s in range(steps)
    ]
    edges = [Edge(kind=EdgeKind.HAS_TRACE, src=q.id, dst=u.id) for u in utts]
    edges += [Edge(kind=EdgeKind.NEXT, src=a.id, dst=b.id) for a, b in pairwise(utts)]
    return q, [PutNodes([q, *utts]), PutEdges(edges)]


def _fill(store: EmbeddedStore, n: int, start: int = 0) -> list[QueryNode]:
    queries, ops = [], []
    for i in range(start, start + n):
        q, more = _task(i)
        queries.append(q)
        ops += more
        if len(ops) >= 200:
            store.batch(ops)
            ops = []
    if ops:
        store.batch(ops)
    return queries


def test_reopen_of_a_large_store_keeps_every_task(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    with EmbeddedStore(path, durability="normal") as store:
        queries = _fill(store, 3000)
        insight = Insight(text="check the drawer first", embedding=_vec(10**6))
        store.put_nodes([insight])
        store.put_edges([Edge(kind=EdgeKind.SUPPORTS, src=queries[7].id, dst=insight.id)])
        store.put_edges(
            [
                Edge(kind=EdgeKind.SIMILAR_TO, src=b.id, dst=a.id, props={"score": i + 1})
                for i, (a, b) in enumerate(pairwise(queries))
            ]
        )
    with EmbeddedStore(path) as store:
        counts = store.count()
        assert counts.nodes == {"Query": 3000, "Utterance": 15000, "Insight": 1}
        assert counts.edges == {
            "HAS_TRACE": 15000,
            "NEXT": 12000,
            "SUPPORTS": 1,
            "SIMILAR_TO": 2999,
        }
        ids = [q.id for q in queries]
        assert all(n is not None for n in store.get_nodes(ids))
        trace = store.get_edges(ids, [EdgeKind.HAS_TRACE])
        assert len(trace) == 15000 and {e.src for e in trace} == set(ids)
        # every stored vector is searchable after the lazy read of the matrix
        for i in range(0, 3000, 97):
            assert store.vector_search(NodeKind.QUERY, _vec(i), k=1)[0].id == queries[i].id
        (reached,) = store.neighbors([insight.id], hops=1)
        assert reached.id == queries[7].id
        # every similarity edge comes back from either end, read from SQLite
        for i in range(1, 3000, 101):
            out = store.get_edges([queries[i].id], [EdgeKind.SIMILAR_TO])
            assert [(e.dst, e.props) for e in out] == [(queries[i - 1].id, {"score": i})]
            back = store.get_edges([queries[i - 1].id], [EdgeKind.SIMILAR_TO], "in")
            assert [e.src for e in back] == [queries[i].id]
        hops = store.neighbors([queries[2999].id], kinds=[EdgeKind.SIMILAR_TO], hops=3)
        assert [r.id for r in hops] == [queries[2998].id, queries[2997].id, queries[2996].id]
        # the in-memory graph holds the query and insight tiers, without similarity edges
        assert store._graph.number_of_nodes() == 3001
        assert store._graph.number_of_edges() == 1


def test_a_trace_is_read_from_sqlite_both_ways(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "t.db")
    q, ops = _task(1, steps=3)
    store.batch(ops)
    trace = [e.dst for e in store.get_edges([q.id], [EdgeKind.HAS_TRACE])]
    utts = [n for n in store.get_nodes(trace) if isinstance(n, Utterance)]
    utt_ids = [u.id for u in sorted(utts, key=lambda u: u.step)]
    assert len(utt_ids) == 3
    back = store.get_edges([utt_ids[0]], direction="in")
    assert [(e.kind, e.src) for e in back] == [(EdgeKind.HAS_TRACE, q.id)]
    reached = store.neighbors([utt_ids[0]], hops=2, direction="both")
    assert {r.id for r in reached} == {q.id, *utt_ids[1:]}
    assert {r.id for r in reached if r.hop == 1} >= {q.id}
    store.close()


def test_an_edge_from_the_mirror_to_an_utterance_is_found_from_both_ends(
    tmp_path: Path,
) -> None:
    path = tmp_path / "split.db"
    store = EmbeddedStore(path)
    q, ops = _task(2, steps=1)
    store.batch(ops)
    (trace,) = store.get_edges([q.id], [EdgeKind.HAS_TRACE])
    store.put_edges([Edge(kind=EdgeKind.SIMILAR_TO, src=q.id, dst=trace.dst, props={"s": 1})])
    other = EmbeddedStore(path)
    for handle in (store, other):
        found = handle.get_edges([q.id], [EdgeKind.SIMILAR_TO])
        assert [(e.dst, e.props) for e in found] == [(trace.dst, {"s": 1})]
        assert [e.src for e in handle.get_edges([trace.dst], [EdgeKind.SIMILAR_TO], "in")] == [q.id]
    store.close()
    other.close()


CATCH_UP_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from graph_store import EmbeddedStore, Edge, EdgeKind, QueryNode
    from graph_store.model import query_id_for
    store = EmbeddedStore(sys.argv[1], change_log_keep=int(sys.argv[2]))
    old = query_id_for("default", "task 0")
    new = QueryNode(id=query_id_for("default", "from the other process"),
                    text="from the other process",
                    embedding=np.ones(16, dtype=np.float32))
    store.put_nodes([new])
    store.put_edges([Edge(kind=EdgeKind.SIMILAR_TO, src=new.id, dst=old, props={"score": 0.9})])
    store.delete_nodes([query_id_for("default", "task 1")])
    for i in range(int(sys.argv[3])):  # churn: more changes than the log may keep
        q = QueryNode(id=query_id_for("default", f"churn {i}"), text=f"churn {i}")
        store.put_nodes([q])
    store.close()
    """
)


@pytest.mark.parametrize(("keep", "churn"), [(50_000, 0), (5, 30)])
def test_a_handle_follows_another_process_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: int, churn: int
) -> None:
    """Within the log's reach the handle replays it (no reload); beyond it, it reloads.
    Either way it then sees the other process's nodes, edges, vectors and deletions."""
    path = tmp_path / "shared.db"
    reader = EmbeddedStore(path)
    queries = _fill(reader, 5)
    assert reader.vector_search(NodeKind.QUERY, _vec(3), k=1)[0].id == queries[3].id
    loads: list[int] = []
    real_load = EmbeddedStore._load

    def counted_load(self: EmbeddedStore) -> None:
        loads.append(1)
        real_load(self)

    monkeypatch.setattr(EmbeddedStore, "_load", counted_load)
    subprocess.run(
        [sys.executable, "-c", CATCH_UP_WRITER, str(path), str(keep), str(churn)],
        check=True,
        env={"PYTHONPATH": str(ROOT)},
    )
    new_id = query_id_for("default", "from the other process")
    (hit,) = reader.vector_search(NodeKind.QUERY, np.ones(DIM, dtype=np.float32), k=1)
    assert hit.id == new_id
    reached = reader.neighbors([queries[0].id], kinds=[EdgeKind.SIMILAR_TO])
    assert [(r.id, r.via.props) for r in reached] == [(new_id, {"score": 0.9})]
    assert reader.get_node(queries[1].id) is None
    assert queries[1].id not in {h.id for h in reader.vector_search(NodeKind.QUERY, _vec(1), k=10)}
    assert reader.count().nodes["Query"] == 5 + churn
    assert len(loads) == (0 if churn == 0 else 1)
    reader.close()


def test_a_rolled_back_batch_leaves_no_vector_behind(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "r.db")
    _fill(store, 2)
    q = QueryNode(id=query_id_for("default", "doomed"), text="doomed", embedding=_vec(99))
    bad = Edge(kind=EdgeKind.SIMILAR_TO, src=q.id, dst=query_id_for("default", "missing"))
    with pytest.raises(NotFoundError):
        store.batch([PutNodes([q]), VectorSearch(NodeKind.QUERY, _vec(99), 1), PutEdges([bad])])
    assert store.get_node(q.id) is None
    assert all(h.id != q.id for h in store.vector_search(NodeKind.QUERY, _vec(99), k=3))
    store.close()


def test_a_store_from_before_the_change_log_gains_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with EmbeddedStore(path) as store:
        queries = _fill(store, 3)
    db = sqlite3.connect(path)
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    db.execute("DROP TABLE changes")
    db.commit()
    db.close()
    a, b = EmbeddedStore(path), EmbeddedStore(path)
    assert [n.id for n in a.list_nodes(NodeKind.QUERY)] == [q.id for q in queries]
    b.put_edges([Edge(kind=EdgeKind.SIMILAR_TO, src=queries[0].id, dst=queries[1].id)])
    assert [e.dst for e in a.get_edges([queries[0].id], [EdgeKind.SIMILAR_TO])] == [queries[1].id]
    a.close()
    b.close()


def test_a_store_from_before_the_mirrored_index_gains_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with EmbeddedStore(path) as store:
        queries = _fill(store, 3)
        insight = Insight(text="look first", namespace="other")
        store.put_nodes([insight])
    with sqlite3.connect(path) as db:
        db.execute("DROP INDEX nodes_mirrored")
    with EmbeddedStore(path) as store:
        assert set(store._graph.nodes) == {*(q.id for q in queries), insight.id}
        assert store._graph.nodes[insight.id] == {"kind": "Insight", "ns": "other"}
        assert store.count().nodes == {"Query": 3, "Utterance": 15, "Insight": 1}
    with sqlite3.connect(path) as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "nodes_mirrored" in names


def test_a_repeated_search_sees_rows_written_since() -> None:
    """The last query's scores are reused only while the matrix is unchanged."""
    index = VectorIndex(DIM)
    index.upsert("a" * 32, _vec(1), "default")
    q = _vec(2)
    assert [h.id for h in index.search(q, 2, None, frozenset())] == ["a" * 32]
    undo = index.upsert("b" * 32, q, "default")
    assert [h.id for h in index.search(q, 2, None, frozenset())] == ["b" * 32, "a" * 32]
    undo()
    assert [h.id for h in index.search(q, 2, None, frozenset())] == ["a" * 32]
    index.upsert("a" * 32, q, "default")
    (hit,) = index.search(q, 1, None, frozenset())
    assert hit.score == pytest.approx(1.0)


def test_a_large_file_cut_short_is_refused_without_reading_every_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from graph_store.embedded import schema

    path = tmp_path / "cut.db"
    with EmbeddedStore(path) as store:
        _fill(store, 200)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    monkeypatch.setattr(schema, "QUICK_CHECK_MAX_BYTES", 0)  # as if it were large
    with EmbeddedStore(path) as store:
        assert store.count().nodes["Query"] == 200
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreCorruptError):
        EmbeddedStore(path)
