"""Committed trajectory corpora for benchmarks and tests, and how to read them.

The files are gzipped gmem JSONL (one trajectory per line, see :mod:`gmem.trajectory`).
``read_corpus`` yields parsed trajectories for ``Memory.ingest``; ``write_plain_jsonl``
(or ``gunzip -c``) gives the plain JSONL that ``Memory.ingest_jsonl`` and ``gmem ingest``
read. Regenerating needs the simulator; reading does not.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

from gmem.trajectory import Trajectory, parse_trajectory

CORPORA_DIR = Path(__file__).parent
SCIENCEWORLD = CORPORA_DIR / "scienceworld.jsonl.gz"
DEMO_WORLD = CORPORA_DIR / "demo_world.jsonl.gz"

# ScienceWorld task types that share words and most of a procedure but differ in the
# step that decides success (which state change, which kind of thing, which quantity).
# Text similarity confuses tasks within a group; these are the groups benchmarks report
# on their own.
CONFUSABLE_GROUPS: dict[str, tuple[str, ...]] = {
    "change-state": ("boil", "melt", "freeze", "change-the-state-of-matter-of"),
    "find": ("find-animal", "find-plant", "find-living-thing", "find-non-living-thing"),
    "inclined-plane": (
        "inclined-plane-determine-angle",
        "inclined-plane-friction-named-surfaces",
        "inclined-plane-friction-unnamed-surfaces",
    ),
    "lifespan": (
        "lifespan-longest-lived",
        "lifespan-shortest-lived",
        "lifespan-longest-lived-then-shortest-lived",
    ),
    "power-component": ("power-component", "power-component-renewable-vs-nonrenewable-energy"),
    "conductivity": ("test-conductivity", "test-conductivity-of-unknown-substances"),
    "paint-mixing": (
        "chemistry-mix",
        "chemistry-mix-paint-secondary-color",
        "chemistry-mix-paint-tertiary-color",
    ),
}

# Further sibling task types (known vs unknown substance, stage 1 vs 2, plant vs fruit);
# kept apart so the groups above stay the ones the benchmarks were specified with.
SIBLING_GROUPS: dict[str, tuple[str, ...]] = {
    "melting-point": (
        "measure-melting-point-known-substance",
        "measure-melting-point-unknown-substance",
    ),
    "mendelian-genetics": ("mendelian-genetics-known-plant", "mendelian-genetics-unknown-plant"),
    "grow": ("grow-plant", "grow-fruit"),
    "life-stages": ("identify-life-stages-1", "identify-life-stages-2"),
}


def _lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        yield from (line for line in f if line.strip())


def read_raw(path: str | Path) -> Iterator[dict[str, object]]:
    """The corpus lines as JSON objects (gzipped or plain)."""
    for line in _lines(Path(path)):
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a line is not a JSON object")
        yield data


def read_corpus(path: str | Path) -> Iterator[Trajectory]:
    """The corpus as validated trajectories, in file order."""
    for data in read_raw(path):
        yield parse_trajectory(data)


def write_plain_jsonl(path: str | Path, dest: str | Path) -> Path:
    """Write the corpus at ``path`` as plain JSONL at ``dest`` (for ``gmem ingest``)."""
    out = Path(dest)
    with open(out, "w", encoding="utf-8") as f:
        for line in _lines(Path(path)):
            f.write(line if line.endswith("\n") else line + "\n")
    return out
