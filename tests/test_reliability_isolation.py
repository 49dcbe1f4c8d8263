"""Isolation and erasure as properties (issue 10, "Isolation"): on every backend, no read
path returns another namespace's data, and forgetting a namespace or a task removes it
from every tier, from vector search and from derived text.

Hypothesis draws the tasks: which namespace each goes to, its words, its outcome. Every
utterance carries a word that belongs to its namespace alone, so a leak is seen in
rendered prompts, not only in ids. One store serves all examples of a test, and each
example uses namespaces of its own, so the data of earlier examples is "another
namespace" too.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gmem.config import MemoryConfig
from gmem.embedding import HashingEmbedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from graph_store import GraphStore
from graph_store.model import Insight, Node, NodeKind

ROLES = ("planner", "actor", "critic")
WORDS = ["mug", "cup", "plate", "key", "drawer", "cabinet", "sink", "egg", "table", "lamp"]
VERBS = ["put", "clean", "heat", "find", "open"]
_example = itertools.count()

#: One task: (namespace index, verb, object, place, success).
TASK = st.tuples(
    st.integers(0, 2),
    st.sampled_from(VERBS),
    st.sampled_from(WORDS),
    st.sampled_from(WORDS),
    st.booleans(),
)
PROPERTY = settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _memory(store: GraphStore) -> Memory:
    # Recall as wide as it goes, so that a missing namespace filter would show.
    cfg = MemoryConfig(merge_every=0, min_relevance=0.0, insight_min_similarity=0.0)
    embedder = HashingEmbedder()
    return Memory(store, embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg)


def _fill(
    mem: Memory, tasks: list[tuple[int, str, str, str, bool]]
) -> tuple[list[str], dict[str, list[str]]]:
    """Store ``tasks`` in this example's namespaces; returns the namespaces and, per
    namespace, its marker word and task texts."""
    n = next(_example)
    spaces = [f"iso{n}-{i}" for i in range(3)]
    texts: dict[str, list[str]] = {ns: [] for ns in spaces}
    for space, verb, obj, place, success in tasks:
        ns = spaces[space]
        text = f"{verb} the {obj} in the {place}"
        marker = _marker(ns)
        with mem.task(text, ns) as t:
            t.recall("actor")
            t.record("p", "planner", f"{marker} plan: find the {obj} first")
            t.record("a", "actor", f"{marker} go to the {place}", action=f"go to {place} 1")
            t.record("c", "critic", f"{marker} that step was fine", observation="ok")
            t.finish(success=success)
        texts[ns].append(text)
    return spaces, texts


def _marker(ns: str) -> str:
    return "zq" + ns.replace("-", "x")  # one word, distinctive, never a task word


def _namespace_of(store: GraphStore, node_ids: list[str]) -> set[str]:
    return {n.namespace for n in store.get_nodes(node_ids) if n is not None}


def _read_paths_stay_inside(mem: Memory, ns: str, probes: list[str]) -> None:
    store = mem.store
    others = [_marker(o) for o in mem.namespaces() if o != ns]
    for text in probes:
        recall = mem.recall(text, ns)
        ids = [q.id for q in recall.queries] + [i.id for i in recall.insights]
        ids += [t.query_id for t in recall.trajectories]
        assert _namespace_of(store, ids) <= {ns}, f"recall in {ns} reached another namespace"
        for role in ROLES:
            prompt = recall.prompt(role)
            assert not [m for m in others if m in prompt], f"{role} prompt in {ns} leaked"
    for kind in NodeKind:
        assert {n.namespace for n in store.list_nodes(kind, ns)} <= {ns}
    assert {i.namespace for i in mem.insights(ns, include_retired=True)} <= {ns}
    assert {q.namespace for q in mem.queries(ns)} <= {ns}
    graph = mem.graph(ns)
    assert {n.namespace for n in graph.nodes} == {ns}
    inside = {n.id for n in graph.nodes}
    assert all(e.src in inside and e.dst in inside for e in graph.edges)
    counts = mem.stats(ns)
    assert sum(counts.nodes.values()) == len(graph.nodes)
    for q in mem.queries(ns):
        view = mem.show(q.id)
        steps = [u for attempt in view.attempts.values() for u in attempt]
        assert {u.namespace for u in steps} == {ns}
        assert {i.namespace for i in view.supports + view.contradicts} <= {ns}


def _everywhere(store: GraphStore) -> list[Node]:
    return [n for kind in NodeKind for n in store.list_nodes(kind)]


def _vector(mem: Memory, text: str) -> Any:
    return np.asarray(mem.embedder.embed([text])[0], dtype=np.float32)


@given(tasks=st.lists(TASK, min_size=2, max_size=5))
@PROPERTY
def test_no_read_path_returns_another_namespaces_data(
    store: GraphStore, tasks: list[tuple[int, str, str, str, bool]]
) -> None:
    mem = _memory(store)
    spaces, texts = _fill(mem, tasks)
    probes = sorted({t for ts in texts.values() for t in ts})[:4]
    for ns in spaces:
        if texts[ns]:
            _read_paths_stay_inside(mem, ns, probes)
        else:  # a namespace nobody wrote recalls nothing, whatever the text
            assert all(mem.recall(text, ns).is_empty for text in probes)


@given(tasks=st.lists(TASK, min_size=2, max_size=5), pick=st.integers(0, 4))
@PROPERTY
def test_forget_removes_a_namespace_and_a_task_everywhere(
    store: GraphStore, tasks: list[tuple[int, str, str, str, bool]], pick: int
) -> None:
    mem = _memory(store)
    spaces, texts = _fill(mem, tasks)
    used = [ns for ns in spaces if texts[ns]]
    gone, kept = used[0], used[1:]
    before = {ns: sorted(n.id for n in mem.graph(ns).nodes) for ns in kept}
    mem.forget_namespace(gone)
    assert gone not in mem.namespaces()
    assert not [n for n in _everywhere(store) if n.namespace == gone]
    for text in texts[gone]:  # no index still answers with it
        for kind in (NodeKind.QUERY, NodeKind.INSIGHT, NodeKind.UTTERANCE):
            hits = store.vector_search(kind, _vector(mem, text), 50)
            assert gone not in _namespace_of(store, [h.id for h in hits])
    for ns in kept:  # the others are untouched
        assert sorted(n.id for n in mem.graph(ns).nodes) == before[ns]
    if not kept:
        return
    ns = kept[0]
    queries = sorted(mem.queries(ns), key=lambda q: q.id)
    victim = queries[pick % len(queries)]
    trace = [u.id for steps in mem.show(victim.id).attempts.values() for u in steps]
    mem.forget_task(victim.id)
    assert mem.store.get_node(victim.id) is None
    assert mem.store.get_nodes(trace) == [None] * len(trace)
    assert victim.id not in [q.id for q in mem.recall(victim.text, ns).queries]
    left = [i for i in store.list_nodes(NodeKind.INSIGHT, ns) if isinstance(i, Insight)]
    derived = json.dumps([_derived_text(i) for i in left])
    assert victim.id not in derived  # no evidence or provenance names it any more
    assert {q.id for q in mem.queries(ns)} == {q.id for q in queries} - {victim.id}


def _derived_text(ins: Insight) -> dict[str, Any]:
    return {
        "text": ins.text,
        "supporting": ins.supporting,
        "contradicting": ins.contradicting,
        "provenance": [p.model_dump(mode="json") for p in ins.provenance],
    }
