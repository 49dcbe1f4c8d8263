"""Ingest throughput and retrieval latency, Neo4j against the embedded store, same data.

Data: ``--tasks`` trajectories played in the demo world (about 22 messages each), made
distinct by a numbered suffix, embedded once (MiniLM by default), each written as gmem's
evolution writes a finished task minus the reasoner's work: the query node with its
vector, the trace (HAS_TRACE, NEXT, REPLIES_TO) and SIMILAR_TO edges to its five nearest
earlier tasks (computed up front with numpy, so that only store writes are timed).

Ingest: ``--batch`` tasks per transaction (one ``PutNodes`` and one ``PutEdges``), timed from
the first write to the last commit; reported as utterances per second.
Retrieval, after a reopen (and for Neo4j again after ``reindex_vectors()``, which
rebuilds the HNSW index that 200 commits left in many Lucene segments): ``store`` is the
store calls one recall makes (vector top-3
in the namespace, one hop over the query graph, the nodes found, their traces);
``recall`` is ``Memory.recall`` end to end with the heuristic reasoner (task embedding
included). Both over ``--queries`` unseen task texts.

Run (Neo4j from ``graph_store/neo4j/server.sh start``; its database is emptied first):
``eval "$(graph_store/neo4j/server.sh env)"; .venv/bin/python benchmarks/neo4j_vs_embedded.py``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bulk import query_of, trace_of
from gmem.config import MemoryConfig
from gmem.demo.corpus import play
from gmem.demo.world import make_tasks
from gmem.embedding import TextEmbedder, make_embedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from graph_store import (
    Edge,
    EdgeKind,
    EmbeddedStore,
    GraphStore,
    NodeKind,
    QueryNode,
    Utterance,
)
from graph_store.neo4j import Neo4jStore
from graph_store.ops import GetNodes, Neighbors, PutEdges, PutNodes, VectorSearch

Task = tuple[QueryNode, list[Utterance], list[Edge]]


def make_data(n: int, embedder: TextEmbedder) -> list[Task]:
    trajectories = play(n, seed=3)
    texts = [f"{t.task} (job {i})" for i, t in enumerate(trajectories)]
    vectors = np.asarray(embedder.embed(texts), dtype=np.float32)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    tasks: list[Task] = []
    for i, (traj, text) in enumerate(zip(trajectories, texts, strict=True)):
        traj.task = text
        q = query_of(traj, vectors[i])
        utts, edges = trace_of(traj, q.id)
        if i:
            scores = unit[:i] @ unit[i]
            for j in np.argsort(-scores)[:5]:
                if scores[j] >= 0.6:
                    edges.append(
                        Edge(
                            kind=EdgeKind.SIMILAR_TO,
                            src=q.id,
                            dst=tasks[j][0].id,
                            props={"score": round(float(scores[j]), 4)},
                        )
                    )
        tasks.append((q, utts, edges))
    return tasks


def ingest(store: GraphStore, tasks: list[Task], batch: int) -> float:
    t0 = time.perf_counter()
    for start in range(0, len(tasks), batch):
        part = tasks[start : start + batch]
        nodes = [n for q, utts, _ in part for n in (q, *utts)]
        store.batch([PutNodes(nodes), PutEdges([e for _, _, edges in part for e in edges])])
    return time.perf_counter() - t0


def store_recall(store: GraphStore, vector: np.ndarray) -> None:
    (hits,) = store.batch([VectorSearch(NodeKind.QUERY, vector, 3, "default")])
    seeds = [h.id for h in hits]
    (near,) = store.batch(
        [
            Neighbors(
                seeds, 1, [EdgeKind.SIMILAR_TO, EdgeKind.USED_MEMORY_OF], "both", NodeKind.QUERY
            )
        ]
    )
    ids = seeds + [r.id for r in near]
    store.batch([GetNodes(ids, with_vectors=True), Neighbors(ids, 1, [EdgeKind.HAS_TRACE], "out")])


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=50, help="tasks per transaction")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--embedder", default="minilm", help="minilm or hashing[:dim]")
    args = parser.parse_args()
    uri = os.environ.get("GMEM_NEO4J_URI")
    if not uri:
        raise SystemExit('set GMEM_NEO4J_URI: eval "$(graph_store/neo4j/server.sh env)"')
    embedder = make_embedder(args.embedder)
    t0 = time.perf_counter()
    tasks = make_data(args.tasks, embedder)
    utterances = sum(len(u) for _, u, _ in tasks)
    edges = sum(len(e) for _, _, e in tasks)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; embedder {args.embedder}"
    )
    print(
        f"data: {len(tasks)} tasks, {utterances} utterances, {edges} edges "
        f"(built in {time.perf_counter() - t0:.0f} s); {args.batch} tasks per transaction"
    )

    path = Path(tempfile.mkdtemp()) / "bench.db"
    opened: dict[str, Callable[[], GraphStore]] = {
        "embedded": lambda: EmbeddedStore(path, durability="normal"),
        "neo4j": lambda: Neo4jStore(uri),
    }
    probes = [f"{t.text} (probe {i})" for i, t in enumerate(make_tasks(args.queries, seed=11))]
    probe_vectors = np.asarray(embedder.embed(probes), dtype=np.float32)
    cfg = MemoryConfig()
    for name, open_store in opened.items():
        store = open_store()
        if isinstance(store, Neo4jStore):
            store.delete_all()
        seconds = ingest(store, tasks, args.batch)
        counts = store.count()
        store.close()
        assert counts.nodes.get("Utterance") == utterances, counts
        print(
            f"{name:<9} ingest: {utterances / seconds:8.0f} utterances/s "
            f"({len(tasks) / seconds:.0f} tasks/s, {seconds:.1f} s)"
        )
        store = open_store()
        rounds = ["as written", "reindexed"] if isinstance(store, Neo4jStore) else ["as written"]
        for label in rounds:
            if isinstance(store, Neo4jStore) and label == "reindexed":
                t = time.perf_counter()
                store.reindex_vectors()
                print(f"{name:<9} reindex_vectors() took {time.perf_counter() - t:.1f} s")
            for v in probe_vectors[:20]:
                store_recall(store, v)
            it = iter(probe_vectors)
            store_ms = timed(lambda it=it, s=store: store_recall(s, next(it)), len(probes))
            memory = Memory(store, embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg)
            for text in probes[:20]:
                memory.recall(text)
            texts = iter(probes)
            recall_ms = timed(lambda texts=texts, m=memory: m.recall(next(texts)), len(probes))
            for what, xs in (("store calls", store_ms), ("Memory.recall", recall_ms)):
                print(
                    f"{name:<9} {what:<14} p50 {statistics.median(xs):6.1f} ms   "
                    f"p95 {percentile(xs, 95):6.1f} ms   (n={len(xs)}, {label})"
                )
        store.close()


if __name__ == "__main__":
    main()
