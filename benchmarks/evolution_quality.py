"""Does evolution learn general lessons? Replays labelled corpora in order and measures.

Each corpus is a list of finished trajectories with a known task family
(``metadata["family"]``): the demo world's (the offline team playing seeded household
tasks without memory) and the ScienceWorld corpus under ``benchmarks/corpora/``. They are
replayed in order through the public API, as a team wrapped by gmem would run them: open
the task, recall memory for every role of the trajectory (crediting what is rendered),
record the steps, finish with the recorded outcome. The outcomes do not depend on memory,
which is the point: a lesson shown to a domain that succeeds anyway must gain nothing.

Reported per corpus (mean and range over seeds; a seed shuffles the replay order of a
file corpus, and draws a different task list for the demo world):

- insights live and retired at the end;
- purity: per live insight, the share of its supporting tasks in its majority family;
- recall family share: of the insights rendered in recalls, the share whose majority
  family (at the time shown) is the task's family;
- most-shown insight: the largest share of recalls one insight was rendered in, and the
  number of families it was shown to;
- shown-success precision: of the successful trajectories rendered, the share of the
  task's family.

``--gnn-after N`` trains the structural encoder (the ``gnn`` extra) once N tasks of a
replay are stored and retrains it every N more, so recall mixes text with procedure
vectors as a team running ``gmem embed`` would see. ``--demo-seeds`` also plays the
demo (30 tasks per seed) with memory off and on;
``--sweep`` replays seed 0 with one recall default changed at a time.

Run: ``.venv/bin/python benchmarks/evolution_quality.py [--seeds 3] [--json]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gmem.config import MemoryConfig
from gmem.demo.corpus import play
from gmem.embedding import MiniLMEmbedder, TextEmbedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from gmem.trajectory import Trajectory, parse_trajectory
from graph_store import EmbeddedStore
from graph_store.model import Insight, Outcome

CORPORA = Path(__file__).with_name("corpora")
# Recall defaults revisited: each value replayed alone, the others at their defaults.
SWEEP: dict[str, tuple[Any, ...]] = {
    "min_relevance": (0.4, 0.6),
    "relevance_margin": (0.15, 0.5),
    "success_k": (1, 3),
    "role_token_budget": (300, 900),
    "procedure_min_similarity": (0.3, 0.5),
    "procedure_margin": (0.0, 0.05),
}


def read_corpus(path: Path) -> list[Trajectory]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        return [parse_trajectory(json.loads(line)) for line in fh if line.strip()]


def _family_of(node: Insight | None, family: dict[str, str]) -> str | None:
    if node is None:
        return None
    votes = Counter(family[q] for q in node.supporting if q in family)
    if not votes:
        votes = Counter(family[q] for q in node.contradicting if q in family)
    return votes.most_common(1)[0][0] if votes else None


def replay(
    trajectories: Sequence[Trajectory],
    embedder: TextEmbedder,
    config: MemoryConfig,
    gnn_after: int = 0,
) -> dict[str, Any]:
    """One replay; with ``gnn_after`` the structural encoder is trained once that many
    tasks are stored (then refreshed and retrained on the config's cadence)."""
    memory = Memory(
        EmbeddedStore(":memory:"),
        embedder=embedder,
        llm=HeuristicLLM(embedder, config),
        config=config,
    )
    family: dict[str, str] = {}
    shown_counts: Counter[str] = Counter()
    shown_families: dict[str, set[str]] = {}
    recalls = ins_total = ins_hits = succ_total = succ_hits = 0
    tokens: list[int] = []
    finish_ms: list[float] = []
    for n, traj in enumerate(trajectories):
        if gnn_after and n == gnn_after:
            memory.embed_graph()
        fam = str(traj.metadata["family"])
        roles = list(dict.fromkeys(s.role for s in traj.steps))
        with memory.task(traj.task, metadata=traj.metadata) as task:
            shown_ins: dict[str, None] = {}
            shown_traj: dict[str, None] = {}
            for role in roles:
                rm = task.recall(role)
                tokens.append(rm.tokens)
                ins_ids = getattr(rm, "rendered_insights", None)
                if ins_ids is None:  # before RoleMemory said what was rendered
                    ins_ids = [i.id for i in rm.insights]
                traj_ids = getattr(rm, "rendered_trajectories", None)
                if traj_ids is None:
                    traj_ids = [t.query_id for t in rm.trajectories]
                shown_ins.update(dict.fromkeys(ins_ids))
                outcome = {t.query_id: t.outcome for t in rm.trajectories}
                shown_traj.update(
                    dict.fromkeys(q for q in traj_ids if outcome.get(q) == Outcome.SUCCESS)
                )
            recalls += 1
            nodes = memory.store.get_nodes(list(shown_ins)) if shown_ins else []
            for iid, node in zip(shown_ins, nodes, strict=True):
                ins = node if isinstance(node, Insight) else None
                shown_counts[iid] += 1
                shown_families.setdefault(iid, set()).add(fam)
                ins_total += 1
                ins_hits += _family_of(ins, family) == fam
            for qid in shown_traj:
                succ_total += 1
                succ_hits += family.get(qid) == fam
            ids: list[str] = []
            for step in traj.steps:
                ids.append(
                    task.record(
                        step.agent,
                        step.role,
                        step.content,
                        replies_to=[ids[r] for r in step.replies_to],
                        action=step.action,
                        observation=step.observation,
                        reward=step.reward,
                    )
                )
            t0 = time.perf_counter()
            report = task.finish(traj.success, traj.score)
            finish_ms.append((time.perf_counter() - t0) * 1000)
            family[report.query_id] = fam
    insights = [i for i in memory.insights(include_retired=True)]
    live = [i for i in insights if not i.retired]
    purity = []
    for ins in live:
        votes = Counter(family[q] for q in ins.supporting if q in family)
        if votes:
            purity.append(votes.most_common(1)[0][1] / sum(votes.values()))
    top_id, top_n = shown_counts.most_common(1)[0] if shown_counts else ("", 0)
    return {
        "tasks": len(trajectories),
        "families": len(set(family.values())),
        "live": len(live),
        "retired": len(insights) - len(live),
        "purity": statistics.fmean(purity) if purity else None,
        "recall_family_share": ins_hits / ins_total if ins_total else None,
        "insights_shown": ins_total,
        "top_shown_share": top_n / recalls if recalls else 0.0,
        "top_shown_families": len(shown_families.get(top_id, ())),
        "success_precision": succ_hits / succ_total if succ_total else None,
        "successes_shown": succ_total,
        "successes_per_recall": succ_total / recalls if recalls else 0.0,
        "prompt_tokens_mean": statistics.fmean(tokens) if tokens else 0.0,
        "finish_ms_p50": statistics.median(finish_ms),
    }


def demo_on_off(seeds: Sequence[int], embedder: TextEmbedder, config: MemoryConfig) -> list[Any]:
    from gmem.demo import World, make_tasks
    from gmem.demo.runner import play_with_memory, play_without_memory
    from gmem.demo.team import OfflineTeam

    rows = []
    for seed in seeds:
        tasks = make_tasks(30, seed)
        world = World()
        off = sum(r.success for r in play_without_memory(world, tasks, OfflineTeam(), seed))
        memory = Memory(
            EmbeddedStore(":memory:"),
            embedder=embedder,
            llm=HeuristicLLM(embedder, config),
            config=config,
        )
        on = sum(r.success for r in play_with_memory(world, tasks, OfflineTeam(), memory, seed))
        rows.append({"seed": seed, "tasks": 30, "off": off, "on": on})
    return rows


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not rows:
        return out
    for key in rows[0]:
        values = [r[key] for r in rows if r[key] is not None]
        if not values:
            out[key] = None
        elif isinstance(values[0], int | float):
            out[key] = {
                "mean": statistics.fmean(values),
                "min": min(values),
                "max": max(values),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--demo-tasks", type=int, default=150)
    parser.add_argument(
        "--corpus",
        action="append",
        type=Path,
        help="a JSONL(.gz) corpus with metadata.family (default: benchmarks/corpora/*.jsonl*)",
    )
    parser.add_argument("--demo-seeds", type=int, default=5)
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="also replay seed 0 of each corpus with one recall default changed at a time",
    )
    parser.add_argument(
        "--gnn-after",
        type=int,
        default=0,
        help="train the structural encoder (gnn extra) after this many tasks of each replay"
        " and retrain it every as many more (0: text only)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    embedder = MiniLMEmbedder()
    config = MemoryConfig(gnn_retrain_every=args.gnn_after)
    gnn = args.gnn_after
    files = args.corpus or sorted(
        p for p in CORPORA.glob("*.jsonl*") if not p.name.startswith("demo")
    )
    result: dict[str, Any] = {
        "machine": subprocess.run(
            ["bash", "-c", "lscpu | head -n 14"], capture_output=True, text=True, check=False
        ).stdout,
        "seeds": args.seeds,
        "corpora": {},
    }
    runs = [replay(play(args.demo_tasks, seed=s), embedder, config, gnn) for s in range(args.seeds)]
    result["corpora"]["demo world"] = {"runs": runs, "summary": _summary(runs)}
    for path in files:
        base = read_corpus(path)
        runs = []
        for s in range(args.seeds):
            order = list(base)
            random.Random(s).shuffle(order)
            runs.append(replay(order, embedder, config, gnn))
        result["corpora"][path.name] = {"runs": runs, "summary": _summary(runs)}
    if args.sweep:
        corpora = {"demo world": play(args.demo_tasks, seed=0)}
        corpora.update({p.name: read_corpus(p) for p in files})
        result["sweep"] = {
            f"{key}={value}": {
                name: replay(trajs, embedder, config.model_copy(update={key: value}))
                for name, trajs in corpora.items()
            }
            for key, values in SWEEP.items()
            for value in values
        }
    if args.demo_seeds:
        result["demo"] = demo_on_off(range(args.demo_seeds), embedder, config)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(result["machine"])
    for name, corpus in result["corpora"].items():
        print(f"== {name}")
        for key, value in corpus["summary"].items():
            if value is None:
                print(f"  {key:<22} -")
            else:
                print(
                    f"  {key:<22} {value['mean']:8.3f}  (min {value['min']:.3f}, "
                    f"max {value['max']:.3f})"
                )
    for row in result.get("demo", []):
        print(f"demo seed {row['seed']}: off {row['off']}/30, on {row['on']}/30")


if __name__ == "__main__":
    main()
