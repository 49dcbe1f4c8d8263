"""The behaviour every ``GraphStore`` backend must have.

Each test runs against every backend of the ``store`` fixture (embedded in memory, embedded
on disk, and Neo4j when a server is configured). Vectors are chosen so no two scores tie.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from graph_store import (
    Edge,
    EdgeKind,
    GraphStore,
    Insight,
    Item,
    NodeKind,
    Outcome,
    QueryNode,
    Utterance,
)
from graph_store.errors import (
    EmbeddingDimensionError,
    InvalidIdError,
    NotFoundError,
    StoreUnavailableError,
    UnknownNamespaceError,
    UserInputError,
)
from graph_store.model import InsightRule, RuleEvidence, new_id, query_id_for
from graph_store.ops import (
    DeleteNamespace,
    DeleteNodes,
    DeleteTask,
    Expand,
    GetNodes,
    Neighbors,
    PutEdges,
    PutNodes,
    ReadVersion,
    Removed,
    VectorSearch,
)
from tests.conftest import BACKENDS

DIM = 4


def vec(*xs: float) -> np.ndarray:
    return np.array(xs, dtype=np.float32)


def query(text: str, ns: str = "default", v: np.ndarray | None = None, **kw: object) -> QueryNode:
    return QueryNode(id=query_id_for(ns, text), text=text, namespace=ns, embedding=v, **kw)


def trace(q: QueryNode, n: int) -> tuple[list[Utterance], list[Edge]]:
    utts = [
        Utterance(
            query_id=q.id,
            namespace=q.namespace,
            step=i,
            agent=f"a{i % 2}",
            role="planner" if i % 2 == 0 else "actor",
            content=f"step {i} of {q.text}",
            action=f"go {i}",
        )
        for i in range(n)
    ]
    edges = [Edge(kind=EdgeKind.HAS_TRACE, src=q.id, dst=u.id) for u in utts]
    edges += [Edge(kind=EdgeKind.NEXT, src=a.id, dst=b.id) for a, b in pairwise(utts)]
    edges += [Edge(kind=EdgeKind.REPLIES_TO, src=b.id, dst=a.id) for a, b in pairwise(utts)]
    return utts, edges


def add_task(
    store: GraphStore, text: str, n: int = 3, ns: str = "default", v: np.ndarray | None = None
) -> tuple[QueryNode, list[Utterance]]:
    q = query(text, ns, v, outcome=Outcome.SUCCESS, attempts=1, successes=1)
    utts, edges = trace(q, n)
    store.batch([PutNodes([q, *utts]), PutEdges(edges)])
    return q, utts


# ---- nodes -----------------------------------------------------------------------------
def test_round_trip_of_every_node_kind(store: GraphStore) -> None:
    q = query(
        "put a clean apple in the fridge",
        v=vec(1, 0, 0, 0),
        score=0.5,
        outcome=Outcome.SUCCESS,
        metadata={"family": "clean", "n": 3},
    )
    u = Utterance(
        query_id=q.id,
        step=0,
        agent="alice",
        role="planner",
        content="plan",
        tokens=7,
        action="go fridge",
        observation="ok",
        reward=0.5,
        key_step=True,
    )
    ins = Insight(
        text="clean before placing",
        score=2.5,
        supporting=[q.id],
        roles=["actor"],
        rule=InsightRule(
            kind="order",
            actions=["clean <obj> with sinkbasin", "put <obj> in cabinet"],
            scope=["go to sinkbasin", "clean <obj> with sinkbasin", "put <obj> in cabinet"],
            evidence=RuleEvidence(successes_with=3, successes=3, failures_with=0, failures=2),
        ),
        embedding=vec(0, 1, 0, 0),
        graph_embedding=vec(
            0,
            0,
            1,
            0,
        ),
    )
    store.put_nodes([q, u, ins])
    got_q, got_u, got_i = store.get_nodes([q.id, u.id, ins.id], with_vectors=True)
    assert got_q == q
    assert got_u == u
    assert isinstance(got_i, Insight) and got_i.props() == ins.props()
    assert got_i.embedding is not None and ins.embedding is not None
    assert got_i.graph_embedding is not None and ins.graph_embedding is not None
    assert got_i.rule == ins.rule and isinstance(got_i.rule, InsightRule)
    assert store.get_nodes([ins.id])[0] == got_i.model_copy(
        update={"embedding": None, "graph_embedding": None}
    )
    assert np.allclose(got_i.embedding, ins.embedding)
    assert np.allclose(got_i.graph_embedding, ins.graph_embedding)
    bare = store.get_node(q.id)
    assert isinstance(bare, QueryNode) and bare.embedding is None and bare.text == q.text


def test_missing_and_invalid_ids(store: GraphStore) -> None:
    assert store.get_nodes([new_id()]) == [None]
    with pytest.raises(InvalidIdError):
        store.get_nodes(["not-an-id"])


def test_put_replaces_by_id_and_list_keeps_first_insert_order(store: GraphStore) -> None:
    a, b = query("task a"), query("task b")
    store.put_nodes([a, b])
    store.put_nodes([a.model_copy(update={"outcome": Outcome.FAILURE, "attempts": 2})])
    listed = store.list_nodes(NodeKind.QUERY)
    assert [n.id for n in listed] == [a.id, b.id]
    assert isinstance(listed[0], QueryNode) and listed[0].attempts == 2
    assert store.count().nodes == {"Query": 2}


def test_kind_of_an_id_cannot_change(store: GraphStore) -> None:
    q = query("task")
    store.put_nodes([q])
    with pytest.raises(UserInputError):
        store.put_nodes([Insight(id=q.id, text="not a query")])
    assert isinstance(store.get_node(q.id), QueryNode)


def test_list_nodes_filters_namespace_and_limit(store: GraphStore) -> None:
    store.put_nodes([query(f"t{i}", ns="x" if i % 2 else "y") for i in range(6)])
    assert len(store.list_nodes(NodeKind.QUERY, namespace="x")) == 3
    assert len(store.list_nodes(NodeKind.QUERY, limit=4)) == 4
    assert store.list_nodes(NodeKind.INSIGHT) == []


# ---- transactions ----------------------------------------------------------------------
def test_edge_to_missing_node_rolls_back_the_whole_batch(store: GraphStore) -> None:
    q = query("task")
    missing = new_id()
    with pytest.raises(NotFoundError):
        store.batch(
            [PutNodes([q]), PutEdges([Edge(kind=EdgeKind.SIMILAR_TO, src=q.id, dst=missing)])]
        )
    assert store.get_node(q.id) is None
    assert store.count().total_nodes == 0


def test_reads_in_a_batch_see_its_earlier_writes(store: GraphStore) -> None:
    q = query("task")
    put, got = store.batch([PutNodes([q]), GetNodes([q.id])])
    assert put is None and got[0] == q


def test_failed_vector_write_leaves_store_unchanged(store: GraphStore) -> None:
    q = query("one", v=vec(1, 0, 0, 0))
    store.put_nodes([q])
    bad = query("two", v=np.ones(DIM + 1, dtype=np.float32))
    with pytest.raises(EmbeddingDimensionError):
        store.put_nodes([query("three", v=vec(0, 1, 0, 0)), bad])
    assert store.count().nodes == {"Query": 1}
    assert [h.id for h in store.vector_search(NodeKind.QUERY, vec(0, 1, 0, 0), 5)] == [q.id]


# ---- edges and traversal ---------------------------------------------------------------
def test_get_edges_by_direction_and_kind(store: GraphStore) -> None:
    q, utts = add_task(store, "task", n=3)
    out = store.get_edges([utts[1].id], direction="out")
    assert {(e.kind, e.dst) for e in out} == {
        (EdgeKind.NEXT, utts[2].id),
        (EdgeKind.REPLIES_TO, utts[0].id),
    }
    inc = store.get_edges([utts[1].id], kinds=[EdgeKind.NEXT, EdgeKind.HAS_TRACE], direction="in")
    assert {(e.kind, e.src) for e in inc} == {
        (EdgeKind.NEXT, utts[0].id),
        (EdgeKind.HAS_TRACE, q.id),
    }
    both = store.get_edges([utts[1].id], direction="both")
    assert len(both) == 5


def test_edge_props_round_trip_and_replace(store: GraphStore) -> None:
    a, b = query("a"), query("b")
    store.put_nodes([a, b])
    store.put_edges([Edge(kind=EdgeKind.SIMILAR_TO, src=a.id, dst=b.id, props={"score": 0.7})])
    store.put_edges([Edge(kind=EdgeKind.SIMILAR_TO, src=a.id, dst=b.id, props={"score": 0.9})])
    (edge,) = store.get_edges([a.id])
    assert edge.props == {"score": 0.9}
    assert store.count().edges == {"SIMILAR_TO": 1}
    assert store.delete_edges([(EdgeKind.SIMILAR_TO, a.id, b.id)]) == 1
    assert store.delete_edges([(EdgeKind.SIMILAR_TO, a.id, b.id)]) == 0
    assert store.get_edges([a.id]) == []


def test_neighbors_hops_kinds_direction_and_paths(store: GraphStore) -> None:
    a, b, c, d = (query(t) for t in "abcd")
    ins = Insight(text="lesson")
    store.put_nodes([a, b, c, d, ins])
    store.put_edges(
        [
            Edge(kind=EdgeKind.SIMILAR_TO, src=a.id, dst=b.id),
            Edge(kind=EdgeKind.USED_MEMORY_OF, src=c.id, dst=b.id),
            Edge(kind=EdgeKind.SIMILAR_TO, src=c.id, dst=d.id),
            Edge(kind=EdgeKind.SUPPORTS, src=a.id, dst=ins.id),
        ]
    )
    one = {r.id: r for r in store.neighbors([a.id], hops=1)}
    assert set(one) == {b.id, ins.id}
    assert one[b.id].hop == 1 and one[b.id].via.kind == EdgeKind.SIMILAR_TO
    two = {
        r.id: r
        for r in store.neighbors(
            [a.id], hops=2, kinds=[EdgeKind.SIMILAR_TO, EdgeKind.USED_MEMORY_OF]
        )
    }
    assert set(two) == {b.id, c.id}
    assert two[c.id].hop == 2 and two[c.id].via.src == c.id and two[c.id].via.dst == b.id
    three = store.neighbors([a.id], hops=3, node_kind=NodeKind.QUERY)
    assert {r.id for r in three} == {b.id, c.id, d.id}
    assert store.neighbors([a.id], hops=2, direction="out") == store.neighbors(
        [a.id], hops=1, direction="out"
    )
    assert {r.id for r in store.neighbors([b.id], direction="in")} == {a.id, c.id}
    assert store.neighbors([new_id()], hops=2) == []


def test_expand_is_one_level_seen_from_each_origin(store: GraphStore) -> None:
    """The primitive breadth-first search is written over, pinned for every backend."""
    a, b, c = (query(t) for t in "abc")
    ins = Insight(text="lesson")
    store.put_nodes([a, b, c, ins])
    sim = Edge(kind=EdgeKind.SIMILAR_TO, src=a.id, dst=b.id)
    used = Edge(kind=EdgeKind.USED_MEMORY_OF, src=c.id, dst=a.id)
    sup = Edge(kind=EdgeKind.SUPPORTS, src=a.id, dst=ins.id)
    store.put_edges([sim, used, sup])

    def links(op: Expand) -> set[tuple[str, str, NodeKind, bool, tuple[EdgeKind, str, str]]]:
        (found,) = store.batch([op])
        return {(x.origin, x.other, x.other_kind, x.outgoing, x.via.key) for x in found}

    assert links(Expand([a.id])) == {
        (a.id, b.id, NodeKind.QUERY, True, sim.key),
        (a.id, c.id, NodeKind.QUERY, False, used.key),
        (a.id, ins.id, NodeKind.INSIGHT, True, sup.key),
    }
    assert links(Expand([a.id], direction="in")) == {(a.id, c.id, NodeKind.QUERY, False, used.key)}
    assert links(Expand([a.id], [EdgeKind.SUPPORTS], "out")) == {
        (a.id, ins.id, NodeKind.INSIGHT, True, sup.key)
    }
    assert links(Expand([a.id], exclude=frozenset({b.id, c.id}))) == {
        (a.id, ins.id, NodeKind.INSIGHT, True, sup.key)
    }
    # An edge between two origins comes once from each end; unknown ids add nothing.
    assert links(Expand([a.id, b.id, new_id()], [EdgeKind.SIMILAR_TO])) == {
        (a.id, b.id, NodeKind.QUERY, True, sim.key),
        (b.id, a.id, NodeKind.QUERY, False, sim.key),
    }


@pytest.mark.parametrize("with_vectors", [False, True])
def test_expand_and_neighbors_bring_the_nodes_they_reach(
    store: GraphStore, with_vectors: bool
) -> None:
    """With ``with_nodes`` a link carries its far end's node exactly as GetNodes reads it,
    so a traversal asks for both in one read."""
    a, b, c = (query(t, v=vec(1, i, 0, 0)) for i, t in enumerate("abc"))
    ins = Insight(text="lesson", embedding=vec(0, 0, 1, 0))
    store.put_nodes([a, b, c, ins])
    utts, edges = trace(a, 3)
    store.batch([PutNodes(utts), PutEdges(edges)])
    store.put_edges(
        [
            Edge(kind=EdgeKind.SIMILAR_TO, src=a.id, dst=b.id, props={"score": 0.5}),
            Edge(kind=EdgeKind.USED_MEMORY_OF, src=c.id, dst=a.id),
            Edge(kind=EdgeKind.SUPPORTS, src=a.id, dst=ins.id),
        ]
    )
    (plain,) = store.batch([Expand([a.id])])
    (links,) = store.batch([Expand([a.id], with_nodes=True, with_vectors=with_vectors)])
    key = {(x.origin, x.other, x.via.key) for x in plain}
    assert {(x.origin, x.other, x.via.key) for x in links} == key
    assert all(x.node is None for x in plain)
    (read,) = store.batch([GetNodes([x.other for x in links], with_vectors=with_vectors)])
    assert [x.node for x in links] == read
    assert all(x.node is not None and x.node.kind == x.other_kind for x in links)
    reached, by_ids = store.batch(
        [
            Neighbors([a.id], 1, [EdgeKind.HAS_TRACE], "out", with_nodes=True),
            GetNodes([u.id for u in utts]),
        ]
    )
    assert sorted(r.id for r in reached) == sorted(u.id for u in utts)
    steps = [r.node for r in reached if isinstance(r.node, Utterance)]
    assert sorted(steps, key=lambda n: n.step) == by_ids


def test_read_version_changes_with_every_query_or_insight_change(store: GraphStore) -> None:
    """A token a reader may compare to reuse what it read: the same while nothing
    changed, another after any change to a query or an insight; a backend that cannot
    tell says None, always."""

    def version() -> str | None:
        (token,) = store.batch([ReadVersion()])
        return token  # type: ignore[no-any-return]

    q = query("versioned", v=vec(1, 0, 0, 0))
    first = version()
    if first is None:
        store.put_nodes([q])
        assert version() is None
        return
    assert version() == first
    seen = {first}
    store.put_nodes([q])
    changes: list[Callable[[], object]] = [
        lambda: None,
        lambda: store.put_nodes([q.model_copy(update={"metadata": {"k": 1}})]),
        lambda: store.put_nodes([Insight(id=q.id[::-1], text="lesson")]),
        lambda: store.put_nodes([Insight(id=q.id[::-1], text="lesson", retired=True)]),
        lambda: store.delete_nodes([q.id]),
    ]
    for change in changes:
        change()
        token = version()
        assert token is not None
        assert token not in seen
        seen.add(token)
        assert version() == token  # reading changes nothing
    (_, in_a_write) = store.batch([PutNodes([query("other")]), ReadVersion()])
    assert in_a_write is None


def test_read_version_sees_another_handles_writes(tmp_path: Path) -> None:
    """What another process commits changes this handle's token (the change log)."""
    from graph_store import EmbeddedStore

    path = tmp_path / "shared.db"
    with EmbeddedStore(path) as mine, EmbeddedStore(path) as theirs:
        mine.put_nodes([query("mine")])
        (before,) = mine.batch([ReadVersion()])
        theirs.put_nodes([Insight(text="theirs")])
        (after,) = mine.batch([ReadVersion()])
        assert before is not None and after is not None and after != before


