"""Retrieval latency with 10,000 stored tasks (about 200,000 utterances).

Building: the first ``--evolve`` tasks go through the full evolution (so the store holds
real insights, similarity and used-memory edges); the rest are bulk-written through the
store protocol (query node with its MiniLM embedding, the trace with HAS_TRACE / NEXT /
REPLIES_TO edges, SIMILAR_TO edges to the five nearest earlier queries), which is what
evolution writes minus the reasoner's work. Trajectories come from the demo world; task
texts get a numbered suffix so that all 10,000 are distinct queries.

Measured, on a reopened file store with the heuristic reasoner (no LLM calls), wall and
CPU time: ``recall`` with the task's embedding cached and computed, ``recall`` plus the
prompts of three roles, and embedding one task text alone (MiniLM's share of a recall).
Run: ``.venv/bin/python benchmarks/latency.py [--tasks 10000] [--path bench.db] [--json]``;
with ``--path`` naming an existing store it measures that store as it stands (recall
writes nothing), such as the 100,000-task store of ``benchmarks/scale.py --keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bulk import query_of, similar_edges, trace_of
from gmem.config import MemoryConfig
from gmem.demo.corpus import play
from gmem.demo.world import make_tasks
from gmem.embedding import MiniLMEmbedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from gmem.recall import Recall
from graph_store import EmbeddedStore, NodeKind
from graph_store.ops import PutEdges, PutNodes, VectorSearch


def build(path: Path, n: int, evolve: int, embedder: MiniLMEmbedder) -> float:
    cfg = MemoryConfig()
    store = EmbeddedStore(path, durability="normal")
    mem = Memory(store, embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg)
    trajectories = play(n, seed=3)
    for i, traj in enumerate(trajectories):
        traj.task = f"{traj.task} (job {i})"
    t0 = time.perf_counter()
    for traj in trajectories[:evolve]:
        mem.ingest(traj)
    rest = trajectories[evolve:]
    chunk = 200
    for start in range(0, len(rest), chunk):
        part = rest[start : start + chunk]
        vectors = embedder.embed([t.task for t in part])
        ops: list[object] = []
        for traj, vec in zip(part, vectors, strict=True):
            q = query_of(traj, vec)
            (near,) = store.batch([VectorSearch(NodeKind.QUERY, vec, 5, "default")])
            utts, edges = trace_of(traj, q.id)
            edges += similar_edges(q.id, [(h.id, h.score) for h in near], 0.6)
            ops += [PutNodes([q, *utts]), PutEdges(edges)]
            if len(ops) >= 40:
                store.batch(ops)  # type: ignore[arg-type]
                ops = []
        if ops:
            store.batch(ops)  # type: ignore[arg-type]
    seconds = time.perf_counter() - t0
    mem.close()
    return seconds


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


#: What is timed per probe task: a recall whose task vector is already in Memory's cache,
#: one that embeds its task (MiniLM on the CPU), that recall's prompts for three roles
#: (counted with the recall), and embedding a task text alone.
MEASURES = (
    "recall, embedding cached",
    "recall",
    "recall + 3 role prompts",
    "embedding one task text",
)


def summary(xs: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(xs), 2), "p95": round(percentile(xs, 95), 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--evolve", type=int, default=300)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--path", type=Path, default=None)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    embedder = MiniLMEmbedder()
    path = args.path or Path(tempfile.mkdtemp()) / "latency.db"
    build_s = None
    if not path.exists():
        build_s = build(path, args.tasks, args.evolve, embedder)
        if not args.json:
            print(f"built {path} in {build_s:.0f} s")
    t0 = time.perf_counter()
    cfg = MemoryConfig()
    mem = Memory(
        EmbeddedStore(path), embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg
    )
    open_s = time.perf_counter() - t0
    counts = mem.stats()
    tasks = [t.text for t in make_tasks(args.queries + 20, seed=11)]
    for text in tasks[:20]:  # warm caches and numpy
        mem.recall(text)
    probes = tasks[20:]
    cached = [f"{text} (cached probe {i})" for i, text in enumerate(probes)]
    mem.embedder.embed(cached)  # their vectors are in Memory's embedding cache now
    walls: dict[str, list[float]] = {name: [] for name in MEASURES}
    cpus: dict[str, list[float]] = {name: [] for name in MEASURES}

    def timed(name: str, call: Callable[[], object]) -> object:
        t, c = time.perf_counter(), time.process_time()
        out = call()
        walls[name].append((time.perf_counter() - t) * 1000)
        cpus[name].append((time.process_time() - c) * 1000)
        return out

    # Interleaved, so that each measure sees the same load; CPU time is what a recall
    # costs when it does not wait for a core (this machine is shared).
    for i, task_text in enumerate(probes):
        timed("recall, embedding cached", lambda i=i: mem.recall(cached[i]))
        text = f"{task_text} (probe {i})"
        recall = timed("recall", lambda text=text: mem.recall(text))
        assert isinstance(recall, Recall)
        timed(
            "recall + 3 role prompts",
            lambda recall=recall: [recall.prompt(r) for r in ("planner", "actor", "verifier")],
        )
        walls["recall + 3 role prompts"][-1] += walls["recall"][-1]
        cpus["recall + 3 role prompts"][-1] += cpus["recall"][-1]
        timed("embedding one task text", lambda text=text: embedder.embed([f"{text} again"]))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        result = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(),
            "tasks": counts.nodes.get("Query", 0),
            "nodes": counts.nodes,
            "edges": counts.total_edges,
            "build_seconds": None if build_s is None else round(build_s, 1),
            "reopen_seconds": round(open_s, 2),
            "peak_rss_mib": round(rss),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "latency_ms": {name: summary(xs) for name, xs in walls.items()},
            "cpu_ms": {name: summary(xs) for name, xs in cpus.items()},
        }
        print(json.dumps(result, indent=2))
        return
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"store: {counts.nodes}, {counts.total_edges} edges; reopened in {open_s:.1f} s; "
        f"peak RSS {rss:.0f} MiB"
    )
    print(f"load average {os.getloadavg()}; wall time, then this process's CPU time")
    for name in MEASURES:
        xs, cs = walls[name], cpus[name]
        print(
            f"{name:<26} p50 {statistics.median(xs):6.1f} ms   p95 {percentile(xs, 95):6.1f} ms"
            f"   CPU p50 {statistics.median(cs):5.1f} ms   p95 {percentile(cs, 95):5.1f} ms"
            f"   (n={len(xs)})"
        )


if __name__ == "__main__":
    main()
