"""Retrieval quality on trajectories the project generates itself (the demo world).

The offline team plays seeded household tasks of five families without memory, which
gives trajectories with mixed outcomes and a known family each. They are ingested into a
fresh memory (heuristic reasoner, MiniLM embedder); then new tasks are recalled under four
configurations:

- text-only top-k: seeds by embedding similarity, no hop expansion, no insights;
- + hop expansion: one hop over SIMILAR_TO / USED_MEMORY_OF edges;
- + insights: insights reached upward are returned too;
- full pipeline: what the actor's RoleMemory actually shows (projection and budget).

Metrics: precision of shown successful trajectories being of the new task's family
(only tasks whose family has a stored success count), and the share of shown insights
whose evidence (supporting + contradicting queries) is mostly of that family.

Run: ``.venv/bin/python benchmarks/retrieval_quality.py [--train 150] [--test 100]``
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import Counter

from gmem.config import MemoryConfig
from gmem.demo.corpus import play
from gmem.demo.world import make_tasks
from gmem.embedding import MiniLMEmbedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from graph_store import EmbeddedStore
from graph_store.model import Insight, Outcome

CONFIGS = {
    "text-only top-k": {"hops": 0, "insight_k": 0},
    "+ hop expansion": {"hops": 1, "insight_k": 0},
    "+ insights": {"hops": 1},
    "full pipeline": {"hops": 1},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=150)
    parser.add_argument("--test", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    embedder = MiniLMEmbedder()
    base = MemoryConfig()
    store = EmbeddedStore(":memory:")
    build = Memory(store, embedder=embedder, llm=HeuristicLLM(embedder, base), config=base)
    t0 = time.perf_counter()
    for traj in play(args.train, seed=1):
        build.ingest(traj)
    ingest_s = time.perf_counter() - t0
    family = {q.id: str(q.metadata["family"]) for q in build.queries()}
    solved = Counter(family[q.id] for q in build.queries() if q.successes)
    tests = [t for t in make_tasks(args.test, seed=9) if solved[t.family]]

    rows = {}
    for name, overrides in CONFIGS.items():
        cfg = base.model_copy(update=overrides)
        mem = Memory(store, embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg)
        traj_hits = traj_total = ins_hits = ins_total = first_hits = first_total = 0
        for task in tests:
            recall = mem.recall(task.text)
            trajectories, insights = recall.trajectories, recall.insights
            if name == "full pipeline":
                role = recall.for_role("actor")
                trajectories, insights = list(role.trajectories), list(role.insights)
            shown = [t for t in trajectories if t.outcome == Outcome.SUCCESS]
            for t in shown:
                traj_total += 1
                traj_hits += family[t.query_id] == task.family
            if shown:
                first_total += 1
                first_hits += family[shown[0].query_id] == task.family
            for ins in insights:
                node = store.get_node(ins.id)
                assert isinstance(node, Insight)
                evidence = Counter(
                    family[q] for q in node.supporting + node.contradicting if q in family
                )
                ins_total += 1
                ins_hits += bool(evidence) and evidence.most_common(1)[0][0] == task.family
        rows[name] = {
            "first_success_precision": first_hits / first_total if first_total else None,
            "trajectory_precision": traj_hits / traj_total if traj_total else None,
            "trajectories_shown": traj_total,
            "insight_family_share": ins_hits / ins_total if ins_total else None,
            "insights_shown": ins_total,
        }
    result = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "train_tasks": args.train,
        "test_tasks": len(tests),
        "stored": build.stats().nodes,
        "ingest_seconds": round(ingest_s, 1),
        "configs": rows,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"train {args.train} tasks ({result['stored']}), test {len(tests)} tasks, "
        f"ingest {ingest_s:.1f} s"
    )
    print(
        f"{'configuration':<18} {'P@1':>5} {'P(success traj same family)':>28} "
        f"{'insight family share':>22}"
    )
    for name, row in rows.items():
        p1 = row["first_success_precision"]
        p1_text = "-" if p1 is None else f"{p1:.2f}"
        p = row["trajectory_precision"]
        s = row["insight_family_share"]
        p_text = "-" if p is None else f"{p:.2f}"
        s_text = "-" if s is None else f"{s:.2f}"
        print(
            f"{name:<18} {p1_text:>5} {p_text:>20} (n={row['trajectories_shown']:>3})"
            f" {s_text:>14} (n={row['insights_shown']:>3})"
        )


if __name__ == "__main__":
    main()
