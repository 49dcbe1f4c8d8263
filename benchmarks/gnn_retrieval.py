"""Does the graph pay? Same-family precision of recalled past successes, text vs structure.

A memory is built from a corpus's train trajectories (MiniLM embedder, heuristic
reasoner); each held-out test task is then recalled, and the successful past tasks in the
order recall ranks them are compared with the test task's family. P@k counts k fixed
slots: a slot recall leaves empty is a miss. Methods:

- ``text``: text similarity only (``gnn_alpha = 1``; what gmem does without torch);
- ``gnn@a`` / ``mlp@a``: ``a * text + (1 - a) * structural`` with the heterogeneous
  GraphSAGE encoder or the MLP baseline (text vector -> procedure space, no messages);
- ``gnn@0`` / ``mlp@0``: the structural similarity alone.

Every structural method is trained once per seed (``gnn_seed``) on the same memory; the
spread over seeds is the training's. Recall runs with no hop expansion and ten seeds so
that ranking, not the seed cut-off, decides the slots.

Run: ``python benchmarks/gnn_retrieval.py --corpus demo --seeds 0 1 2 [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gmem.config import MemoryConfig  # noqa: E402
from gmem.embedding import MiniLMEmbedder  # noqa: E402
from gmem.llm import HeuristicLLM  # noqa: E402
from gmem.memory import Memory  # noqa: E402
from gmem.trajectory import Trajectory  # noqa: E402
from graph_store import EmbeddedStore  # noqa: E402
from graph_store.model import Outcome  # noqa: E402

RECALL = {"hops": 0, "insight_k": 0, "seed_k": 10, "min_relevance": 0.0, "relevance_margin": 1.0}


@dataclass
class Probe:
    """A held-out task: only its text and family are used."""

    task: str
    metadata: dict[str, Any]


def load_corpus(name: str) -> tuple[list[Trajectory], list[Trajectory], dict[str, tuple[str, ...]]]:
    """Train trajectories, test trajectories and the corpus's confusable groups."""
    corpora = ROOT / "benchmarks" / "corpora"
    groups: dict[str, tuple[str, ...]] = {}
    if (corpora / "__init__.py").exists():
        from benchmarks.corpora import CONFUSABLE_GROUPS, read_corpus

        groups = dict(CONFUSABLE_GROUPS) if name == "scienceworld" else {}
        path = corpora / (
            "scienceworld.jsonl.gz" if name == "scienceworld" else "demo_world.jsonl.gz"
        )
        if path.exists():
            items = list(read_corpus(path))
            train = [t for t in items if t.metadata.get("split") == "train"]
            test = [t for t in items if t.metadata.get("split") == "test"]
            return train, test, groups
    if name != "demo":
        raise SystemExit(f"corpus {name!r} is not committed under benchmarks/corpora")
    # Without the committed file: the demo world played afresh (train), new task texts (test).
    from gmem.demo.corpus import play
    from gmem.demo.world import make_tasks

    probes = [Probe(t.text, {"family": t.family}) for t in make_tasks(100, seed=9)]
    return play(200, seed=1), probes, {}


def precision(hits: Sequence[bool], k: int) -> float:
    return sum(hits[:k]) / k


def evaluate(
    memory: Memory, tests: Iterable[Trajectory], family: dict[str, str]
) -> dict[str, dict[str, float]]:
    """Per test task (by index): P@1 and P@3 and its family."""
    out = {}
    for i, test in enumerate(tests):
        recall = memory.recall(test.task)
        shown = [q for q in recall.queries if q.outcome == Outcome.SUCCESS][:3]
        hits = [family[q.id] == test.metadata["family"] for q in shown] + [False] * 3
        out[str(i)] = {"p1": precision(hits, 1), "p3": precision(hits, 3)}
    return out


