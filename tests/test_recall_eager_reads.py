"""A recall that can keep no nodes reads them with the searches and hops that find them.

That is every recall on a store whose :class:`~graph_store.ops.ReadVersion` is None
(Neo4j) and, with ``recall_reuse_nodes=0``, on any store; the results must be those of
the recalls that read the nodes in batches of their own.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gmem.config import MemoryConfig
from gmem.demo.corpus import play
from gmem.embedding import HashingEmbedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from graph_store import EmbeddedStore
from graph_store.ops import GetNodes
from tests.recall_trace import CONFIGS, trace
from tests.test_recall_equivalence import FIXTURE


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_reading_nodes_with_their_searches_changes_no_recall(name: str) -> None:
    before = json.loads(FIXTURE.read_text())[name]
    now = trace(EmbeddedStore(), **CONFIGS[name], recall_reuse_nodes=0)
    assert now == before


def test_no_batch_reads_again_what_a_search_or_a_hop_brought() -> None:
    store = EmbeddedStore()
    embedder = HashingEmbedder()
    cfg = MemoryConfig(recall_reuse_nodes=0)
    mem = Memory(store, embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg)
    read: list[str] = []
    real = store.batch

    def batch(ops: Any) -> list[Any]:
        read.extend(i for op in ops if isinstance(op, GetNodes) for i in op.ids)
        return real(ops)

    try:
        for run in play(20, seed=3):
            mem.ingest(run)
        store.batch = batch  # type: ignore[method-assign]
        recalled = 0
        for run in play(6, seed=21):
            read.clear()
            recall = mem.recall(run.task)
            recalled += len(recall.queries) + len(recall.insights)
            assert not {q.id for q in recall.queries} & set(read), run.task
            assert not {i.id for i in recall.insights} & set(read), run.task
        assert recalled > 0
    finally:
        mem.close()
