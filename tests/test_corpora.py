"""The committed benchmark corpora: readable by gmem, complete per family, honest splits.

These read the committed files only; regenerating them needs the ScienceWorld simulator.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from benchmarks.corpora import (
    CONFUSABLE_GROUPS,
    DEMO_WORLD,
    SCIENCEWORLD,
    SIBLING_GROUPS,
    read_corpus,
    write_plain_jsonl,
)
from gmem.embedding import HashingEmbedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from gmem.trajectory import Trajectory, read_jsonl


def _family(t: Trajectory) -> str:
    family = t.metadata["family"]
    assert isinstance(family, str)
    return family


@pytest.fixture(scope="module")
def scienceworld() -> list[Trajectory]:
    return list(read_corpus(SCIENCEWORLD))


@pytest.fixture(scope="module")
def demo_world() -> list[Trajectory]:
    return list(read_corpus(DEMO_WORLD))


@pytest.mark.parametrize("path", [SCIENCEWORLD, DEMO_WORLD], ids=["scienceworld", "demo_world"])
def test_plain_jsonl_reads_with_gmems_reader(path: Path, tmp_path: Path) -> None:
    plain = write_plain_jsonl(path, tmp_path / "corpus.jsonl")
    parsed = [item for _, item in read_jsonl(plain)]
    assert len(parsed) == len(list(read_corpus(path))) > 0
    assert all(isinstance(item, Trajectory) for item in parsed)


@pytest.mark.parametrize("path", [SCIENCEWORLD, DEMO_WORLD], ids=["scienceworld", "demo_world"])
def test_a_slice_ingests_through_gmem_ingest_jsonl(path: Path, tmp_path: Path) -> None:
    plain = write_plain_jsonl(path, tmp_path / "corpus.jsonl")
    # Four trajectories with distinct task texts (variations can share a description).
    picked: dict[str, str] = {}
    for raw in plain.read_text(encoding="utf-8").splitlines(True):
        picked.setdefault(json.loads(raw)["task"], raw)
        if len(picked) == 4:
            break
    head = tmp_path / "head.jsonl"
    head.write_text("".join(picked.values()), encoding="utf-8")
    steps = sum(len(t.steps) for _, t in read_jsonl(head) if isinstance(t, Trajectory))
    with Memory(embedder=HashingEmbedder(), llm=HeuristicLLM(HashingEmbedder())) as memory:
        result = memory.ingest_jsonl(head, namespace="corpus")
        assert result.ingested == 4 and not result.skipped
        counts = memory.stats()
        assert counts.nodes["Query"] == 4 and counts.nodes["Utterance"] == steps


@pytest.mark.parametrize("name", ["scienceworld", "demo_world"])
def test_every_family_has_train_successes_failures_and_test_probes(
    name: str, request: pytest.FixtureRequest
) -> None:
    corpus: list[Trajectory] = request.getfixturevalue(name)
    kinds: dict[str, set[tuple[object, bool | None]]] = defaultdict(set)
    for t in corpus:
        assert t.metadata["source"] == name
        kinds[_family(t)].add((t.metadata["split"], t.success))
    assert len(kinds) >= 5
    for family, seen in kinds.items():
        assert ("train", True) in seen, family
        assert ("train", False) in seen, family
        assert ("test", True) in seen, family


def test_scienceworld_covers_all_task_types_and_the_groups(scienceworld: list[Trajectory]) -> None:
    families = {_family(t) for t in scienceworld}
    assert len(families) == 30
    for groups in (CONFUSABLE_GROUPS, SIBLING_GROUPS):
        for group, members in groups.items():
            assert set(members) <= families, group


def test_scienceworld_scores_come_from_the_simulator_steps(scienceworld: list[Trajectory]) -> None:
    for t in scienceworld:
        actor = [s for s in t.steps if s.role == "actor"]
        final = actor[-1].metadata["score"]
        assert t.metadata["final_score"] == final
        # The reward of each step is the change in the simulator's score.
        assert sum(s.reward or 0.0 for s in actor) == final
        if t.success:
            assert final == 100 and t.score == 1.0
            assert t.metadata["kind"] == "gold"
        else:
            assert isinstance(final, int) and final < 100
            assert t.metadata["kind"] == "deviation" and t.metadata["split"] == "train"
        assert all(s.observation for s in actor)


def test_scienceworld_plan_is_the_task_description_only(scienceworld: list[Trajectory]) -> None:
    for t in scienceworld:
        planner = t.steps[0]
        assert planner.role == "planner" and planner.content == t.task
        assert all(s.role == "actor" for s in t.steps[1:])


def test_scienceworld_train_and_test_variations_do_not_overlap(
    scienceworld: list[Trajectory],
) -> None:
    variations: dict[tuple[str, object], set[object]] = defaultdict(set)
    for t in scienceworld:
        variations[(_family(t), t.metadata["split"])].add(t.metadata["variation"])
    for (family, split), found in variations.items():
        if split == "train":
            assert not found & variations[(family, "test")], family
    train_texts = {t.task for t in scienceworld if t.metadata["split"] == "train"}
    for t in scienceworld:
        if t.metadata["split"] == "test":
            assert t.metadata["text_in_train"] == (t.task in train_texts)


def test_demo_world_test_instances_are_not_train_instances(demo_world: list[Trajectory]) -> None:
    ids = defaultdict(set)
    for t in demo_world:
        ids[t.metadata["split"]].add(t.metadata["task_id"])
        if t.metadata["split"] == "test":
            assert isinstance(t.metadata["text_in_train"], bool)
    assert ids["train"] and ids["test"] and not ids["train"] & ids["test"]
