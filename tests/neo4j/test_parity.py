"""Neo4j against the embedded store on random graphs: same reads, same answers.

The embedded store is the reference. Breadth-first search may pick a different (equally
valid) first edge when two reach a node in the same hop, so traversals are compared by
reached node and hop, and each ``via`` edge is checked to come from the hop before.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import pytest

from graph_store import EmbeddedStore, GraphStore
from graph_store.model import Edge, EdgeKind, Insight, Node, NodeKind, QueryNode, Utterance
from graph_store.neo4j import Neo4jStore

DIM = 8


def random_graph(seed: int) -> tuple[list[Node], list[Edge]]:
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    nodes: list[Node] = []
    for i in range(40):
        ns = rng.choice(["a", "b", "c"])
        vec = nprng.normal(size=DIM).astype(np.float32)
        roll = rng.random()
        if roll < 0.4:
            nodes.append(QueryNode(text=f"task {i}", namespace=ns, embedding=vec))
        elif roll < 0.8:
            q = next((n for n in reversed(nodes) if isinstance(n, QueryNode)), None)
            qid = q.id if q else QueryNode(text="x").id
            nodes.append(
                Utterance(query_id=qid, namespace=ns, step=i, agent="a", role="r", content=f"u{i}")
            )
        else:
            nodes.append(
                Insight(
                    text=f"lesson {i}",
                    namespace=ns,
                    embedding=vec,
                    graph_embedding=nprng.normal(size=3).astype(np.float32),
                )
            )
    edges = {
        (kind, src.id, dst.id): Edge(kind=kind, src=src.id, dst=dst.id, props={"w": rng.random()})
        for kind, src, dst in (
            (rng.choice(list(EdgeKind)), rng.choice(nodes), rng.choice(nodes)) for _ in range(120)
        )
    }
    return nodes, list(edges.values())


@pytest.fixture(params=[1, 2, 3])
def pair(
    request: pytest.FixtureRequest, neo4j_store: Neo4jStore
) -> Iterator[tuple[GraphStore, GraphStore]]:
    nodes, edges = random_graph(request.param)
    embedded = EmbeddedStore(":memory:")
    for store in (embedded, neo4j_store):
        store.put_nodes(nodes)
        store.put_edges(edges)
    yield embedded, neo4j_store
    embedded.close()


def test_counts_namespaces_and_lists_agree(pair: tuple[GraphStore, GraphStore]) -> None:
    ref, neo = pair
    assert neo.count() == ref.count()
    for ns in ref.namespaces():
        assert neo.count(ns) == ref.count(ns)
    assert neo.namespaces() == ref.namespaces()
    for kind in NodeKind:
        got, want = neo.list_nodes(kind, with_vectors=True), ref.list_nodes(kind, with_vectors=True)
        assert [n.props() for n in got] == [n.props() for n in want]
        for a, b in zip(got, want, strict=True):
            for field in ("embedding", "graph_embedding"):
                va, vb = getattr(a, field), getattr(b, field)
                assert (va is None and vb is None) or np.array_equal(va, vb)
        assert [n.id for n in neo.list_nodes(kind, namespace="b", limit=3)] == [
            n.id for n in ref.list_nodes(kind, namespace="b", limit=3)
        ]


def test_edges_agree(pair: tuple[GraphStore, GraphStore]) -> None:
    ref, neo = pair
    ids = [n.id for n in ref.list_nodes(NodeKind.QUERY)][:10]
    for direction in ("out", "in", "both"):
        for kinds in (None, [EdgeKind.SIMILAR_TO, EdgeKind.NEXT]):
            got = neo.get_edges(ids, kinds, direction)
            want = ref.get_edges(ids, kinds, direction)
            assert sorted(got, key=lambda e: e.key) == sorted(want, key=lambda e: e.key)


def test_traversals_agree(pair: tuple[GraphStore, GraphStore]) -> None:
    ref, neo = pair
    starts = [n.id for n in ref.list_nodes(NodeKind.QUERY)][:6]
    for hops in (1, 2, 3):
        for direction in ("out", "in", "both"):
            for node_kind in (None, NodeKind.QUERY):
                for kinds in (None, [EdgeKind.SIMILAR_TO, EdgeKind.USED_MEMORY_OF]):
                    args = (starts[:2], hops, kinds, direction, node_kind)
                    got = neo.neighbors(*args)  # type: ignore[arg-type]
                    want = ref.neighbors(*args)  # type: ignore[arg-type]
                    assert sorted((r.id, r.hop) for r in got) == sorted((r.id, r.hop) for r in want)
                    hop_of = {r.id: r.hop for r in got} | dict.fromkeys(starts[:2], 0)
                    for r in got:
                        other = r.via.src if r.via.dst == r.id else r.via.dst
                        assert r.id in (r.via.src, r.via.dst)
                        assert hop_of[other] == r.hop - 1


def test_vector_search_agrees(pair: tuple[GraphStore, GraphStore]) -> None:
    ref, neo = pair
    rng = np.random.default_rng(0)
    for _ in range(10):
        probe = rng.normal(size=DIM).astype(np.float32)
        for kind in (NodeKind.QUERY, NodeKind.INSIGHT):
            for ns in (None, "a", "c"):
                exclude = frozenset(n.id for n in ref.list_nodes(kind)[:2])
                got = neo.vector_search(kind, probe, 4, ns, exclude_ids=exclude)
                want = ref.vector_search(kind, probe, 4, ns, exclude_ids=exclude)
                assert [h.id for h in got] == [h.id for h in want]
                assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-5)
        graph_probe = rng.normal(size=3).astype(np.float32)
        got = neo.vector_search(NodeKind.INSIGHT, graph_probe, 3, field="graph_embedding")
        want = ref.vector_search(NodeKind.INSIGHT, graph_probe, 3, field="graph_embedding")
        assert [h.id for h in got] == [h.id for h in want]


def test_deletes_agree(pair: tuple[GraphStore, GraphStore]) -> None:
    ref, neo = pair
    for q in ref.list_nodes(NodeKind.QUERY)[:3]:
        assert neo.delete_task(q.id) == ref.delete_task(q.id)
    assert neo.count() == ref.count()
    assert neo.delete_namespace("b") == ref.delete_namespace("b")
    assert neo.count() == ref.count()
    assert neo.namespaces() == ref.namespaces()
