"""Bulk ingest (gmem.bulk): what it writes equals what full ingest writes minus the
insight work, it is idempotent and resumable, and a batch is all or nothing per line.

The ``store`` fixture runs each test on every backend (Neo4j when GMEM_NEO4J_URI is set).
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import gmem.bulk as gmem_bulk
import gmem.memory as gmem_memory
from gmem import attempts
from gmem.config import MemoryConfig
from gmem.embedding import HashingEmbedder
from gmem.errors import StoreError, UserInputError
from gmem.inputs import check_name
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from gmem.trajectory import Trajectory, hashed_step_id, step_id, trajectory_key
from graph_store import GraphStore
from graph_store.model import (
    Edge,
    EdgeKind,
    NodeKind,
    QueryNode,
    Utterance,
    check_id,
    query_id_for,
    trusted,
)
from graph_store.ops import Op, PutNodes, VectorSearch
from graph_store.programs import Runner
from tests.cli import gmem

TASKS = [
    "put a clean mug in the cabinet",
    "heat an egg and put it on the table",
    "put a clean cup in the cabinet",
    "cool a tomato and put it in the fridge",
]


def _memory(store: GraphStore | str = ":memory:", **config: Any) -> Memory:
    cfg = MemoryConfig(merge_every=0, **config)
    embedder = HashingEmbedder()
    return Memory(store, embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg)


def _trajectory(i: int, content: str = "") -> dict[str, Any]:
    """Attempt ``i`` at one of four tasks: repeated texts, replies, actions, loops."""
    task = TASKS[i % len(TASKS)]
    steps: list[dict[str, Any]] = [
        {"agent": "p", "role": "planner", "content": f"plan {i}: {task}"},
        {
            "agent": "a",
            "role": "actor",
            "content": content or f"attempt {i} walks",
            "action": "go to countertop 1",
            "observation": "You see a mug 1.",
            "reward": 0.0,
            "replies_to": [0],
        },
        {
            "agent": "a",
            "role": "actor",
            "content": "again",
            "action": "go to countertop 1",
            "observation": "You see a mug 1.",
            "replies_to": [0, 1],
        },
        {
            "agent": "a",
            "role": "actor",
            "content": "take it",
            "action": "take mug 1 from countertop 1",
            "observation": "Nothing happens." if i % 3 else "You pick up the mug 1.",
            "metadata": {"n": i},
        },
    ]
    return {
        "task": task,
        "success": None if i % 5 == 4 else i % 2 == 0,
        "score": 0.5,
        "steps": steps,
        "metadata": {"family": "demo", "i": i},
    }


def _snapshot(store: GraphStore) -> dict[str, Any]:
    """What both paths must agree on: queries, traces and every non-insight edge."""
    queries = {
        n.id: (n.text, n.attempts, n.successes, n.failures, list(n.attempt_outcomes), n.outcome)
        for n in store.list_nodes(NodeKind.QUERY)
        if isinstance(n, QueryNode)
    }
    utts = {
        n.id: (n.query_id, n.attempt, n.step, n.content, n.key_step, n.tokens, n.metadata)
        for n in store.list_nodes(NodeKind.UTTERANCE)
        if isinstance(n, Utterance)
    }
    kinds = [
        EdgeKind.HAS_TRACE,
        EdgeKind.NEXT,
        EdgeKind.REPLIES_TO,
        EdgeKind.USED_MEMORY_OF,
        EdgeKind.SIMILAR_TO,
    ]
    edges = sorted(
        (e.kind.value, e.src, e.dst) for e in store.get_edges([*queries, *utts], kinds, "out")
    )
    return {"queries": queries, "utterances": utts, "edges": edges}


def test_bulk_writes_what_full_ingest_writes_minus_insights(store: GraphStore) -> None:
    items = [_trajectory(i) for i in range(14)]
    items[9]["used_queries"] = [TASKS[0], "a task never stored"]
    items[10]["used_queries"] = [query_id_for("default", TASKS[3])]
    full = _memory()
    full.ingest_many(items)
    bulk = _memory(store, bulk_ingest_batch=4)
    reports = bulk.ingest_many(items, bulk=True)
    assert [r.stored for r in reports] == [True] * len(items)
    assert [r.attempt for r in reports] == [i // 4 + 1 for i in range(14)]
    assert _snapshot(bulk.store) == _snapshot(full.store)
    assert not bulk.insights()  # the reasoner's work is what bulk leaves out
    assert sum(r.similar_edges for r in reports) > 0
    assert sum(r.used_memory_edges for r in reports) == 2
    full.close()


def test_bulk_rerun_stores_nothing_twice_and_resumes(store: GraphStore) -> None:
    items = [_trajectory(i) for i in range(9)]
    mem = _memory(store, bulk_ingest_batch=4)
    first = mem.ingest_many(items[:5], bulk=True)  # the run that "died" after five
    assert all(r.stored for r in first)
    resumed = mem.ingest_many(items, bulk=True)
    assert [r.stored for r in resumed] == [False] * 5 + [True] * 4
    before = _snapshot(mem.store)
    again = mem.ingest_many([*items, items[0]], bulk=True)
    assert not any(r.stored for r in again)
    assert _snapshot(mem.store) == before
    assert sorted(q.attempts for q in mem.queries()) == [2, 2, 2, 3]


def test_a_trajectory_repeated_in_one_batch_is_stored_once(store: GraphStore) -> None:
    mem = _memory(store)
    one = _trajectory(0)
    reports = mem.ingest_many([one, _trajectory(1), one], bulk=True)
    assert [r.stored for r in reports] == [True, True, False]
    assert [q.attempts for q in mem.queries()] == [1, 1]


def test_a_bad_trajectory_in_bulk_input_writes_nothing(store: GraphStore) -> None:
    mem = _memory(store)
    items = [_trajectory(i) for i in range(4)]
    items[2]["steps"][1]["agent"] = "x" * 201
    with pytest.raises(UserInputError):
        mem.ingest_many(items, bulk=True)
    assert mem.stats().total_nodes == 0


class _Refusing(GraphStore):
    """A store that refuses every write batch holding an utterance with ``poison``."""

    def __init__(self, inner: GraphStore, poison: str) -> None:
        self.inner = inner
        self.url = inner.url
        self.poison: str | None = poison
        self.before_write: Callable[[], object] | None = None

    def batch(self, ops: Sequence[Op]) -> list[Any]:
        writes = [n for op in ops if isinstance(op, PutNodes) for n in op.nodes]
        if writes and self.before_write is not None:
            hook, self.before_write = self.before_write, None
            hook()
        if any(isinstance(n, Utterance) and n.content == self.poison for n in writes):
            raise StoreError("refused by the test")
        return self.inner.batch(ops)

    def _transact(self, ops: list[Op], work: Callable[[Runner], list[Any]]) -> list[Any]:
        return self.inner._transact(ops, work)

    def close(self) -> None:
        self.inner.close()


def test_a_failing_line_in_a_batch_leaves_nothing_of_that_line(store: GraphStore) -> None:
    refusing = _Refusing(store, "poison")
    mem = _memory(refusing, bulk_ingest_batch=10)
    items = [_trajectory(i) for i in range(6)]
    items[3] = _trajectory(7, content="poison")  # a new task text is not stored either
    items[3]["task"] = "slice a poisoned apple"
    with pytest.raises(StoreError):
        mem.ingest_many(items, bulk=True)
    poisoned = trajectory_key(Trajectory.model_validate(items[3]), "default")
    ids = [step_id(poisoned, i) for i in range(4)]
    assert store.get_nodes(ids) == [None] * 4
    assert store.get_node(query_id_for("default", "slice a poisoned apple")) is None
    # The lines before it are stored whole, as sequential ingest would have left them.
    assert sorted(q.attempts for q in mem.queries()) == [1, 1, 1]
    assert mem.stats().nodes["Utterance"] == 12
    refusing.poison = None
    reports = mem.ingest_many(items, bulk=True)
    assert [r.stored for r in reports] == [False] * 3 + [True] * 3


def test_a_writer_racing_the_batch_is_not_stored_twice(store: GraphStore) -> None:
    """Another writer ingests one of the batch's trajectories between the batch's reads
    and its write: the batch conflicts, is planned again, and finds it stored."""
    racing = _Refusing(store, poison="")
    mem = _memory(racing)
    other = _memory(store)
    items = [_trajectory(i) for i in range(6)]
    racing.before_write = lambda: other.ingest(items[4])
    reports = mem.ingest_many(items, bulk=True)
    assert [r.stored for r in reports] == [True] * 4 + [False, True]
    assert sorted(q.attempts for q in mem.queries()) == [1, 1, 2, 2]
    assert mem.stats().nodes["Utterance"] == 24


def test_bulk_jsonl_through_the_cli(tmp_path: Path) -> None:
    runs = tmp_path / "runs.jsonl"
    items = [_trajectory(i) for i in range(7)]
    items[6]["namespace"] = "lab"
    runs.write_text("\n".join(json.dumps(t) for t in items) + "\n", encoding="utf-8")
    store = tmp_path / "m.db"
    done = gmem("--store", store, "ingest", runs, "--bulk", "--json")
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert (data["ingested"], data["already_stored"]) == (7, 0)
    assert data["namespaces"] == {"default": 6, "lab": 1}
    again = gmem("--store", store, "ingest", runs, "--bulk")
    assert again.exit_code == 0 and "Ingested 0 trajectories" in again.stdout, again.output
    assert "7 already stored" in again.stdout


def test_a_batch_of_searches_finds_what_each_search_finds_alone(store: GraphStore) -> None:
    """A read batch of many vector searches (what bulk ingest sends) is scored together on
    the embedded store; each result must be the one the search gives on its own."""
    mem = _memory(store)
    mem.ingest_many([_trajectory(i) for i in range(8)], bulk=True)
    for i in range(5):
        mem.ingest_many([{**_trajectory(i), "task": f"wash plate {i}", "namespace": "lab"}])
    queries = mem.queries()
    vectors = {n.id: n.embedding for n in store.get_nodes([q.id for q in queries], True) if n}
    searches: list[Op] = [
        VectorSearch(NodeKind.QUERY, vec, k, space, exclude_ids=frozenset({qid}))
        for qid, vec in vectors.items()
        if vec is not None
        for k, space in ((2, "default"), (3, "lab"), (50, None), (2, "nowhere"))
    ]
    together = store.batch(searches)
    alone = [store.batch([op])[0] for op in searches]
    for a, b in zip(together, alone, strict=True):
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)
        # The same rows, except where scores tie (within float rounding) at the cut.
        cut = b[-1].score + 1e-5 if b else 0.0
        assert {h.id for h in a if h.score > cut} == {h.id for h in b if h.score > cut}
    assert any(len(hits) == 3 for hits in together) and any(not hits for hits in together)


def test_a_store_written_with_hashed_step_ids_is_not_ingested_twice(
    store: GraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before step ids kept a trajectory's utterances together, each was a hash of key and
    step number: trajectories stored then are recognised, in bulk and one by one."""
    items = [_trajectory(i) for i in range(6)]
    mem = _memory(store, bulk_ingest_batch=4)
    with monkeypatch.context() as old:
        old.setattr(gmem_bulk, "step_id", hashed_step_id)
        old.setattr(gmem_memory, "step_id", hashed_step_id)
        mem.ingest_many(items[:3], bulk=True)
        mem.ingest(items[3])
    before = _snapshot(mem.store)
    key = trajectory_key(Trajectory.model_validate(items[0]), "default")
    assert isinstance(store.get_node(hashed_step_id(key, 0)), Utterance)
    assert [r.stored for r in mem.ingest_many(items[:4], bulk=True)] == [False] * 4
    assert [mem.ingest(item).stored for item in items[:4]] == [False] * 4
    assert _snapshot(mem.store) == before
    assert [r.stored for r in mem.ingest_many(items, bulk=True)] == [False] * 4 + [True] * 2
    new = trajectory_key(Trajectory.model_validate(items[5]), "default")
    assert isinstance(store.get_node(step_id(new, 0)), Utterance)


