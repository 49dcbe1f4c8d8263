"""Soak: many tasks through one Memory, resident memory and finish time sampled as it grows.

    python benchmarks/soak.py --tasks 10000 --every 1000 [--store path-or-url]

Each task recalls for one role, records four steps and finishes (heuristic reasoner,
hashing embedder, so the figures are gmem's own costs, not a model's). Prints one JSON
line per sample: tasks done, resident set size (MiB), mean finish time of the last
window.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gmem.config import MemoryConfig
from gmem.embedding import HashingEmbedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory

OBJECTS = ["mug", "cup", "plate", "bowl", "pan", "pot", "knife", "fork", "apple", "egg"]
PLACES = ["cabinet", "drawer", "shelf", "fridge", "countertop", "table"]


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=1_000)
    parser.add_argument("--store", default="")
    args = parser.parse_args()
    url = args.store or f"/tmp/gmem-soak-{time.time_ns()}.db"
    cfg = MemoryConfig()
    embedder = HashingEmbedder()
    mem = Memory(url, embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg)
    if url.startswith(("bolt", "neo4j")):
        mem.store.delete_all()  # type: ignore[attr-defined]
    window = 0.0
    for i in range(1, args.tasks + 1):
        obj, place = OBJECTS[i % len(OBJECTS)], PLACES[(i // 10) % len(PLACES)]
        with mem.task(f"put a clean {obj} in the {place} ({i % 500})") as t:
            t.recall("actor")
            t.record("p", "planner", f"find the {obj}, clean it, put it in the {place}")
            t.record("a", "actor", f"take {obj}", action=f"take {obj} 1 from countertop 1")
            t.record("a", "actor", f"clean {obj}", action=f"clean {obj} 1 with sinkbasin 1")
            t.record("a", "actor", "store it", action=f"put {obj} 1 in/on {place} 1")
            start = time.perf_counter()
            t.finish(success=i % 4 != 0)
            window += time.perf_counter() - start
        if i % args.every == 0:
            sample = {
                "tasks": i,
                "rss_mib": round(_rss_mib(), 1),
                "finish_ms": round(1000 * window / args.every, 2),
                "store": mem.store.url,
            }
            print(json.dumps(sample), flush=True)
            window = 0.0
    mem.close()


if __name__ == "__main__":
    main()