def test_neighbors_see_writes_earlier_in_the_same_batch(store: GraphStore) -> None:
    q = query("fresh")
    utts, edges = trace(q, 2)
    _, _, reached = store.batch(
        [PutNodes([q, *utts]), PutEdges(edges), Neighbors([q.id], 1, [EdgeKind.HAS_TRACE], "out")]
    )
    assert {r.id for r in reached} == {u.id for u in utts}


@pytest.mark.parametrize("direction", ["sideways", ""])
def test_bad_direction_is_refused_before_anything_runs(store: GraphStore, direction: str) -> None:
    q = query("kept out")
    with pytest.raises(UserInputError, match="direction must be 'out', 'in' or 'both'"):
        store.batch([PutNodes([q]), Neighbors([q.id], direction=direction)])  # type: ignore[arg-type]
    assert store.get_node(q.id) is None


# ---- vectors ---------------------------------------------------------------------------
def test_vector_search_ranks_filters_and_excludes(store: GraphStore) -> None:
    q1 = query("q1", v=vec(1, 0, 0, 0))
    q2 = query("q2", v=vec(0.9, 0.3, 0, 0))
    q3 = query("q3", v=vec(0.5, 0.8, 0.1, 0))
    q4 = query("q4", ns="other", v=vec(1, 0.01, 0, 0))
    store.put_nodes([q1, q2, q3, q4, Insight(text="i", embedding=vec(1, 0, 0, 0))])
    hits = store.vector_search(NodeKind.QUERY, vec(2, 0, 0, 0), k=2, namespace="default")
    assert [h.id for h in hits] == [q1.id, q2.id]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[1].score == pytest.approx(0.9 / np.hypot(0.9, 0.3), abs=1e-5)
    every = store.vector_search(NodeKind.QUERY, vec(1, 0, 0, 0), k=10)
    assert [h.id for h in every] == [q1.id, q4.id, q2.id, q3.id]
    excl = store.vector_search(
        NodeKind.QUERY, vec(1, 0, 0, 0), k=2, namespace="default", exclude_ids=frozenset({q1.id})
    )
    assert [h.id for h in excl] == [q2.id, q3.id]
    assert store.vector_search(NodeKind.QUERY, vec(1, 0, 0, 0), k=3, namespace="nowhere") == []
    with pytest.raises(EmbeddingDimensionError):
        store.vector_search(NodeKind.QUERY, np.ones(DIM + 2, dtype=np.float32), k=1)


