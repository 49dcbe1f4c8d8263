"""Many agent teams on one Neo4j: 1, 2 and 4 worker processes, throughput and recall latency.

    eval "$(graph_store/neo4j/server.sh env)"
    python benchmarks/multiprocess.py [--store URL] [--workers 1,2,4] [--tasks 30]

Each worker is its own OS process with its own ``Memory`` on the same database (nothing
shared but the server), playing the demo world's team as ``gmem demo`` does: recall for
each of the three roles, the episode's messages recorded as utterances, ``finish``
(evolution included) in one transaction. All workers write one namespace, so they learn
from each other's tasks and contend for the same insights. Before the rounds, one
process plays ``--warmup`` tasks so that recall does not start on an empty memory; the
store keeps growing from round to round (the tasks played are reported).

Per worker count: tasks per second over all workers (first start to last finish),
messages per second, and the p50/p95 of one task's recall (three roles) and of its
``finish``. The heuristic reasoner and the hashing embedder by default, so the figures are
gmem's and the server's costs, not a model's. The database is emptied first.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gmem.config import MemoryConfig
from gmem.demo.runner import _Recorder, hints_from
from gmem.demo.team import ROLES, OfflineTeam, run_episode
from gmem.demo.world import World, make_tasks
from gmem.embedding import make_embedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory

NAMESPACE = "teams"


def _memory(url: str, embedder_name: str) -> Memory:
    embedder = make_embedder(embedder_name)
    cfg = MemoryConfig()
    return Memory(url, embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg)


def _play(mem: Memory, n: int, seed: int) -> dict[str, Any]:
    """Play ``n`` tasks; the time of each task's recall and finish, and messages written."""
    world, team = World(), OfflineTeam()
    recall_ms: list[float] = []
    finish_ms: list[float] = []
    messages = 0
    for task in make_tasks(n, seed=seed):
        with mem.task(task.text, namespace=NAMESPACE, roles=list(ROLES)) as t:
            start = time.perf_counter()
            roles = [t.recall(role) for role in ROLES]
            recall_ms.append((time.perf_counter() - start) * 1000)
            recorder = _Recorder(t)
            hints = hints_from(roles)
            episode = run_episode(world, task, team, hints, seed=seed, on_message=recorder)
            messages += len(recorder.ids)
            start = time.perf_counter()
            t.finish(success=episode.success, score=1.0 if episode.success else 0.0)
            finish_ms.append((time.perf_counter() - start) * 1000)
    return {"recall_ms": recall_ms, "finish_ms": finish_ms, "messages": messages}


def _worker(url: str, embedder: str, n: int, seed: int, barrier: Any, out: Any) -> None:
    mem = _memory(url, embedder)
    try:
        barrier.wait()  # every worker connected and loaded: only playing is timed
        begun = time.perf_counter()
        result = _play(mem, n, seed)
        out.put({**result, "begun": begun, "ended": time.perf_counter()})
    finally:
        mem.close()


def _percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def _round(url: str, embedder: str, workers: int, tasks: int, seed: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(workers), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(url, embedder, tasks, seed + w, barrier, out))
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"a worker failed (exit code {p.exitcode})")
    wall = max(r["ended"] for r in results) - min(r["begun"] for r in results)
    recall = [x for r in results for x in r["recall_ms"]]
    finish = [x for r in results for x in r["finish_ms"]]
    done = len(finish)
    return {
        "workers": workers,
        "tasks": done,
        "seconds": round(wall, 1),
        "tasks_per_s": round(done / wall, 2),
        "messages_per_s": round(sum(r["messages"] for r in results) / wall, 1),
        "recall_p50_ms": round(statistics.median(recall), 1),
        "recall_p95_ms": round(_percentile(recall, 95), 1),
        "finish_p50_ms": round(statistics.median(finish), 1),
        "finish_p95_ms": round(_percentile(finish, 95), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=os.environ.get("GMEM_NEO4J_URI", ""))
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--tasks", type=int, default=30, help="tasks per worker per round")
    parser.add_argument("--warmup", type=int, default=100, help="tasks played before the rounds")
    parser.add_argument("--embedder", default="hashing", help="hashing[:dim] or minilm")
    parser.add_argument("--json", action="store_true", help="one JSON line per round")
    args = parser.parse_args()
    if not args.store.startswith(("bolt", "neo4j")):
        raise SystemExit('give a Neo4j URL: --store bolt://... or eval "$(server.sh env)"')
    mem = _memory(args.store, args.embedder)
    mem.store.delete_all()  # type: ignore[attr-defined]
    _play(mem, args.warmup, seed=1)
    mem.close()
    load = os.getloadavg()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; {args.warmup} warm-up tasks, "
        f"{args.tasks} tasks per worker, embedder {args.embedder}",
        flush=True,
    )
    for i, count in enumerate(int(c) for c in args.workers.split(",")):
        row = _round(args.store, args.embedder, count, args.tasks, seed=1000 * (i + 1))
        if args.json:
            print(json.dumps(row), flush=True)
            continue
        print(
            f"{count} worker(s): {row['tasks']} tasks in {row['seconds']} s = "
            f"{row['tasks_per_s']} tasks/s ({row['messages_per_s']} messages/s); "
            f"recall p50 {row['recall_p50_ms']} / p95 {row['recall_p95_ms']} ms; "
            f"finish p50 {row['finish_p50_ms']} / p95 {row['finish_p95_ms']} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
