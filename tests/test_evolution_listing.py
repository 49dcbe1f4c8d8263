"""The maintenance pass reads only live insights, and evolves the store exactly as when it
read the whole tier.

Merging and retirement bound the live insights, not the total: in a long history the
retired ones are most of the tier, so a pass that built every insight grew with
everything ever retired. The seeded run below retires many insights (a small live bound,
a pass every few tasks) and is played twice: once as the store is, once through a store
that ignores the listing's condition (what the pass read before). Both must leave the
same insights, provenance and edges.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import pytest

from gmem import evolution
from gmem.config import MemoryConfig
from gmem.demo.corpus import play
from gmem.embedding import HashingEmbedder, cached
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from graph_store import open_store
from graph_store.base import GraphStore
from graph_store.model import Insight, NodeKind
from graph_store.ops import ListNodes, Op

NS = "default"
TASKS = 120


def _listing_spy(store: GraphStore, *, ignore_where: bool) -> list[int]:
    """Wrap ``store.batch``: count the retired insights each insight listing built, and
    (``ignore_where``) drop the listing's conditions, as the pass listed before."""
    built: list[int] = []
    inner = store.batch

    def batch(ops: Sequence[Op]) -> list[Any]:
        sent = [
            ListNodes(op.kind, op.namespace, op.with_vectors, op.limit)
            if ignore_where and isinstance(op, ListNodes) and op.kind == NodeKind.INSIGHT
            else op
            for op in ops
        ]
        results = inner(sent)
        for op, res in zip(sent, results, strict=True):
            if isinstance(op, ListNodes) and op.kind == NodeKind.INSIGHT:
                built.append(sum(isinstance(n, Insight) and n.retired for n in res))
        return results

    store.batch = batch  # type: ignore[method-assign]
    return built


def _evolve(ignore_where: bool) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[int]]:
    store = open_store(":memory:")
    built = _listing_spy(store, ignore_where=ignore_where)
    cfg = MemoryConfig(max_live_insights=4, merge_every=3)
    embedder = cached(HashingEmbedder())
    mem = Memory(store, embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg)
    for traj in play(TASKS, seed=7):
        mem.ingest(traj)
    during = list(built)  # the listings evolution made, not the reads below
    insights = [n for n in store.list_nodes(NodeKind.INSIGHT, NS) if isinstance(n, Insight)]
    # Insight ids are random: name each by its place in creation order.
    name = {ins.id: f"i{pos}" for pos, ins in enumerate(insights)}
    ids = re.compile("|".join(map(re.escape, name)) or "^$")

    def canon(text: str) -> str:
        return ids.sub(lambda m: name[m.group(0)], text)

    state = [
        (
            canon(ins.text),
            round(ins.score, 9),
            ins.retired,
            ins.supporting,
            ins.contradicting,
            ins.support_count,
            ins.contradiction_count,
            [(p.operation, p.query_id, canon(p.detail)) for p in ins.provenance],
        )
        for ins in insights
    ]
    queries = [n.id for n in store.list_nodes(NodeKind.QUERY, NS)]
    edges = sorted(
        (e.kind.value, canon(e.src), canon(e.dst), canon(repr(sorted(e.props.items()))))
        for e in store.get_edges([*queries, *name], None, "out")
    )
    mem.close()
    return state, edges, during


def test_the_pass_builds_no_retired_insight_and_evolves_as_before() -> None:
    state, edges, built = _evolve(ignore_where=False)
    before_state, before_edges, before_built = _evolve(ignore_where=True)
    retired = sum(s[2] for s in state)
    assert retired > 10, "the run must retire insights for the comparison to mean anything"
    assert sum(before_built) > 0  # the whole-tier listing built retired insights
    assert built and sum(built) == 0  # the live listing builds none
    assert state == before_state
    assert edges == before_edges


def test_listing_live_insights_decodes_no_retired_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded store drops retired insights in SQL: their JSON never reaches Python
    (decoding it was most of a pass's listing once thousands were retired)."""
    store = open_store(":memory:")
    store.put_nodes(
        [Insight(namespace=NS, text=f"old {n}", retired=True) for n in range(6)]
        + [Insight(namespace=NS, text=f"live {n}") for n in range(2)]
    )
    decoded: list[str] = []
    loads = json.loads

    def counting(text: str) -> Any:
        decoded.append(text)
        return loads(text)

    monkeypatch.setattr(json, "loads", counting)  # the module reads.py decodes with
    (live,) = store.batch([ListNodes(NodeKind.INSIGHT, NS, where=evolution._LIVE)])

    assert sorted(n.text for n in live if isinstance(n, Insight)) == ["live 0", "live 1"]
    assert len(decoded) == 2
