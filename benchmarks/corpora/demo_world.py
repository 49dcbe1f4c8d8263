"""Generate the demo-world corpus: gmem's own household world played by the offline team.

Train and test instances are drawn with different task seeds and played without memory,
so outcomes are mixed (the offline team fails often) and each trajectory keeps the team's
real messages: planner, actor (with the world's observation and reward) and verifier. The
world has few wordings per family (the examine family has 18 in all), so many test
instances repeat a train instance's text (with the object elsewhere in the house);
``metadata.text_in_train`` marks them, so a benchmark can keep or drop them.

Run::

    python -m benchmarks.corpora.demo_world --out benchmarks/corpora/demo_world.jsonl.gz
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.corpora.scienceworld import write
from gmem.demo.corpus import play
from gmem.trajectory import Trajectory

SOURCE = "demo_world"
# Episode seeds of test instances start here, apart from the train ones (0, 1, ...).
TEST_EPISODE_SEED = 10_000
DEFAULT_OUT = Path(__file__).with_name("demo_world.jsonl.gz")


def _line(trajectory: Trajectory, split: str, **extra: Any) -> dict[str, Any]:
    line = trajectory.model_dump(mode="json", exclude_none=True)
    line["success"] = trajectory.success
    line["metadata"] = {**trajectory.metadata, "split": split, "source": SOURCE, **extra}
    return line


def generate(train: int, test: int, train_seed: int, test_seed: int) -> list[dict[str, Any]]:
    """Train instances first, then test instances (other task and episode seeds)."""
    train_runs = play(train, train_seed)
    seen = {t.task for t in train_runs}
    test_runs = play(test, test_seed, episode_seed=TEST_EPISODE_SEED)
    return [_line(t, "train") for t in train_runs] + [
        _line(t, "test", text_in_train=t.task in seen) for t in test_runs
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=400, help="train instances")
    parser.add_argument("--test", type=int, default=150, help="test instances")
    parser.add_argument("--train-seed", type=int, default=1)
    parser.add_argument("--test-seed", type=int, default=2)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    lines = generate(args.train, args.test, args.train_seed, args.test_seed)
    write(lines, args.out)
    seconds = time.perf_counter() - start
    print(f"{len(lines)} trajectories -> {args.out} in {seconds:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
