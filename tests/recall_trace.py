"""A seeded store and the recalls made on it, written out as plain data.

The recall path is optimised (what it reads, in how many batches, what it keeps between
recalls) under the rule that its results do not change. This builds the same store in
every run (seeded trajectories, task texts and node ids; the hashing embedder and the
heuristic reasoner, which are deterministic), then recalls a series of probe tasks,
finishing every third one through full evolution so that later recalls see the writes
of earlier ones, and returns every recall as JSON-ready data: the ranked queries, the
insights, the condensed trajectories and the actor's prompt (the last two as hashes),
ids as they were stored.

``tests/fixtures/recall_before.json`` is this module's output from the code before the
optimisation (commit cb7f7ae); ``tests/test_recall_equivalence.py`` compares the code
of the day with it. Regenerate it only for a change meant to alter recall results:
``PYTHONPATH=$PWD python -m tests.recall_trace tests/fixtures/recall_before.json``.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gmem.config import MemoryConfig
from gmem.demo.corpus import play
from gmem.demo.world import make_tasks
from gmem.embedding import HashingEmbedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from gmem.recall import Recall
from graph_store import EmbeddedStore, GraphStore

STORED = 60
PROBES = 36
#: Digits a score is compared to: the same arithmetic in another order may differ in
#: the last bits of a float, and nothing shown depends on them.
DIGITS = 9


@contextmanager
def seeded_ids(seed: int) -> Iterator[None]:
    """Node ids drawn from a seeded generator (they are uuid4 otherwise), so the same
    store gets the same ids in every run and ties broken by id break the same way."""
    rng = random.Random(seed)
    real = uuid.uuid4
    uuid.uuid4 = lambda: uuid.UUID(int=rng.getrandbits(128), version=4)
    try:
        yield
    finally:
        uuid.uuid4 = real


def _path(steps: Any, _r: Any) -> list[list[Any]]:
    return [
        [s.how, s.node_id, None if s.score is None else _r(s.score), s.edge, s.source]
        for s in steps
    ]


def _digest(value: Any) -> str:
    """Long text as its hash: the fixture stays small, and any change still shows."""
    return hashlib.sha256(json.dumps(value, ensure_ascii=False).encode()).hexdigest()[:16]


def as_data(recall: Recall, digits: int = DIGITS) -> dict[str, Any]:
    def _r(x: float) -> float:
        return round(float(x), digits)

    return {
        "task": recall.task,
        "queries": [
            [
                q.id,
                q.outcome.value,
                _r(q.similarity),
                _r(q.relevance),
                q.hop,
                q.kept,
                _path(q.path, _r),
            ]
            for q in recall.queries
        ],
        "insights": [
            [
                i.id,
                i.text,
                _r(i.score),
                list(i.roles),
                _r(i.rank),
                i.support_overlap,
                i.contradict_overlap,
                _r(i.similarity),
                _path(i.path, _r),
            ]
            for i in recall.insights
        ],
        "trajectories": [
            [
                t.query_id,
                t.outcome.value,
                t.attempt,
                _r(t.relevance),
                t.total_steps,
                _digest([[s.agent, s.role, s.content, s.action, s.observation] for s in t.steps]),
            ]
            for t in recall.trajectories
        ],
        "prompt": _digest(recall.prompt("actor")),
    }


#: The configurations traced: the defaults, and one without the neighbourhood gate, under
#: which far more insights reach the ranking (and the placement check) in this small store.
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "ungated": {"insight_min_support_share": 0.0},
}


def trace(store: GraphStore, **config: Any) -> list[dict[str, Any]]:
    """Fill ``store`` (opened before, so that its own ids are not drawn from the seeded
    ones) with the seeded tasks and return the recalls made on it, in order."""
    embedder = HashingEmbedder()
    cfg = MemoryConfig(**config)
    out = []
    with seeded_ids(7):
        mem = Memory(store, embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg)
        try:
            for traj in play(STORED, seed=3):
                mem.ingest(traj)
            runs = play(PROBES, seed=21)
            texts = [t.text for t in make_tasks(PROBES, seed=11)]
            for i, (text, run) in enumerate(zip(texts, runs, strict=True)):
                out.append(as_data(mem.recall(text)))
                if i % 3 == 2:
                    task = mem.task(run.task)
                    task.recall("actor")
                    out.append(as_data(task.memory_recall))
                    for s in run.steps:
                        task.record(
                            s.agent, s.role, s.content, action=s.action, observation=s.observation
                        )
                    task.finish(run.success, run.score)
        finally:
            mem.close()
    return out


if __name__ == "__main__":
    traced = {name: trace(EmbeddedStore(), **config) for name, config in CONFIGS.items()}
    Path(sys.argv[1]).write_text(json.dumps(traced, ensure_ascii=False) + "\n")