@pytest.mark.parametrize("with_vectors", [False, True])
def test_a_search_brings_the_nodes_it_finds(store: GraphStore, with_vectors: bool) -> None:
    """With ``with_nodes`` each hit carries its node exactly as GetNodes reads it, and the
    hits are the plain search's: ranked, filtered by namespace, exclusions honoured; in a
    batch with other reads, and after a write in the same batch (the exact scan)."""
    q1 = query("q1", v=vec(1, 0, 0, 0))
    q2 = query("q2", v=vec(0.9, 0.3, 0, 0), graph_embedding=vec(0, 0, 1, 0))
    q3 = query("q3", v=vec(0.5, 0.8, 0.1, 0))
    q4 = query("q4", ns="other", v=vec(1, 0.01, 0, 0))
    ins = Insight(text="i", embedding=vec(1, 0, 0, 0))
    store.put_nodes([q1, q2, q3, q4, ins])
    asked: list[dict[str, object]] = [
        {"kind": NodeKind.QUERY, "k": 2, "namespace": "default"},
        {"kind": NodeKind.QUERY, "k": 10},
        {"kind": NodeKind.QUERY, "k": 2, "namespace": "default", "exclude_ids": frozenset({q1.id})},
        {"kind": NodeKind.QUERY, "k": 3, "namespace": "nowhere"},
        {"kind": NodeKind.INSIGHT, "k": 1},
    ]
    for kw in asked:
        v = vec(1, 0.05, 0, 0)
        plain, found, read = store.batch(
            [
                VectorSearch(vector=v, **kw),  # type: ignore[arg-type]
                VectorSearch(vector=v, with_nodes=True, with_vectors=with_vectors, **kw),  # type: ignore[arg-type]
                GetNodes([q1.id, q2.id, q3.id, q4.id, ins.id], with_vectors=with_vectors),
            ]
        )
        assert [(h.id, round(h.score, 5)) for h in found] == [
            (h.id, round(h.score, 5)) for h in plain
        ], kw
        by_id = {n.id: n for n in read if n is not None}
        assert [h.node for h in found] == [by_id[h.id] for h in found], kw
        assert all(h.node is None for h in plain)
        (alone,) = store.batch(
            [VectorSearch(vector=v, with_nodes=True, with_vectors=with_vectors, **kw)]  # type: ignore[arg-type]
        )
        assert alone == found, kw
    q5 = query("q5", v=vec(1, 0.02, 0, 0))
    _, scanned = store.batch(
        [
            PutNodes([q5]),
            VectorSearch(
                NodeKind.QUERY, vec(1, 0, 0, 0), 2, "default", with_nodes=True, with_vectors=True
            ),
        ]
    )
    assert [h.id for h in scanned] == [q1.id, q5.id]
    assert [h.node for h in scanned] == store.get_nodes([q1.id, q5.id], with_vectors=True)


