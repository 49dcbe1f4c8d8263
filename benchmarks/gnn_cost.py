"""What the structural encoder costs: full refresh, incremental refresh, recall latency.

A synthetic memory of ``--tasks`` solved demo-world tasks (oracle plans as traces, one
utterance per action plus a planner message) is written straight through the store
protocol, with SIMILAR_TO edges to each task's five nearest earlier tasks, so a graph of
a hundred thousand nodes builds in seconds. Then, in one run:

- full refresh: export + train (``gnn_epochs``) + write every embedding back;
- incremental refresh of ``--new`` tasks added afterwards (no retraining);
- recall p50/p95 over the same tasks with ``gnn_alpha = 1`` (text-only) and hybrid.

Texts are embedded with the lexical ``HashingEmbedder`` (milliseconds), so the latency
difference is the encoder's and the second vector search's, not MiniLM's.

Run: ``python benchmarks/gnn_cost.py [--tasks 10000] [--new 100] [--encoder hetero-sage]``
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gmem.config import MemoryConfig  # noqa: E402
from gmem.demo.world import make_tasks, oracle_plan  # noqa: E402
from gmem.embedding import HashingEmbedder  # noqa: E402
from gmem.gnn.embed import embed_namespace, refresh_tasks  # noqa: E402
from gmem.llm import HeuristicLLM  # noqa: E402
from gmem.memory import Memory  # noqa: E402
from graph_store import EmbeddedStore  # noqa: E402
from graph_store.base import GraphStore  # noqa: E402
from graph_store.model import (  # noqa: E402
    Edge,
    EdgeKind,
    Outcome,
    QueryNode,
    Utterance,
    query_id_for,
)
from graph_store.ops import PutEdges, PutNodes  # noqa: E402


def build(store: GraphStore, embedder: HashingEmbedder, tasks: list, start: int) -> list[str]:  # type: ignore[type-arg]
    """Write solved tasks with their traces; returns their query ids."""
    texts = [f"{t.text} ({start + i})" for i, t in enumerate(tasks)]
    vectors = embedder.embed(texts)
    ids = [query_id_for("default", x) for x in texts]
    batch_nodes: list[QueryNode | Utterance] = []
    edges: list[Edge] = []
    for i, task in enumerate(tasks):
        q = QueryNode(
            id=ids[i],
            text=texts[i],
            outcome=Outcome.SUCCESS,
            attempts=1,
            successes=1,
            attempt_outcomes=[Outcome.SUCCESS],
            metadata={"family": task.family},
            embedding=vectors[i],
        )
        batch_nodes.append(q)
        steps = ["plan", *oracle_plan(task)]
        previous = None
        for j, act in enumerate(steps):
            u = Utterance(
                query_id=q.id,
                step=j,
                agent="planner" if j == 0 else "actor",
                role="planner" if j == 0 else "actor",
                content=act,
                action=None if j == 0 else act,
                reward=0.0,
            )
            batch_nodes.append(u)
            edges.append(Edge(kind=EdgeKind.HAS_TRACE, src=q.id, dst=u.id))
            if previous is not None:
                edges.append(Edge(kind=EdgeKind.NEXT, src=previous, dst=u.id))
            previous = u.id
    store.batch([PutNodes(batch_nodes), PutEdges(edges)])
    return ids


def similar_edges(store: GraphStore, ids: list[str], vectors: np.ndarray, k: int = 5) -> None:
    """Each task to its k most similar earlier tasks, as evolution would have linked it."""
    edges = []
    for start in range(0, len(ids), 1024):
        block = vectors[start : start + 1024] @ vectors.T
        for r in range(block.shape[0]):
            i = start + r
            if i == 0:
                continue
            sims = block[r, :i]
            edges.extend(
                Edge(kind=EdgeKind.SIMILAR_TO, src=ids[i], dst=ids[int(j)], props={"score": 0.7})
                for j in np.argsort(-sims)[:k]
            )
    store.batch([PutEdges(edges)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--recalls", type=int, default=200)
    parser.add_argument("--encoder", default="hetero-sage")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    embedder = HashingEmbedder(384)
    config = MemoryConfig(gnn_encoder=args.encoder, gnn_alpha=0.5, gnn_refresh_every=0)
    store = EmbeddedStore(":memory:")
    tasks = make_tasks(args.tasks, seed=3)
    t0 = time.perf_counter()
    ids = build(store, embedder, tasks, 0)
    vectors = np.stack([n.embedding for n in store.get_nodes(ids, with_vectors=True)])  # type: ignore[union-attr]
    similar_edges(store, ids, vectors)
    build_s = time.perf_counter() - t0
    counts = store.count("default")

    t0 = time.perf_counter()
    model, report = embed_namespace(store, "default", config, embedder.name, epochs=args.epochs)
    full_s = time.perf_counter() - t0

    new_tasks = make_tasks(args.new, seed=4)
    new_ids = build(store, embedder, new_tasks, args.tasks)
    all_ids = ids + new_ids
    all_vectors = np.stack(
        [n.embedding for n in store.get_nodes(all_ids, with_vectors=True)]  # type: ignore[union-attr]
    )
    similar_edges(store, all_ids, all_vectors)
    t0 = time.perf_counter()
    refresh_tasks(store, model, new_ids, config)
    incremental_s = time.perf_counter() - t0

    probes = [t.text for t in make_tasks(args.recalls, seed=5)]
    latency: dict[str, dict[str, float]] = {}
    for name, alpha in (("text-only", 1.0), ("hybrid", 0.5)):
        cfg = config.model_copy(update={"gnn_alpha": alpha})
        memory = Memory(store, embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg)
        memory.structure.attach(model, save=False)
        for p in probes[:10]:
            memory.recall(p)
        times = []
        for p in probes:
            t = time.perf_counter()
            memory.recall(p)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        latency[name] = {
            "p50_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
        }
    result = {
        "machine": platform.processor() or platform.machine(),
        "encoder": args.encoder,
        "nodes": counts.total_nodes,
        "edges": counts.total_edges,
        "build_seconds": round(build_s, 1),
        "full_refresh_seconds": round(full_s, 1),
        "full_refresh_parts": {
            "export": report.export_seconds,
            "train": report.train_seconds,
            "write": report.write_seconds,
            "epochs": report.epochs,
        },
        "incremental_tasks": args.new,
        "incremental_seconds": round(incremental_s, 3),
        "recall": latency,
        "hybrid_added_p50_ms": round(
            latency["hybrid"]["p50_ms"] - latency["text-only"]["p50_ms"], 2
        ),
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
