"""Generate gmem trajectories from the real ScienceWorld simulator.

Every step of every trajectory went through the simulator: the observation and the score
are what the jar answered, not text we wrote. Three kinds of trajectory per task type:

- ``gold`` successes on train variations: the simulator's own gold action sequence,
  replayed step by step; generation fails loudly if a replay does not end at score 100.
- ``deviation`` failures on train variations: a gold prefix of seeded random length, then
  a few seeded random actions drawn from the simulator's list of valid actions at that
  moment (never the next gold action, never ``reset task``). The episode stops there, or
  earlier if the simulator ends it (a wrong ``focus on`` does); a run that reaches 100 by
  chance is discarded and redrawn.
- ``gold`` successes on test variations (the library's held-out split): recall probes.

The planner utterance is the simulator's task description and nothing else, for
successes and failures alike, so the outcome cannot leak into the plan and no gold action
is shown ahead of time.

Steps are taken with ``env.server.step`` and scored with ``env.server.getScore`` exactly
as ``ScienceWorldEnv.step`` does (score in 0..100, reward the change in score). We skip
``ScienceWorldEnv.step`` itself because it also lists every valid action on every step,
which is ten times the cost of the step; the valid list is fetched only where a failure
needs it.

Run (one JVM per worker; see benchmarks/corpora/README.md for the committed settings)::

    python -m benchmarks.corpora.scienceworld --out benchmarks/corpora/scienceworld.jsonl.gz
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import random
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gmem.trajectory import parse_trajectory

SOURCE = "scienceworld"
SUCCESS_SCORE = 100
# The simulator picks among equivalent objects by iterating hash sets keyed by identity
# hashes, which differ with the py4j thread that serves a call; a constant identity hash
# makes that order the insertion order, so a regenerate gives the same bytes. The heap cap
# keeps a JVM to its share of a shared machine (left to itself it grew past 3 GB).
JAVA_OPTS = ["-XX:+UnlockExperimentalVMOptions", "-XX:hashCode=2", "-Xmx1g"]
DEFAULT_OUT = Path(__file__).with_name("scienceworld.jsonl.gz")


@dataclass(frozen=True)
class Plan:
    """How many trajectories of each kind to draw per task type, and from which seed."""

    train: int = 10
    failures: int = 4
    test: int = 3
    seed: int = 0
    min_wrong: int = 2
    max_wrong: int = 6
    max_steps: int | None = None


@dataclass(frozen=True)
class Step:
    action: str
    observation: str
    score: int
    completed: bool


class Simulator:
    """One ScienceWorld JVM, stepped the way ``ScienceWorldEnv.step`` scores."""

    def __init__(self) -> None:
        import scienceworld.scienceworld as sw

        launch = sw.launch_gateway
        sw.launch_gateway = functools.partial(launch, javaopts=JAVA_OPTS)
        try:
            self.env = sw.ScienceWorldEnv("", envStepLimit=100_000)
        finally:
            sw.launch_gateway = launch

    def task_names(self) -> list[str]:
        return list(self.env.get_task_names())

    def load(self, task: str, variation: int) -> tuple[str, list[str]]:
        """Load a variation at its start state; return its description and gold path."""
        self.env.load(task, variation, "", generateGoldPath=True)
        gold = list(self.env.get_gold_action_sequence())
        self.env.server.reset()
        self.step("look around")
        return str(self.env.get_task_description()), gold

    def splits(self) -> tuple[list[int], list[int]]:
        return list(self.env.get_variations_train()), list(self.env.get_variations_test())

    def step(self, action: str) -> Step:
        observation = str(self.env.server.step(action))
        score = round(100 * float(self.env.server.getScore()))
        return Step(action, observation, score, bool(self.env.server.getCompleted()))

    def valid_actions(self) -> list[str]:
        return sorted(set(self.env.get_valid_action_object_combinations()))

    def close(self) -> None:
        self.env.close()


def _trajectory(
    task: str,
    variation: int,
    split: str,
    description: str,
    steps: list[Step],
    kind: str,
    extra: dict[str, Any],
) -> dict[str, Any]:
    final = steps[-1].score if steps else 0
    success = final >= SUCCESS_SCORE
    out_steps: list[dict[str, Any]] = [
        {"agent": "planner", "role": "planner", "content": description}
    ]
    previous = 0
    for i, step in enumerate(steps, start=1):
        out_steps.append(
            {
                "agent": "actor",
                "role": "actor",
                "content": step.action,
                "action": step.action,
                "observation": step.observation,
                "reward": float(step.score - previous),
                "replies_to": [i - 1],
                "metadata": {"score": step.score},
            }
        )
        previous = step.score
    line = {
        "task": description,
        "success": success,
        "score": max(0, min(final, SUCCESS_SCORE)) / SUCCESS_SCORE,
        "steps": out_steps,
        "metadata": {
            "family": task,
            "variation": variation,
            "split": split,
            "source": SOURCE,
            "kind": kind,
            "final_score": final,
            **extra,
        },
    }
    parse_trajectory(line)
    return line


def _gold_run(
    sim: Simulator, task: str, variation: int, split: str, plan: Plan
) -> dict[str, Any] | None:
    """The replayed gold path, or None where the simulator's own gold path falls short
    of 100 (a few variations do, e.g. freeze 11 ends at 87)."""
    description, gold = sim.load(task, variation)
    steps = [sim.step(action) for action in gold]
    if not steps or steps[-1].score != SUCCESS_SCORE:
        got = steps[-1].score if steps else None
        print(f"{task} variation {variation}: gold path ends at {got}, skipped", file=sys.stderr)
        return None
    extra: dict[str, Any] = {"gold_steps": len(gold)}
    if plan.max_steps is not None and len(steps) > plan.max_steps:
        # Keep the start and the finishing steps, so the success is still visible.
        head = plan.max_steps // 2
        steps = steps[:head] + steps[len(steps) - (plan.max_steps - head) :]
        extra["steps_kept"] = len(steps)
    return _trajectory(task, variation, split, description, steps, "gold", extra)


def _deviation_run(
    sim: Simulator, task: str, variation: int, plan: Plan, attempt: int
) -> dict[str, Any] | None:
    rng = random.Random(f"{plan.seed}:{task}:{variation}:deviation:{attempt}")
    description, gold = sim.load(task, variation)
    prefix = rng.randrange(len(gold))
    steps = [sim.step(action) for action in gold[:prefix]]
    wrong = rng.randint(plan.min_wrong, plan.max_wrong)
    for _ in range(wrong):
        if steps and steps[-1].completed:
            break
        banned = {gold[prefix], "reset task"}
        choices = [a for a in sim.valid_actions() if a not in banned]
        steps.append(sim.step(rng.choice(choices)))
    if not steps or steps[-1].score >= SUCCESS_SCORE:
        return None
    extra = {"gold_steps": len(gold), "gold_prefix": prefix, "attempt": attempt}
    return _trajectory(task, variation, "train", description, steps, "deviation", extra)


class Cache:
    """Finished runs of one task type on disk, so an interrupted or enlarged generation
    replays nothing it already has. A run is keyed by everything that determines it."""

    def __init__(self, root: Path | None, task: str) -> None:
        self.path = None if root is None else root / f"{task}.jsonl"
        self.runs: dict[str, dict[str, Any] | None] = {}
        if self.path is not None and self.path.exists():
            for raw in self.path.read_text(encoding="utf-8").splitlines():
                entry = json.loads(raw)
                self.runs[entry["key"]] = entry["line"]

    def get(self, key: str, run: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
        if key not in self.runs:
            self.runs[key] = run()
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"key": key, "line": self.runs[key]}) + "\n")
        return self.runs[key]


def task_lines(
    sim: Simulator, task: str, plan: Plan, cache_dir: Path | None = None
) -> list[dict[str, Any]]:
    """All trajectories of one task type, in a fixed order.

    Variations are taken in a seeded order, so a larger ``plan`` keeps the smaller one's
    trajectories: successes from the front of the train order, failures from its back.
    """
    cache = Cache(cache_dir, task)
    sim.load(task, 0)
    train, test = sim.splits()
    rng = random.Random(f"{plan.seed}:{task}:variations")
    train_order = rng.sample(train, len(train))
    test_order = rng.sample(test, len(test))
    cap = plan.max_steps

    def golds(order: list[int], split: str, wanted: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for v in order:
            if len(found) == wanted:
                break
            run = functools.partial(_gold_run, sim, task, v, split, plan)
            line = cache.get(f"gold:{split}:{v}:{cap}", run)
            if line is not None:
                found.append(line)
        return found

    lines = golds(train_order, "train", plan.train)
    used = {line["metadata"]["variation"] for line in lines}
    # Failures on other train variations where there are enough, else on the same ones.
    rest = [v for v in reversed(train_order) if v not in used] or list(reversed(train_order))
    for i in range(plan.failures):
        v = rest[i % len(rest)]
        for attempt in range(i * 100, i * 100 + 20):
            key = f"deviation:{plan.seed}:{v}:{attempt}:{plan.min_wrong}-{plan.max_wrong}"
            line = cache.get(key, functools.partial(_deviation_run, sim, task, v, plan, attempt))
            if line is not None:
                lines.append(line)
                break
        else:
            raise RuntimeError(f"{task} variation {v}: no failing deviation in 20 attempts")
    return lines + golds(test_order, "test", plan.test)


# The simulator of this worker process, started on its first job and kept for the rest.
_WORKER_SIM: dict[str, Simulator] = {}


def _worker(
    args: tuple[str, Plan, Path | None],
) -> tuple[str, list[dict[str, Any]], float]:
    if "sim" not in _WORKER_SIM:
        _WORKER_SIM["sim"] = Simulator()
    task, plan, cache_dir = args
    start = time.perf_counter()
    lines = task_lines(_WORKER_SIM["sim"], task, plan, cache_dir)
    return task, lines, time.perf_counter() - start


def generate(
    plan: Plan,
    tasks: Iterable[str] | None = None,
    workers: int = 1,
    cache_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Generate the corpus; the result's order depends only on ``plan`` and ``tasks``."""
    if tasks is None:
        sim = Simulator()
        tasks = sim.task_names()
        sim.close()
    names = list(tasks)
    by_task: dict[str, list[dict[str, Any]]] = {}
    jobs = [(name, plan, cache_dir) for name in names]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for task, lines, seconds in pool.map(_worker, jobs):
            by_task[task] = lines
            print(f"{task}: {len(lines)} trajectories in {seconds:.1f} s", file=sys.stderr)
    return mark_seen_text([line for name in names for line in by_task[name]])