def test_a_node_reached_from_several_origins_comes_with_each_link(store: GraphStore) -> None:
    """One link per origin and edge, each with the node, when nodes and vectors come
    with the expansion (a backend may read such a node once for all its links)."""
    a, b, c, d = (query(t, v=vec(1, i, 0, 0)) for i, t in enumerate("abcd"))
    store.put_nodes([a, b, c, d])
    store.put_edges(
        [
            Edge(kind=EdgeKind.SIMILAR_TO, src=a.id, dst=b.id, props={"score": 0.5}),
            Edge(kind=EdgeKind.SIMILAR_TO, src=c.id, dst=b.id, props={"score": 0.7}),
            Edge(kind=EdgeKind.USED_MEMORY_OF, src=b.id, dst=a.id),
            Edge(kind=EdgeKind.SIMILAR_TO, src=d.id, dst=a.id, props={"score": 0.6}),
        ]
    )
    kinds = [EdgeKind.SIMILAR_TO, EdgeKind.USED_MEMORY_OF]
    origins = [a.id, c.id]
    plain, links = store.batch(
        [
            Expand(origins, kinds, "both", frozenset(origins)),
            Expand(origins, kinds, "both", frozenset(origins), with_nodes=True, with_vectors=True),
        ]
    )
    assert sorted((x.origin, x.other, x.via.key, x.outgoing) for x in links) == sorted(
        (x.origin, x.other, x.via.key, x.outgoing) for x in plain
    )
    assert len(links) == 4  # b from a twice (two edges) and from c; d from a
    assert {x.via.key: x.via.props for x in links} == {x.via.key: x.via.props for x in plain}
    nodes = dict(zip([b.id, d.id], store.get_nodes([b.id, d.id], with_vectors=True), strict=True))
    assert all(x.node == nodes[x.other] for x in links)
    (none,) = store.batch([Expand(origins, [], "both", with_nodes=True, with_vectors=True)])
    assert none == []


