"""What the structural encoder costs: full refresh, incremental refresh, recall latency.

A synthetic memory of ``--tasks`` solved demo-world tasks (oracle plans as traces, one
utterance per action plus a planner message) is written straight through the store
protocol, with SIMILAR_TO edges to each task's five nearest earlier tasks, so a graph of
a hundred thousand nodes builds in seconds. Then, in one run:

- full refresh: export + train (at most ``gnn_epochs`` steps, fewer once the loss
  plateaus) + write every embedding back;
- incremental refresh of ``--new`` tasks added afterwards (no retraining);
- recall p50/p95 over the same tasks with ``gnn_alpha = 1`` (text-only) and hybrid.

Texts are embedded with the lexical ``HashingEmbedder`` (milliseconds), so the latency
difference is the encoder's and the second vector search's, not MiniLM's.

Wall and process CPU seconds are both reported, with the load average: on a machine
shared with other jobs the wall clock measures the queue as much as the work.

Run: ``python benchmarks/gnn_cost.py [--nodes 100000] [--new 100] [--encoder hetero-sage]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
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
        rows = np.arange(block.shape[0]) + start
        # Only earlier tasks: later ones (and the task itself) can never be picked.
        block[rows[:, None] <= np.arange(len(ids))[None, :]] = -np.inf
        kk = min(k, len(ids))
        top = np.argpartition(-block, kk - 1, axis=1)[:, :kk]
        for r, cols in enumerate(top):
            i = int(rows[r])
            edges.extend(
                Edge(kind=EdgeKind.SIMILAR_TO, src=ids[i], dst=ids[int(j)], props={"score": 0.7})
                for j in cols
                if int(j) < i
            )
    store.batch([PutEdges(edges)])


def tasks_for(nodes: int, seed: int) -> list:  # type: ignore[type-arg]
    """Enough demo tasks that, with their traces, the store holds at least ``nodes`` nodes."""
    out, total = [], 0
    # Every task adds at least four nodes (query, planner message, two actions).
    for task in make_tasks(max(nodes // 4, 1), seed=seed):
        if total >= nodes:
            break
        out.append(task)
        total += 2 + len(oracle_plan(task))
    return out


def cpu_name() -> str:
    """The CPU's model name as the kernel reports it (``platform`` only says x86_64)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x {os.cpu_count()}"
    return platform.processor() or platform.machine()


class Clock:
    """Wall and process CPU seconds of a block: on a shared machine they differ."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = round(time.perf_counter() - self.wall, 2)
        self.cpu = round(time.process_time() - self.cpu, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=100_000, help="Store nodes to build.")
    parser.add_argument("--tasks", type=int, default=None, help="Tasks instead of --nodes.")
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--recalls", type=int, default=200)
    parser.add_argument("--encoder", default="hetero-sage")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    embedder = HashingEmbedder(384)
    config = MemoryConfig(gnn_encoder=args.encoder, gnn_alpha=0.5, gnn_refresh_every=0)
    store = EmbeddedStore(":memory:")
    tasks = make_tasks(args.tasks, seed=3) if args.tasks else tasks_for(args.nodes, seed=3)
    load_before = os.getloadavg()
    with Clock() as built:
        ids = build(store, embedder, tasks, 0)
        vectors = np.stack(
            [n.embedding for n in store.get_nodes(ids, with_vectors=True)]  # type: ignore[union-attr]
        )
        similar_edges(store, ids, vectors)
    counts = store.count("default")

    with Clock() as full:
        model, report = embed_namespace(store, "default", config, embedder.name, epochs=args.epochs)

    new_tasks = make_tasks(args.new, seed=4)
    new_ids = build(store, embedder, new_tasks, len(tasks))
    all_ids = ids + new_ids
    all_vectors = np.stack(
        [n.embedding for n in store.get_nodes(all_ids, with_vectors=True)]  # type: ignore[union-attr]
    )
    similar_edges(store, all_ids, all_vectors)
    with Clock() as incremental:
        refresh_tasks(store, model, new_ids, config)

    probes = [t.text for t in make_tasks(args.recalls, seed=5)]
    latency: dict[str, dict[str, float]] = {}
    for name, alpha in (("text-only", 1.0), ("hybrid", 0.5)):
        cfg = config.model_copy(update={"gnn_alpha": alpha})
        memory = Memory(store, embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg)
        memory.structure.attach(model, save=False)
        for p in probes[:10]:
            memory.recall(p)
        times, cpu = [], []
        for p in probes:
            t, c = time.perf_counter(), time.process_time()
            memory.recall(p)
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
        times.sort()
        latency[name] = {
            "p50_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
            "cpu_p50_ms": round(statistics.median(cpu), 2),
        }
    result = {
        "machine": cpu_name(),
        "load_average_before": [round(x, 1) for x in load_before],
        "load_average_after": [round(x, 1) for x in os.getloadavg()],
        "encoder": args.encoder,
        "tasks": len(tasks),
        "store_nodes": counts.total_nodes,
        "store_edges": counts.total_edges,
        "graph_nodes": report.queries * 2 + report.insights,
        "build_seconds": built.wall,
        "full_refresh_seconds": full.wall,
        "full_refresh_cpu_seconds": full.cpu,
        "full_refresh_parts": {
            "export": report.export_seconds,
            "train": report.train_seconds,
            "write": report.write_seconds,
            "steps": report.epochs,
            "stopped_early": report.stopped_early,
            "positives": report.positives,
            "loss": [report.first_loss, report.last_loss],
        },
        "incremental_tasks": args.new,
        "incremental_seconds": incremental.wall,
        "incremental_cpu_seconds": incremental.cpu,
        "recall": latency,
        "hybrid_added_p50_ms": round(
            latency["hybrid"]["p50_ms"] - latency["text-only"]["p50_ms"], 2
        ),
        "hybrid_added_cpu_p50_ms": round(
            latency["hybrid"]["cpu_p50_ms"] - latency["text-only"]["cpu_p50_ms"], 2
        ),
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