def summarise(
    runs: list[dict[str, dict[str, float]]],
    tests: list[Trajectory],
    groups: dict[str, tuple[str, ...]],
) -> dict[str, Any]:
    """Mean and spread over seeds, overall, per family, and per confusable group."""
    fams = [str(t.metadata["family"]) for t in tests]
    member = {f: g for g, fs in groups.items() for f in fs}
    slices: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(fams):
        slices["all"].append(i)
        slices[f"family:{f}"].append(i)
        if f in member:
            slices[f"group:{member[f]}"].append(i)
            slices["confusable"].append(i)
    out: dict[str, Any] = {}
    for name, idx in slices.items():
        row: dict[str, Any] = {"n": len(idx)}
        for metric in ("p1", "p3"):
            per_seed = [statistics.fmean(r[str(i)][metric] for i in idx) for r in runs]
            row[metric] = round(statistics.fmean(per_seed), 3)
            row[f"{metric}_sd"] = round(statistics.pstdev(per_seed), 3) if len(runs) > 1 else 0.0
        out[name] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", choices=["demo", "scienceworld"], default="demo")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.3, 0.5, 0.7])
    parser.add_argument("--encoders", nargs="+", default=["hetero-sage", "mlp"])
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    parser.add_argument(
        "--store",
        type=Path,
        help="Memory file: reused when it exists (built from the corpus's"
        " train split otherwise), so several runs share one ingest.",
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="FIELD=VALUE",
        help="MemoryConfig overrides for every structural method, e.g. gnn_negatives=256.",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    overrides = dict(item.split("=", 1) for item in args.set)

    train, test, groups = load_corpus(args.corpus)
    embedder = MiniLMEmbedder()
    base = MemoryConfig.model_validate({**RECALL, **overrides})
    reuse = args.store is not None and args.store.exists()
    store = EmbeddedStore(args.store if args.store is not None else ":memory:")
    memory = Memory(store, embedder=embedder, llm=HeuristicLLM(embedder, base), config=base)
    t0 = time.perf_counter()
    if not reuse:
        for traj in train:
            memory.ingest(traj)
    ingest_s = time.perf_counter() - t0
    family = {q.id: str(q.metadata["family"]) for q in memory.queries()}
    solved = Counter(family[q.id] for q in memory.queries() if q.successes)
    tests = [t for t in test if solved[str(t.metadata["family"])]]

    def use(cfg: MemoryConfig) -> None:
        memory.config = cfg
        memory.structure.config = cfg
        memory._retriever.config = cfg
        memory._retriever.llm = HeuristicLLM(embedder, cfg)

    results: dict[str, list[dict[str, dict[str, float]]]] = defaultdict(list)
    # Text-only explicitly: a reused store may hold a model saved by an earlier run.
    use(base.model_copy(update={"gnn_alpha": 1.0}))
    results["text"].append(evaluate(memory, tests, family))
    timings: dict[str, list[float]] = defaultdict(list)
    for encoder in args.encoders:
        short = "gnn" if encoder == "hetero-sage" else encoder
        for seed in args.seeds:
            cfg = base.model_copy(
                update={"gnn_encoder": encoder, "gnn_seed": seed, "gnn_alpha": 0.5}
            )
            use(cfg)
            t = time.perf_counter()
            memory.structure.train("default")
            timings[short].append(time.perf_counter() - t)
            for alpha in args.alphas:
                use(cfg.model_copy(update={"gnn_alpha": alpha}))
                results[f"{short}@{alpha:g}"].append(evaluate(memory, tests, family))
            print(f"{short} seed {seed} done", file=sys.stderr, flush=True)
    table = {name: summarise(runs, tests, groups) for name, runs in results.items()}
    report = {
        "corpus": args.corpus,
        "machine": platform.processor() or platform.machine(),
        "train_tasks": len(train),
        "test_tasks": len(tests),
        "seeds": args.seeds,
        "overrides": overrides,
        "ingest_seconds": round(ingest_s, 1),
        "train_seconds": {k: round(statistics.fmean(v), 1) for k, v in timings.items()},
        "methods": table,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(f"{args.corpus}: {len(train)} train, {len(tests)} test tasks, seeds {args.seeds}")
    slices = sorted({s for m in table.values() for s in m}, key=lambda s: (s != "all", s))
    print(f"{'method':<10} " + " ".join(f"{s[:22]:>24}" for s in slices))
    for name, rows in table.items():
        cells = [f"{rows[s]['p1']:.2f}/{rows[s]['p3']:.2f}±{rows[s]['p3_sd']:.2f}" for s in slices]
        print(f"{name:<10} " + " ".join(f"{c:>24}" for c in cells))


if __name__ == "__main__":
    main()
