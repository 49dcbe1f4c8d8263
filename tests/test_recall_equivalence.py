"""Recall returns what it returned before its read path was optimised.

The fixture holds the recalls of a seeded store made by the code before the change (see
:mod:`tests.recall_trace`); the store is rebuilt here, in memory and in a file, and every
recall must match: the same queries ranked the same way with the same scores and paths,
the same insights, the same trajectories and the same prompt. Nodes kept between
recalls must never outlive a change, whoever makes it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gmem.boundary import QUARANTINED
from gmem.config import MemoryConfig
from gmem.demo.world import make_tasks
from gmem.embedding import HashingEmbedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from graph_store import EmbeddedStore, Insight, QueryNode
from tests.recall_trace import CONFIGS, PROBES, as_data, trace

FIXTURE = Path(__file__).parent / "fixtures" / "recall_before.json"


def _first_difference(before: list[dict[str, Any]], now: list[dict[str, Any]]) -> str:
    for i, (a, b) in enumerate(zip(before, now, strict=False)):
        for key in a:
            if a[key] != b.get(key):
                return f"recall {i} ({a['task']!r}): {key} was {a[key]!r}, now {b.get(key)!r}"
    return f"{len(before)} recalls before, {len(now)} now"


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("where", ["memory", "file"])
def test_recall_results_match_the_code_before(name: str, where: str, tmp_path: Path) -> None:
    """On the exact store, where scores are the same floats in every run (an approximate
    index or Neo4j's own cosine give other last digits, and so other ties)."""
    before = json.loads(FIXTURE.read_text())[name]
    assert sum(len(r["insights"]) for r in before) > 20  # the trace exercises insights
    store = EmbeddedStore(":memory:" if where == "memory" else tmp_path / "trace.db")
    now = trace(store, **CONFIGS[name])
    assert now == before, _first_difference(before, now)


def _memory(path: Path, **config: Any) -> Memory:
    embedder = HashingEmbedder()
    cfg = MemoryConfig(**config)
    return Memory(path, embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg)


def test_reused_nodes_follow_another_handles_writes(tmp_path: Path) -> None:
    """A Memory that keeps nodes between recalls sees what another process changed: an
    insight retired and a query quarantined there are gone from its next recall, which
    matches a Memory that keeps nothing."""
    path = tmp_path / "shared.db"
    trace(EmbeddedStore(path), **CONFIGS["ungated"])
    probes = [t.text for t in make_tasks(PROBES, seed=11)]
    mine = _memory(path, **CONFIGS["ungated"])
    try:
        shown = [(text, r) for text in probes if (r := mine.recall(text)).insights]
        assert shown
        text, first = shown[0]
        for again in probes:  # every node those recalls read is now kept
            mine.recall(again)
        insight_id = first.insights[0].id
        query_id = first.kept_query_ids[0]
        with EmbeddedStore(path) as theirs:
            ins, q = theirs.get_nodes([insight_id, query_id])
            assert isinstance(ins, Insight) and isinstance(q, QueryNode)
            later = max(ins.updated_at, q.updated_at) + timedelta(seconds=1)
            theirs.put_nodes(
                [
                    ins.model_copy(update={"retired": True, "updated_at": later}),
                    q.model_copy(
                        update={"metadata": {**q.metadata, QUARANTINED: True}, "updated_at": later}
                    ),
                ]
            )
        after = mine.recall(text)
        assert insight_id not in {i.id for i in after.insights}
        assert query_id not in {rq.id for rq in after.queries}
        fresh = _memory(path, recall_reuse_nodes=0, **CONFIGS["ungated"])
        try:
            for again in probes:
                # To 6 digits: a handle that took the change in through its log scores
                # vectors in another order than one that read them whole, a float32 ulp.
                assert as_data(mine.recall(again), 6) == as_data(fresh.recall(again), 6)
        finally:
            fresh.close()
    finally:
        mine.close()