def mark_seen_text(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mark each test probe whose description a train trajectory has word for word (the
    lifespan types have one description for all variations), so a benchmark can tell
    recall by wording from recall by structure."""
    train_texts = {line["task"] for line in lines if line["metadata"]["split"] == "train"}
    for line in lines:
        if line["metadata"]["split"] == "test":
            line["metadata"]["text_in_train"] = line["task"] in train_texts
    return lines


def write(lines: list[dict[str, Any]], out: Path) -> None:
    """Write JSONL, gzipped when the name ends in ``.gz`` (with a fixed mtime, so the
    same corpus gives the same bytes)."""
    data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".gz":
        with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            gz.write(data)
    else:
        out.write_bytes(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=Plan.train, help="train successes per type")
    parser.add_argument("--failures", type=int, default=Plan.failures, help="failures per type")
    parser.add_argument("--test", type=int, default=Plan.test, help="test probes per type")
    parser.add_argument("--seed", type=int, default=Plan.seed)
    parser.add_argument("--max-steps", type=int, default=None, help="cap on kept gold steps")
    parser.add_argument("--tasks", nargs="*", help="task types (default: all 30)")
    parser.add_argument("--workers", type=int, default=1, help="simulator processes")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--cache", type=Path, help="keep finished runs here and reuse them")
    args = parser.parse_args(argv)
    plan = Plan(
        train=args.train,
        failures=args.failures,
        test=args.test,
        seed=args.seed,
        max_steps=args.max_steps,
    )
    start = time.perf_counter()
    lines = generate(plan, args.tasks or None, workers=args.workers, cache_dir=args.cache)
    write(lines, args.out)
    seconds = time.perf_counter() - start
    print(f"{len(lines)} trajectories -> {args.out} in {seconds:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