def test_second_vector_is_searched_separately(store: GraphStore) -> None:
    a = Insight(
        text="a",
        embedding=vec(1, 0, 0, 0),
        graph_embedding=vec(
            0,
            0,
            0,
            1,
        ),
    )
    b = Insight(text="b", embedding=vec(0, 0, 0, 1), graph_embedding=vec(1, 0, 0, 0))
    store.put_nodes([a, b])
    text_hits = store.vector_search(NodeKind.INSIGHT, vec(1, 0, 0, 0), k=1)
    graph_hits = store.vector_search(
        NodeKind.INSIGHT, vec(1, 0, 0, 0), k=1, field="graph_embedding"
    )
    assert [h.id for h in text_hits] == [a.id]
    assert [h.id for h in graph_hits] == [b.id]


def test_updating_or_dropping_a_vector_changes_search(store: GraphStore) -> None:
    a = query("a", v=vec(1, 0, 0, 0))
    b = query("b", v=vec(0, 1, 0, 0))
    store.put_nodes([a, b])
    store.put_nodes([a.model_copy(update={"embedding": vec(0, 0, 1, 0)})])
    assert store.vector_search(NodeKind.QUERY, vec(0, 0, 1, 0), k=1)[0].id == a.id
    store.put_nodes([a.model_copy(update={"embedding": None})])
    assert [h.id for h in store.vector_search(NodeKind.QUERY, vec(0, 0, 1, 0), k=5)] == [b.id]


