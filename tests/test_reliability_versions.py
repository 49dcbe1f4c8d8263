"""Every write that changes a node takes part in the optimistic check (issue 10): the
graph vectors the GNN writes back and the merge's score decay race finishes and neither
side's update is lost.

A write that changes a node without advancing its ``updated_at`` lets a writer that read
the old version pass its check and overwrite it; a writer that read, then writes without
a check, overwrites whatever committed in between. The deterministic tests interleave the
two writers at the worst moment (right after the first one read); the threaded test races
them freely and checks what any serial order satisfies.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from gmem.config import MemoryConfig
from gmem.embedding import HashingEmbedder
from gmem.gnn import VERSION_KEY
from gmem.gnn.embed import write_embeddings
from gmem.llm import HeuristicLLM
from gmem.llm.protocol import InsightOp, InsightRequest, InsightResult
from gmem.memory import Memory
from graph_store import GraphStore
from graph_store.model import DEFAULT_NAMESPACE, Insight, NodeKind, QueryNode, query_id_for
from graph_store.ops import WRITE_OPS, Op
from graph_store.programs import Runner

pytestmark = pytest.mark.torch  # gmem.gnn.embed needs torch

TASK = "put a clean mug in the cabinet"
GRAPH_DIM = 8


class AgreeingLLM(HeuristicLLM):
    """Derivation always agrees with the most similar insight (adds one when none exists),
    so every finish rewrites the same insight."""

    def derive_insights(self, request: InsightRequest) -> InsightResult:
        if request.existing:
            return InsightResult(
                operations=[InsightOp(op="agree", insight_id=request.existing[0].id)]
            )
        text = f"check the tools before starting: {request.trajectory.task}"
        return InsightResult(operations=[InsightOp(op="add", text=text)])


class AfterRead(GraphStore):
    """Runs ``hook`` once, right after the first read batch that ``when`` accepts: a racing
    writer's commit, placed between another writer's read and its write."""

    def __init__(self, inner: GraphStore) -> None:
        self.inner = inner
        self.url = inner.url
        self.hook: Callable[[], object] | None = None
        self.when: Callable[[list[Any]], bool] = lambda results: True

    def batch(self, ops: Sequence[Op]) -> list[Any]:
        results = self.inner.batch(ops)
        reads_only = not any(isinstance(op, WRITE_OPS) for op in ops)
        if self.hook is not None and reads_only and self.when(results):
            hook, self.hook = self.hook, None
            hook()
        return results

    def _transact(self, ops: list[Op], work: Callable[[Runner], list[Any]]) -> list[Any]:
        return self.inner._transact(ops, work)

    def close(self) -> None:
        """The inner store belongs to the test fixture."""


def _config() -> MemoryConfig:
    return MemoryConfig(merge_every=0, min_relevance=0.0, insight_min_similarity=0.0)


def _memory(store: GraphStore) -> Memory:
    embedder = HashingEmbedder()
    cfg = _config()
    return Memory(store, embedder=embedder, llm=AgreeingLLM(embedder, cfg), config=cfg)


def _finish(
    mem: Memory, text: str = TASK, *, before_finish: Callable[[], None] = lambda: None
) -> None:
    with mem.task(text) as t:
        t.record("a", "actor", "take mug", action="take mug 1 from countertop 1")
        t.record("a", "actor", "store it", action="put mug 1 in/on cabinet 1")
        before_finish()
        t.finish(success=True)


def _vector(value: float) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.full(GRAPH_DIM, value, dtype=np.float32)


def _query(store: GraphStore, text: str = TASK) -> QueryNode:
    node = store.get_node(query_id_for(DEFAULT_NAMESPACE, text), with_vectors=True)
    assert isinstance(node, QueryNode)
    return node


def test_vectors_written_back_keep_a_finish_that_committed_after_their_read(
    store: GraphStore,
) -> None:
    mem = _memory(store)
    _finish(mem)
    qid = _query(store).id
    hooked = AfterRead(store)
    hooked.hook = lambda: _finish(mem)  # commits attempt 2 between the read and the write
    assert write_embeddings(hooked, {qid: _vector(0.25)}, "v-test", mem.config) == 1
    q = _query(store)
    assert q.attempts == 2, "the vector write overwrote a finish that committed after its read"
    assert q.graph_embedding is not None and np.allclose(q.graph_embedding, 0.25)
    assert q.metadata[VERSION_KEY] == "v-test"


def test_a_finish_that_read_before_vectors_were_written_keeps_them(store: GraphStore) -> None:
    hooked = AfterRead(store)
    mem = _memory(hooked)
    _finish(mem)
    qid = _query(store).id

    def vectors_land() -> None:
        write_embeddings(store, {qid: _vector(0.5)}, "v-race", mem.config)

    def arm() -> None:
        hooked.hook = vectors_land  # after the finish read the query, before it writes

    _finish(mem, before_finish=arm)
    q = _query(store)
    assert q.attempts == 2
    assert q.graph_embedding is not None and np.allclose(q.graph_embedding, 0.5), (
        "a finish that read the query before the vectors were written dropped them"
    )
    assert q.metadata[VERSION_KEY] == "v-race"


def test_a_finish_racing_the_merge_keeps_the_decay(store: GraphStore) -> None:
    hooked = AfterRead(store)
    mem = _memory(hooked)
    cfg = mem.config
    _finish(mem, "put a clean mug in the cabinet (1)")  # adds the insight
    _finish(mem, "put a clean mug in the cabinet (2)")  # agrees: above the neutral score
    (insight,) = store.list_nodes(NodeKind.INSIGHT)
    assert isinstance(insight, Insight)
    before = insight.score
    assert before == pytest.approx(cfg.insight_initial_score + cfg.insight_agree_bonus)
    # A second Memory's merge pass: nothing credited the insight since it started, so the
    # pass decays the score toward neutral.
    merger = _memory(store)

    def decay() -> None:
        merger.merge_insights()

    def arm() -> None:
        hooked.when = lambda results: any(
            isinstance(n, Insight) for r in results if isinstance(r, list) for n in r
        )
        hooked.hook = decay  # after the finish read the insight, before it writes

    _finish(mem, "put a clean mug in the cabinet (3)", before_finish=arm)
    after = store.get_node(insight.id)
    assert isinstance(after, Insight)
    neutral = cfg.insight_initial_score
    decayed = neutral + (before - neutral) * cfg.insight_decay
    expected = min(cfg.insight_max_score, decayed + cfg.insight_agree_bonus)
    assert after.score == pytest.approx(expected), "the finish overwrote the merge's decay"


def test_finishes_and_vector_writes_racing_lose_nothing(store: GraphStore) -> None:
    mem = _memory(store)
    texts = [f"put a clean mug in the cabinet ({i})" for i in range(3)]
    finished: Counter[str] = Counter()
    passes: list[tuple[str, list[str]]] = []
    errors: list[BaseException] = []
    done = threading.Event()
    lock = threading.Lock()

    def finisher(n: int) -> None:
        try:
            for i in range(6):
                text = texts[(n + i) % len(texts)]
                _finish(mem, text)
                with lock:
                    finished[text] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(RuntimeError(f"finisher: {exc!r}"))

    def embedder() -> None:
        try:
            k = seen = 0
            while not done.is_set():
                # A refresh after every second finish, as gnn_refresh_every paces it: a
                # writer rewriting every node without pause would starve the finishes
                # (each would conflict on every retry), which no cadence does.
                with lock:
                    total = sum(finished.values())
                if total < seen + 2:
                    done.wait(0.01)
                    continue
                seen = total
                ids = [
                    n.id
                    for kind in (NodeKind.QUERY, NodeKind.INSIGHT)
                    for n in store.list_nodes(kind)
                ]
                version = f"pass-{k}"
                vectors = {i: _vector(k + 1.0) for i in ids}
                write_embeddings(store, vectors, version, mem.config)
                passes.append((version, ids))
                k += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(RuntimeError(f"vector writer: {exc!r}"))

    writers = [threading.Thread(target=finisher, args=(n,)) for n in range(3)]
    gnn = threading.Thread(target=embedder)
    gnn.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    gnn.join()
    assert not errors, errors
    assert len(passes) >= 1
    for text, count in finished.items():
        assert _query(store, text).attempts == count, f"an attempt of {text!r} was lost"
    _check_last_pass_kept(store, passes)


def _check_last_pass_kept(store: GraphStore, passes: list[tuple[str, list[str]]]) -> None:
    last: dict[str, str] = {}
    for version, ids in passes:
        last.update(dict.fromkeys(ids, version))
    for node_id, version in last.items():
        node = store.get_node(node_id, with_vectors=True)
        assert node is not None and node.metadata.get(VERSION_KEY) == version, (
            f"{node_id}: the vectors of {version} were overwritten by an older copy"
        )
        k = int(version.split("-")[1])
        assert node.graph_embedding is not None and np.allclose(node.graph_embedding, k + 1.0)
