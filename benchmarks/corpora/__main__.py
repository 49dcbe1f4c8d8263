"""Print what a corpus holds: trajectories per family, split and outcome.

Run: ``python -m benchmarks.corpora [PATH ...]`` (default: both committed corpora);
``--plain DEST`` also writes the first corpus as plain JSONL for ``gmem ingest``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from benchmarks.corpora import DEMO_WORLD, SCIENCEWORLD, read_corpus, write_plain_jsonl


def summarise(path: Path) -> str:
    counts: Counter[tuple[str, str]] = Counter()
    steps = 0
    for t in read_corpus(path):
        outcome = "success" if t.success else "failure"
        counts[(str(t.metadata["family"]), f"{t.metadata['split']} {outcome}")] += 1
        steps += len(t.steps)
    columns = ["train success", "train failure", "test success", "test failure"]
    families = sorted({family for family, _ in counts})
    rows = [f"| family | {' | '.join(columns)} |", "|---|" + "---:|" * len(columns)]
    rows.extend(
        f"| {family} | " + " | ".join(str(counts[(family, c)]) for c in columns) + " |"
        for family in families
    )
    totals = [sum(counts[(f, c)] for f in families) for c in columns]
    rows.append("| **all** | " + " | ".join(str(n) for n in totals) + " |")
    size = path.stat().st_size
    head = f"{path.name}: {sum(totals)} trajectories, {steps} steps, {size / 1e6:.2f} MB"
    return "\n".join([head, "", *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[SCIENCEWORLD, DEMO_WORLD])
    parser.add_argument("--plain", type=Path, help="write the first corpus as plain JSONL here")
    args = parser.parse_args()
    for path in args.paths:
        print(summarise(path), end="\n\n")
    if args.plain:
        print(f"wrote {write_plain_jsonl(args.paths[0], args.plain)}")


if __name__ == "__main__":
    main()