# ---- deletes ---------------------------------------------------------------------------
def test_delete_task_cascades_to_its_trace_only(store: GraphStore) -> None:
    q1, u1 = add_task(store, "first", n=4, v=vec(1, 0, 0, 0))
    q2, _ = add_task(store, "second", n=2, v=vec(0, 1, 0, 0))
    ins = Insight(text="lesson", supporting=[q1.id, q2.id])
    store.put_nodes([ins])
    store.put_edges(
        [Edge(kind=EdgeKind.SUPPORTS, src=q.id, dst=ins.id) for q in (q1, q2)]
        + [Edge(kind=EdgeKind.SIMILAR_TO, src=q2.id, dst=q1.id)]
    )
    removed = store.delete_task(q1.id)
    assert removed.nodes == 5
    assert removed.edges == 4 + 3 + 3 + 1 + 1
    assert store.get_nodes([q1.id, *(u.id for u in u1)]) == [None] * 5
    assert store.get_node(q2.id) is not None and store.get_node(ins.id) is not None
    assert store.count().nodes == {"Query": 1, "Utterance": 2, "Insight": 1}
    assert [e.src for e in store.get_edges([ins.id], direction="in")] == [q2.id]
    assert [h.id for h in store.vector_search(NodeKind.QUERY, vec(1, 0, 0, 0), k=5)] == [q2.id]
    with pytest.raises(NotFoundError):
        store.delete_task(q1.id)
    with pytest.raises(NotFoundError):
        store.delete_task(ins.id)


