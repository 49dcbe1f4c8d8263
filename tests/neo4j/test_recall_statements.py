"""How many statements (round trips) a recall costs on Neo4j, counted at the driver.

Each statement is a round trip and a transaction on the server, which on a shared
machine cost more than the small reads of a recall themselves; these tests pin what the
read path was changed for: the reads of one batch go in one statement, and the nodes a
search or a hop finds come with it, so no batch of its own reads them again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from gmem.config import MemoryConfig
from gmem.demo.corpus import play
from gmem.embedding import HashingEmbedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from graph_store import Edge, EdgeKind, NodeKind, QueryNode
from graph_store.model import query_id_for
from graph_store.neo4j import Neo4jStore, programs
from graph_store.ops import Expand, GetEdges, GetNodes, Op, VectorSearch

pytestmark = pytest.mark.neo4j


class _Counting:
    """A transaction or session that notes the text of every statement run on it."""

    def __init__(self, inner: Any, seen: list[str]) -> None:
        self.inner, self.seen = inner, seen

    def run(self, text: str, params: dict[str, Any]) -> Any:
        self.seen.append(text)
        return self.inner.run(text, params)


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    seen: list[str] = []
    real = programs.drive
    monkeypatch.setattr(
        programs,
        "drive",
        lambda tx, program: real(_Counting(tx, seen), program),  # type: ignore[arg-type]
    )
    yield seen


def _query(text: str, v: list[float]) -> QueryNode:
    vector = np.array(v, dtype=np.float32)
    return QueryNode(id=query_id_for("default", text), text=text, embedding=vector)


def test_the_reads_of_one_batch_are_one_statement(
    neo4j_store: Neo4jStore, statements: list[str]
) -> None:
    """Four independent reads, one round trip, and each result as when asked alone."""
    a, b, c = _query("a", [1, 0, 0, 0]), _query("b", [0.9, 0.3, 0, 0]), _query("c", [0, 1, 0, 0])
    neo4j_store.put_nodes([a, b, c])
    similar = Edge(kind=EdgeKind.SIMILAR_TO, src=a.id, dst=b.id, props={"score": 0.9})
    neo4j_store.put_edges([similar])
    probe = np.array([1, 0.1, 0, 0], dtype=np.float32)
    ops: list[Op] = [
        GetNodes([a.id, c.id], with_vectors=True),
        Expand([a.id], [EdgeKind.SIMILAR_TO], "both", frozenset({a.id}), True, True),
        GetEdges([a.id, b.id], [EdgeKind.SIMILAR_TO], "out"),
        VectorSearch(NodeKind.QUERY, probe, 2, "default", with_nodes=True, with_vectors=True),
    ]
    alone = [neo4j_store.batch([op])[0] for op in ops]
    statements.clear()
    together = neo4j_store.batch(ops)
    assert len(statements) == 1, statements
    assert together == alone
    assert [h.id for h in together[3]] == [a.id, b.id]
    assert together[1][0].node == neo4j_store.get_node(b.id, with_vectors=True)


def test_a_recall_reads_each_step_in_one_statement(
    neo4j_store: Neo4jStore, statements: list[str]
) -> None:
    """Seeds with their nodes, the hop with its nodes and vectors, then the kept traces
    with the insights' edges and search: one statement each, and no batch reads the
    ranked queries again (before: seven statements, two of them re-reading nodes)."""
    embedder = HashingEmbedder()
    cfg = MemoryConfig()
    mem = Memory(neo4j_store, embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg)
    batches: list[list[str]] = []
    real_batch = neo4j_store.batch

    def batch(ops: Any) -> list[Any]:
        batches.append([type(op).__name__ for op in ops])
        return real_batch(ops)

    try:
        for run in play(12, seed=3):
            mem.ingest(run)
        mem.recall("warm the handle up: it learns that nothing can be kept")
        neo4j_store.batch = batch  # type: ignore[method-assign]
        for run in play(4, seed=21):
            statements.clear()
            batches.clear()
            recall = mem.recall(run.task)
            assert recall.queries and recall.trajectories, run.task
            assert len(statements) == len(batches), (batches, statements)
            assert batches[:3] == [
                ["ReadVersion", "VectorSearch"],
                ["Neighbors"],
                ["Expand", "Expand", "VectorSearch"],
            ], batches
            # What may follow reads only what no earlier statement brought: the
            # supporting tasks of scoped insights.
            assert len(batches) <= 4, batches
    finally:
        mem.close()


def test_a_batch_of_many_reads_runs_them_one_by_one(
    neo4j_store: Neo4jStore, statements: list[str]
) -> None:
    """Past ``MOST_TOGETHER`` the reads are not fused (each combination is a plan of its
    own on the server), and every result is still its own read's."""
    nodes = [_query(f"q{i}", [1, i, 0, 0]) for i in range(programs.MOST_TOGETHER + 1)]
    neo4j_store.put_nodes(nodes)
    ops: list[Op] = [GetNodes([n.id], with_vectors=True) for n in nodes]
    statements.clear()
    found = neo4j_store.batch(ops)
    assert len(statements) == len(ops)
    assert found == [[n] for n in nodes]
    statements.clear()
    assert neo4j_store.batch(ops[: programs.MOST_TOGETHER]) == found[:-1]
    assert len(statements) == 1
