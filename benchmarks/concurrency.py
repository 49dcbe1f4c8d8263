"""Concurrent writers on one store: lost updates with and without the version checks.

    python benchmarks/concurrency.py --threads 8 --tasks 100 [--store neo4j://...] [--unchecked]

Every writer finishes ``--tasks`` tasks, every third with a task text shared by all
writers, each finish agreeing with the most similar insight (the workload of
tests/test_reliability_concurrency.py). Prints the finishes, the attempts and insight
updates the store holds against what the finishes reported, conflicts retried and wall
time. ``--unchecked`` disables the ExpectNodes checks (the behaviour before them) to
show what they prevent.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gmem.commit as commit
from graph_store.errors import ConflictError
from graph_store.model import Insight, NodeKind, QueryNode
from tests.test_reliability_concurrency import _memory, _work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--store", default="")
    parser.add_argument("--unchecked", action="store_true")
    args = parser.parse_args()
    if args.unchecked:
        commit._expectations = lambda *_: []  # type: ignore[assignment]
    conflicts = Counter[str]()
    retrying = commit.retrying

    def counted(step: Any, retries: int, backoff: float) -> Any:
        def run() -> Any:
            try:
                return step()
            except ConflictError:
                conflicts["conflicts"] += 1
                raise

        return retrying(run, retries, backoff)

    import gmem.memory

    gmem.memory.retrying = counted  # type: ignore[assignment]
    url = args.store or str(Path("/tmp") / f"gmem-concurrency-{time.time_ns()}.db")
    mem = _memory(url)
    if url.startswith(("bolt", "neo4j")):
        mem.store.delete_all()  # type: ignore[attr-defined]
    results: list[list[dict[str, Any]]] = [[] for _ in range(args.threads)]
    errors: list[str] = []

    def writer(w: int) -> None:
        try:
            results[w] = _work(mem, w, args.tasks)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(f"{type(exc).__name__}: {exc}")

    start = time.perf_counter()
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    reports = [r for rs in results for r in rs]
    queries = [n for n in mem.store.list_nodes(NodeKind.QUERY) if isinstance(n, QueryNode)]
    insights = [n for n in mem.store.list_nodes(NodeKind.INSIGHT) if isinstance(n, Insight)]
    reported_updates = sum(
        len(r["agreed"]) + len(r["rewarded"]) + len(r["penalized"]) for r in reports
    )
    stored_updates = sum(
        p.operation == "agree"
        or (p.operation in ("reward", "penalize") and float(p.detail.split(" ", 1)[0]) != 0.0)
        for i in insights
        for p in i.provenance
    )
    print(
        json.dumps(
            {
                "store": mem.store.url,
                "checked": not args.unchecked,
                "writers": args.threads,
                "finishes": len(reports),
                "attempts_stored": sum(q.attempts for q in queries),
                "insight_updates_reported": reported_updates,
                "insight_updates_stored": stored_updates,
                "conflicts_retried": conflicts["conflicts"],
                "errors": errors[:3],
                "wall_s": round(wall, 2),
            }
        )
    )
    mem.close()


if __name__ == "__main__":
    main()