def test_delete_namespace_and_counts(store: GraphStore) -> None:
    add_task(store, "x1", ns="team-x")
    add_task(store, "x2", ns="team-x")
    add_task(store, "y1", ns="team-y", n=2)
    assert store.namespaces() == ["team-x", "team-y"]
    counts = store.count("team-x")
    assert counts.nodes == {"Query": 2, "Utterance": 6}
    assert counts.edges == {"HAS_TRACE": 6, "NEXT": 4, "REPLIES_TO": 4}
    removed = store.delete_namespace("team-x")
    assert (removed.nodes, removed.edges) == (8, 14)
    assert store.namespaces() == ["team-y"]
    assert store.count().total_nodes == 3
    with pytest.raises(UnknownNamespaceError):
        store.delete_namespace("team-x")


# ---- items -----------------------------------------------------------------------------
def item(key: str, ns: str = "default", v: np.ndarray | None = None, **value: object) -> Item:
    return Item(id=query_id_for(ns, key), namespace=ns, key=key, value=dict(value), embedding=v)


def test_item_round_trip_and_listing(store: GraphStore) -> None:
    a = item(
        "prefs",
        ns="lg",
        v=vec(1, 0, 0, 0),
        theme="dark",
        nested={"langs": ["py", "rs"], "n": 2, "none": None},
    )
    b = item("notes", ns="lg", body="buy milk")
    c = item("prefs", ns="other")
    store.put_nodes([a, b, c])
    got = store.get_node(a.id, with_vectors=True)
    assert got == a
    assert isinstance(got, Item) and got.value["nested"] == {
        "langs": ["py", "rs"],
        "n": 2,
        "none": None,
    }
    assert [n.id for n in store.list_nodes(NodeKind.ITEM, namespace="lg")] == [a.id, b.id]
    assert len(store.list_nodes(NodeKind.ITEM)) == 3
    store.put_nodes([a.model_copy(update={"value": {"theme": "light"}})])
    replaced = store.get_node(a.id)
    assert isinstance(replaced, Item) and replaced.value == {"theme": "light"}
    assert store.count().nodes == {"Item": 3}
    assert store.list_nodes(NodeKind.UTTERANCE) == []
    with pytest.raises(ValueError):
        Item(key="", value={})


def test_vector_search_over_items_by_namespace(store: GraphStore) -> None:
    store.put_nodes([query("a task", v=vec(1, 0, 0, 0))])
    near = item("near", ns="lg", v=vec(1, 0.1, 0, 0))
    far = item("far", ns="lg", v=vec(0, 1, 0, 0))
    other = item("other", ns="elsewhere", v=vec(1, 0, 0, 0))
    store.put_nodes([near, far, other, item("bare", ns="lg")])
    hits = store.vector_search(NodeKind.ITEM, vec(1, 0, 0, 0), k=5, namespace="lg")
    assert [h.id for h in hits] == [near.id, far.id]
    assert hits[1].score == pytest.approx(0.0, abs=1e-5)
    assert [h.id for h in store.vector_search(NodeKind.ITEM, vec(1, 0, 0, 0), k=1)] == [other.id]
    assert [h.id for h in store.vector_search(NodeKind.QUERY, vec(0, 1, 0, 0), k=5)] == [
        query("a task").id
    ]


def test_delete_nodes_removes_nodes_and_their_edges(store: GraphStore) -> None:
    q, utts = add_task(store, "task", n=3, v=vec(1, 0, 0, 0))
    a, b = item("a", v=vec(0, 1, 0, 0)), item("b", v=vec(0, 0, 1, 0))
    store.put_nodes([a, b])
    missing = new_id()
    removed = store.delete_nodes([utts[1].id, a.id, missing, a.id])
    # utts[1]: HAS_TRACE in, NEXT in and out, REPLIES_TO in and out.
    assert (removed.nodes, removed.edges) == (2, 5)
    assert store.get_nodes([utts[1].id, a.id]) == [None, None]
    assert store.count().nodes == {"Query": 1, "Utterance": 2, "Item": 1}
    assert store.count().edges == {"HAS_TRACE": 2}
    assert [h.id for h in store.vector_search(NodeKind.ITEM, vec(0, 1, 0, 0), k=5)] == [b.id]
    # Both ends of an edge in one call: the edge is counted once.
    both = store.delete_nodes([q.id, utts[0].id])
    assert (both.nodes, both.edges) == (2, 2)
    assert store.delete_nodes([missing]) == store.delete_nodes([]) == Removed(0, 0)
    with pytest.raises(InvalidIdError):
        store.delete_nodes(["not-an-id"])
    assert store.count().nodes == {"Utterance": 1, "Item": 1}


