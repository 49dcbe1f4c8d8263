"""Soak: many tasks through one Memory, checked for errors, lost work and growth.

    python benchmarks/soak.py --tasks 10000 --every 1000 [--store path-or-url]

Each task recalls for one role, records four steps and finishes (heuristic reasoner,
hashing embedder, so the figures are gmem's own costs, not a model's); 1,500 distinct task
texts, so most finishes update an existing query. Prints one JSON line per sample (tasks
done, errors so far, resident set size in MiB, insight counts, mean recall and finish time
of the last window, load average) and a final line that reconciles the store with what
the loop did: every attempt, success, failure and utterance the loop finished is stored,
once. ``--check`` reconciles a store a soak was stopped in with ``kill -9``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gmem.config import MemoryConfig
from gmem.embedding import HashingEmbedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from graph_store.model import Insight, NodeKind, QueryNode

OBJECTS = ["mug", "cup", "plate", "bowl", "pan", "pot", "knife", "fork", "apple", "egg"]
PLACES = ["cabinet", "drawer", "shelf", "fridge", "countertop", "table"]


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _insights(mem: Memory) -> tuple[int, int]:
    """Stored insights, and how many of them are live (not retired)."""
    nodes = mem.store.list_nodes(NodeKind.INSIGHT)
    live = sum(1 for n in nodes if isinstance(n, Insight) and not n.retired)
    return len(nodes), live


def _reconcile(mem: Memory, expected: dict[str, list[bool]], utterances: int) -> dict[str, object]:
    """Compare the stored queries with the finishes the loop saw return."""
    stored = {n.text: n for n in mem.store.list_nodes(NodeKind.QUERY) if isinstance(n, QueryNode)}
    problems: list[str] = []
    for text, outcomes in expected.items():
        q = stored.get(text)
        if q is None:
            problems.append(f"missing query {text!r}")
            continue
        wins = sum(outcomes)
        if (q.attempts, q.successes, q.failures) != (len(outcomes), wins, len(outcomes) - wins):
            problems.append(
                f"{text!r}: stored {q.attempts}/{q.successes}/{q.failures}, "
                f"finished {len(outcomes)}/{wins}/{len(outcomes) - wins}"
            )
    extra = sorted(set(stored) - set(expected))
    counts = mem.store.count()
    stored_utts = counts.nodes.get(NodeKind.UTTERANCE.value, 0)
    if stored_utts != utterances:
        problems.append(f"utterances: stored {stored_utts}, finished {utterances}")
    return {
        "queries": len(stored),
        "attempts": sum(q.attempts for q in stored.values()),
        "utterances": stored_utts,
        "unexpected_queries": len(extra),
        "problems": problems[:20],
        "reconciled": not problems and not extra,
    }


def _task(i: int) -> tuple[str, str, str, bool]:
    """Task ``i`` of the schedule: its text, object, place and outcome."""
    obj, place = OBJECTS[i % len(OBJECTS)], PLACES[(i // 10) % len(PLACES)]
    return f"put a clean {obj} in the {place} ({i % 500})", obj, place, i % 4 != 0


def _check(mem: Memory) -> dict[str, object]:
    """Reconcile a store a soak was stopped in (kill -9 between samples): the stored
    attempts say how many tasks committed, and those must be exactly the schedule's
    first tasks, each stored once with its outcome and four utterances."""
    done = sum(n.attempts for n in mem.store.list_nodes(NodeKind.QUERY) if isinstance(n, QueryNode))
    expected: dict[str, list[bool]] = collections.defaultdict(list)
    for i in range(1, done + 1):
        text, _, _, success = _task(i)
        expected[text].append(success)
    return {"store": mem.store.url, "committed": done, **_reconcile(mem, expected, 4 * done)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=1_000)
    parser.add_argument("--store", default="")
    parser.add_argument(
        "--check", action="store_true", help="only reconcile a store a soak was stopped in"
    )
    args = parser.parse_args()
    url = args.store or f"/tmp/gmem-soak-{time.time_ns()}.db"
    cfg = MemoryConfig()
    embedder = HashingEmbedder()
    mem = Memory(url, embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg)
    if args.check:
        print(json.dumps(_check(mem)), flush=True)
        mem.close()
        return
    if url.startswith(("bolt", "neo4j")):
        mem.store.delete_all()  # type: ignore[attr-defined]
    expected: dict[str, list[bool]] = collections.defaultdict(list)
    errors: collections.Counter[str] = collections.Counter()
    utterances = 0
    recall_s = finish_s = 0.0
    began = time.perf_counter()
    for i in range(1, args.tasks + 1):
        text, obj, place, success = _task(i)
        try:
            with mem.task(text) as t:
                start = time.perf_counter()
                t.recall("actor")
                recall_s += time.perf_counter() - start
                t.record("p", "planner", f"find the {obj}, clean it, put it in the {place}")
                t.record("a", "actor", f"take {obj}", action=f"take {obj} 1 from countertop 1")
                t.record("a", "actor", f"clean {obj}", action=f"clean {obj} 1 with sinkbasin 1")
                t.record("a", "actor", "store it", action=f"put {obj} 1 in/on {place} 1")
                start = time.perf_counter()
                report = t.finish(success=success)
                finish_s += time.perf_counter() - start
            expected[text].append(success)
            utterances += report.utterances
        except Exception as exc:  # noqa: BLE001 - counted, not fatal: the soak measures how many
            errors[type(exc).__name__] += 1
        if i % args.every == 0:
            total, live = _insights(mem)
            sample = {
                "tasks": i,
                "errors": sum(errors.values()),
                "rss_mib": round(_rss_mib(), 1),
                "insights": total,
                "live_insights": live,
                "recall_ms": round(1000 * recall_s / args.every, 2),
                "finish_ms": round(1000 * finish_s / args.every, 2),
                "elapsed_s": round(time.perf_counter() - began),
                "load1": round(os.getloadavg()[0], 2),
            }
            print(json.dumps(sample), flush=True)
            recall_s = finish_s = 0.0
    summary = {
        "store": mem.store.url,
        "tasks": args.tasks,
        "finished": sum(len(v) for v in expected.values()),
        "errors": dict(errors),
        **_reconcile(mem, expected, utterances),
    }
    print(json.dumps(summary), flush=True)
    mem.close()


if __name__ == "__main__":
    main()