def test_the_step_ids_of_a_trajectory_sort_together_in_step_order() -> None:
    keys = [trajectory_key(Trajectory.model_validate(_trajectory(i)), "default") for i in (0, 1)]
    ids = [step_id(key, n) for key in keys for n in (0, 1, 2, 10, 300)]
    assert sorted(ids[:5]) == ids[:5] and sorted(ids[5:]) == ids[5:]
    between = [i for i in sorted(ids) if min(ids[:5]) < i < max(ids[:5])]
    assert between == ids[1:4]  # no id of the other trajectory falls among them
    assert all(check_id(i) == i for i in ids)


def test_what_bulk_builds_unvalidated_equals_what_validation_builds() -> None:
    fields = {
        name: getattr(Utterance(query_id="b" * 32, step=3, agent="a", role="r", content="x"), name)
        for name in Utterance.model_fields
    }
    built, validated = trusted(Utterance, dict(fields)), Utterance(**fields)
    assert built == validated
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_fields_set == validated.model_fields_set
    changed = built.model_copy(update={"content": "y"})
    assert (changed.content, built.content) == ("y", "x")
    edge = attempts.edge(EdgeKind.SIMILAR_TO, "a" * 32, "b" * 32, {"score": 0.5})
    assert edge == Edge(kind=EdgeKind.SIMILAR_TO, src="a" * 32, dst="b" * 32, props={"score": 0.5})
    with pytest.raises(ValidationError):
        edge.src = "c" * 32  # type: ignore[misc]  # still frozen


def test_a_name_with_any_control_character_is_refused() -> None:
    controls = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cc"]
    for ch in controls:
        with pytest.raises(UserInputError, match="control characters"):
            check_name(f"agent{ch}1", "agent")
    for fine in ("planner", "actor\u00a01", "r\u200bx", "名前", "a\u2028b"):
        assert check_name(fine, "agent") == fine