def test_delete_nodes_rolls_back_with_its_batch(store: GraphStore) -> None:
    q, utts = add_task(store, "task", n=2)
    a = item("a", v=vec(0, 1, 0, 0))
    store.put_nodes([a])
    with pytest.raises(NotFoundError):
        store.batch(
            [
                DeleteNodes([q.id, a.id]),
                PutEdges([Edge(kind=EdgeKind.NEXT, src=utts[0].id, dst=new_id())]),
            ]
        )
    assert store.count().nodes == {"Query": 1, "Utterance": 2, "Item": 1}
    assert store.count().edges == {"HAS_TRACE": 2, "NEXT": 1, "REPLIES_TO": 1}
    assert store.get_node(a.id) == a.model_copy(update={"embedding": None})
    assert [h.id for h in store.vector_search(NodeKind.ITEM, vec(0, 1, 0, 0), k=1)] == [a.id]
    assert {r.id for r in store.neighbors([q.id])} == {u.id for u in utts}


def test_failed_delete_in_a_batch_rolls_back_the_writes_before_it(store: GraphStore) -> None:
    a = item("a")
    with pytest.raises(NotFoundError, match="no task with id"):
        store.batch([PutNodes([a]), DeleteTask(new_id())])
    with pytest.raises(UnknownNamespaceError, match="holds no memory"):
        store.batch([PutNodes([a]), DeleteNamespace("nobody-here")])
    assert store.get_node(a.id) is None


# ---- lifecycle -------------------------------------------------------------------------
@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "embedded-memory"])
def test_reopen_restores_everything(backend: str, tmp_path, reopen) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import open_backend

    first = open_backend(backend, tmp_path)
    q, utts = add_task(first, "persist me", n=3, v=vec(0, 0, 1, 0))
    ins = Insight(text="kept", embedding=vec(0, 1, 0, 0))
    first.put_nodes([ins])
    first.put_edges([Edge(kind=EdgeKind.SUPPORTS, src=q.id, dst=ins.id, props={"w": 1})])
    first.close()
    second = reopen(backend)
    try:
        assert second.count().nodes == {"Query": 1, "Utterance": 3, "Insight": 1}
        assert second.get_node(q.id) == q.model_copy(update={"embedding": None})
        assert second.vector_search(NodeKind.INSIGHT, vec(0, 1, 0, 0), k=1)[0].id == ins.id
        assert second.vector_search(NodeKind.QUERY, vec(0, 0, 1, 0), k=1)[0].id == q.id
        assert {r.id for r in second.neighbors([q.id], kinds=[EdgeKind.HAS_TRACE])} == {
            u.id for u in utts
        }
        assert second.get_edges([q.id], kinds=[EdgeKind.SUPPORTS])[0].props == {"w": 1}
    finally:
        second.close()


def test_closed_store_refuses_calls(store: GraphStore) -> None:
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreUnavailableError):
        store.count()


def test_one_handle_serves_many_threads(store: GraphStore) -> None:
    """The thread model: one store shared by worker threads (as the async wrappers of
    Memory and Task use it), each batch still one transaction."""

    def worker(i: int) -> int:
        q, _ = add_task(store, f"threaded {i}", n=3, v=vec(1, i, 0, 0))
        return len(store.neighbors([q.id], kinds=[EdgeKind.HAS_TRACE]))

    with ThreadPoolExecutor(max_workers=4) as pool:
        reached = list(pool.map(worker, range(4)))  # re-raises a worker's error here
    assert reached == [3, 3, 3, 3]
    assert store.count().nodes == {"Query": 4, "Utterance": 12}


def test_trace_edges_delete_and_roll_back_like_any_edge(store: GraphStore) -> None:
    from graph_store.ops import DeleteEdges

    _, utts = add_task(store, "task", n=3)
    key = (EdgeKind.NEXT, utts[0].id, utts[1].id)
    with pytest.raises(NotFoundError):
        store.batch(
            [DeleteEdges([key]), PutEdges([Edge(kind=EdgeKind.NEXT, src=utts[0].id, dst=new_id())])]
        )
    assert key in {e.key for e in store.get_edges([utts[0].id], [EdgeKind.NEXT])}
    assert store.delete_edges([key]) == 1
    assert store.delete_edges([key]) == 0
    assert store.get_edges([utts[0].id], [EdgeKind.NEXT]) == []
    assert store.count().edges["NEXT"] == 1
    assert {r.id for r in store.neighbors([utts[1].id], kinds=[EdgeKind.REPLIES_TO])} == {
        utts[0].id,
        utts[2].id,
    }
