"""Neo4j as it grows: ingest rate, recall and finish() latency at 1k, 10k, 30k, 100k tasks.

    eval "$(graph_store/neo4j/server.sh env)"
    python benchmarks/neo4j_scale.py [--sizes 1000 10000 30000 100000] [--embedder hashing:384]

One database is grown through the sizes in turn (it is emptied first). Tasks are a pool
of demo-world episodes replayed with a numbered task text, so that every task is a
distinct query, each written as evolution writes a finished task minus the reasoner's
work: the query with its vector, its trace (HAS_TRACE, NEXT, REPLIES_TO) and SIMILAR_TO
edges to its five nearest earlier tasks (exact, computed with numpy before the writes,
so that only the store is timed), ``--batch`` tasks per transaction.

At each size the store is reopened and measured as written, never reindexed: the vector
index must stay fast by itself. Measured: ``Memory.recall`` end to end (heuristic
reasoner, the task's embedding computed), the vector search alone (top 3 in the
namespace), and ``finish()`` of new tasks through full evolution. With ``--reindexed``
the largest size is measured again after ``reindex_vectors()``, for comparison.

The hashing embedder (384 dimensions, MiniLM's) is the default because on the reference
machine MiniLM embeds about 20 texts/s when shared, over an hour for 100,000 tasks;
``--embedder minilm`` uses it. Results: one JSON line per size on stdout, and
``docs/img/neo4j-scale.json`` / ``.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bulk import query_of, similar_edges, trace_of
from gmem.config import MemoryConfig
from gmem.demo.corpus import play
from gmem.demo.world import make_tasks
from gmem.embedding import TextEmbedder, make_embedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from gmem.trajectory import Trajectory
from graph_store import Edge, NodeKind
from graph_store.model import query_id_for
from graph_store.neo4j import Neo4jStore
from graph_store.ops import PutEdges, PutNodes, VectorSearch

NAMESPACE = "default"
POOL = 2000
ROOT = Path(__file__).resolve().parent.parent


def job(pool: list[Trajectory], i: int) -> Trajectory:
    base = pool[i % len(pool)]
    return base.model_copy(update={"task": f"{base.task} (job {i})"})


def nearest(unit: np.ndarray, lo: int, hi: int, k: int = 5) -> list[list[tuple[int, float]]]:
    """For each task in ``lo..hi-1``, its ``k`` most similar earlier tasks (cosine)."""
    out: list[list[tuple[int, float]]] = []
    for start in range(lo, hi, 512):
        stop = min(hi, start + 512)
        scores = unit[start:stop] @ unit[:stop].T
        for row, i in enumerate(range(start, stop)):
            s = scores[row, :i]
            if not i:
                out.append([])
                continue
            top = np.argpartition(-s, min(k, i) - 1)[: min(k, i)]
            out.append([(int(j), float(s[j])) for j in top[np.argsort(-s[top])]])
    return out


def task_ops(
    traj: Trajectory, vec: np.ndarray, near: list[tuple[int, float]], ids: list[str]
) -> tuple[list[Any], list[Edge]]:
    q = query_of(traj, vec, NAMESPACE)
    ids.append(q.id)
    utts, edges = trace_of(traj, q.id, NAMESPACE)
    edges += similar_edges(q.id, [(ids[j], score) for j, score in near], 0.6)
    return [q, *utts], edges


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def summary(xs: list[float]) -> dict[str, float] | None:
    if not xs:
        return None
    return {"p50": round(statistics.median(xs), 1), "p95": round(percentile(xs, 95), 1)}


def timed(fn: Any, items: list[Any]) -> list[float]:
    out = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t) * 1000)
    return out


def measure(uri: str, embedder: TextEmbedder, probes: int, finishes: int, size: int) -> Any:
    store = Neo4jStore(uri)
    cfg = MemoryConfig()
    mem = Memory(store, embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg)
    texts = [t.text for t in make_tasks(probes + 20, seed=11)]
    for text in texts[:20]:
        mem.recall(f"{text} (warm-up)")
    recall = timed(mem.recall, [f"{t} (probe {size}-{i})" for i, t in enumerate(texts[20:])])
    vectors = embedder.embed([f"{t} (search {size}-{i})" for i, t in enumerate(texts[20:])])
    search = timed(
        lambda v: store.batch([VectorSearch(NodeKind.QUERY, v, 3, NAMESPACE)]), list(vectors)
    )
    finish = []
    for i, traj in enumerate(play(finishes, seed=5)):
        task = mem.task(f"{traj.task} (finish probe {size}-{i})", NAMESPACE)
        task.recall("actor")
        for s in traj.steps:
            task.record(s.agent, s.role, s.content, action=s.action, observation=s.observation)
        t = time.perf_counter()
        task.finish(traj.success, traj.score)
        finish.append((time.perf_counter() - t) * 1000)
    return mem, store, summary(recall), summary(search), summary(finish)


def plot(rows: list[dict[str, Any]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["tasks"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("recall_ms", "Memory.recall"), ("vector_search_ms", "vector search")):
        left.plot(xs, [r[key]["p50"] for r in rows], "o-", label=f"{label} p50")
        left.plot(xs, [r[key]["p95"] for r in rows], "x:", label=f"{label} p95")
    left.plot(xs, [r["finish_ms"]["p50"] for r in rows], "s-", label="finish() p50")
    left.set_ylabel("ms")
    left.legend(fontsize=7)
    right.plot(xs, [r["ingest_msgs_per_s"] for r in rows], "o-")
    right.set_ylabel("ingest, messages/s")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("stored tasks")
        ax.grid(alpha=0.3)
    fig.suptitle("gmem on Neo4j, as written (no reindex)")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=os.environ.get("GMEM_NEO4J_URI", ""))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 30_000, 100_000])
    parser.add_argument("--batch", type=int, default=50, help="tasks per transaction")
    parser.add_argument("--embedder", default="hashing:384")
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--finishes", type=int, default=20)
    parser.add_argument("--reindexed", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument(
        "--resume",
        type=int,
        default=0,
        help="the database holds the first N tasks of an earlier run: grow it from there",
    )
    parser.add_argument(
        "--again",
        action="store_true",
        help="with --resume N: measure the database as it stands once more, writing nothing",
    )
    args = parser.parse_args()
    if not args.store.startswith(("bolt", "neo4j")):
        raise SystemExit('give a Neo4j URL: --store bolt://... or eval "$(server.sh env)"')
    embedder = make_embedder(args.embedder)
    if args.again:
        mem, again, recall, search, finish = measure(
            args.store, embedder, args.probes, args.finishes, -args.resume
        )
        row = {"tasks": args.resume, "measured_again": True, "recall_ms": recall}
        row |= {"vector_search_ms": search, "finish_ms": finish}
        print(json.dumps(row | {"load_average": [round(x, 1) for x in os.getloadavg()]}))
        mem.close()
        return
    store = Neo4jStore(args.store)
    pool = play(POOL, seed=3)
    top = max(args.sizes)
    unit = np.zeros((top, embedder.dim), dtype=np.float32)
    ids: list[str] = []
    done, rows = args.resume, []
    if done:  # the first tasks were written by an earlier run: their vectors and ids again
        old = np.asarray(embedder.embed([job(pool, i).task for i in range(done)]), np.float32)
        unit[:done] = old / np.linalg.norm(old, axis=1, keepdims=True)
        ids += [query_id_for(NAMESPACE, job(pool, i).task) for i in range(done)]
        saved = args.out / "neo4j-scale.json"
        if saved.exists():
            rows = [r for r in json.loads(saved.read_text())["results"] if r["tasks"] <= done]
    else:
        store.delete_all()
    for size in sorted(x for x in args.sizes if x > done):
        trajs = [job(pool, i) for i in range(done, size)]
        vectors = np.asarray(embedder.embed([t.task for t in trajs]), dtype=np.float32)
        unit[done:size] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        near = nearest(unit, done, size)
        messages, seconds = 0, 0.0
        for lo in range(0, len(trajs), args.batch):
            nodes, edges = [], []
            for k in range(lo, min(len(trajs), lo + args.batch)):
                more, linked = task_ops(trajs[k], vectors[k], near[k], ids)
                nodes += more
                edges += linked
                messages += len(more) - 1
            t = time.perf_counter()
            store.batch([PutNodes(nodes), PutEdges(edges)])
            seconds += time.perf_counter() - t
            if (done + lo) % 10_000 < args.batch:
                print(f"  {done + lo} tasks written", file=sys.stderr, flush=True)
        store.close()
        done = size
        mem, store, recall, search, finish = measure(
            args.store, embedder, args.probes, args.finishes, size
        )
        counts = store.count(NAMESPACE)
        row = {
            "tasks": size,
            "utterances": counts.nodes.get("Utterance", 0),
            "edges": counts.total_edges,
            "ingest_msgs_per_s": round(messages / seconds),
            "recall_ms": recall,
            "vector_search_ms": search,
            "finish_ms": finish,
            "load_average": [round(x, 1) for x in os.getloadavg()],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        report = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "embedder": args.embedder,
            "batch": args.batch,
            "results": rows,
        }
        if args.reindexed and size == top:
            t = time.perf_counter()
            store.reindex_vectors()
            took = round(time.perf_counter() - t, 1)
            again, _, recall, search, _ = measure(args.store, embedder, args.probes, 0, size + 1)
            again.close()
            report["reindexed"] = {"seconds": took, "recall_ms": recall, "vector_search_ms": search}
            print(json.dumps(report["reindexed"]), flush=True)
        mem.close()
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "neo4j-scale.json").write_text(json.dumps(report, indent=2) + "\n")
        plot(rows, args.out / "neo4j-scale.png")
        store = Neo4jStore(args.store)
    store.close()


if __name__ == "__main__":
    main()
