"""Retrieval, per-role memory and evolution of the engine, with the heuristic reasoner.

Assertions name which items are retrieved and by which path, and what evolution did to
scores and supporting sets.
"""

from __future__ import annotations

import warnings

import pytest

from gmem.errors import (
    TaskStateError,
    TrajectoryError,
    UnfinishedTaskWarning,
    UnknownRoleError,
    UserInputError,
)
from gmem.evolution import EvolutionReport
from gmem.memory import Memory
from graph_store.model import (
    Edge,
    EdgeKind,
    Insight,
    InsightRule,
    Outcome,
    Provenance,
    QueryNode,
    RuleEvidence,
    query_id_for,
)

CLEAN = [
    "go to sinkbasin 1",
    "clean {o} with sinkbasin 1",
    "go to cabinet 2",
    "put {o} in cabinet 2",
]
HEAT = [
    "go to microwave 1",
    "heat {o} with microwave 1",
    "go to countertop 1",
    "put {o} in countertop 1",
]


def run(
    mem: Memory,
    task: str,
    actions: list[str],
    success: bool,
    obj: str = "mug",
    recall_roles: tuple[str, ...] = (),
    ns: str = "default",
) -> EvolutionReport:
    with mem.task(task, namespace=ns, roles=["planner", "actor", "critic"]) as t:
        for role in recall_roles:
            t.recall(role)
        plan = t.record("p1", "planner", f"Plan: {'; '.join(a.format(o=obj) for a in actions)}")
        prev = plan
        for a in actions:
            act = a.format(o=obj)
            prev = t.record(
                "a1",
                "actor",
                f"I will {act}",
                action=act,
                observation=f"You {act}.",
                replies_to=[prev],
            )
        t.record("c1", "critic", "done" if success else "the goal is not met", replies_to=[prev])
        return t.finish(success=success)


# ---- recording and the query tier ------------------------------------------------------
def test_finish_stores_query_trace_and_edges(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory()
    report = run(mem, "clean the mug and put it in the cabinet", CLEAN, True)
    q = mem.store.get_node(report.query_id)
    assert isinstance(q, QueryNode) and q.outcome == Outcome.SUCCESS and q.attempts == 1
    view = mem.show(report.query_id)
    steps = view.attempts[1]
    assert [u.role for u in steps] == ["planner"] + ["actor"] * 4 + ["critic"]
    assert all(u.tokens > 0 for u in steps)
    counts = mem.stats()
    assert counts.edges["HAS_TRACE"] == 6 and counts.edges["NEXT"] == 5
    assert counts.edges["REPLIES_TO"] == 5
    assert report.key_steps == sum(u.key_step for u in steps) >= 4


def test_same_task_twice_is_one_query_with_two_attempts(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory()
    first = run(mem, "Clean the mug and put it in the cabinet", CLEAN, False)
    second = run(mem, "clean the  mug and put it in the cabinet ", CLEAN, True)
    assert first.query_id == second.query_id and second.attempt == 2 and not second.new_query
    q = mem.store.get_node(first.query_id)
    assert isinstance(q, QueryNode)
    assert (q.attempts, q.successes, q.failures) == (2, 1, 1)
    assert q.attempt_outcomes == [Outcome.FAILURE, Outcome.SUCCESS]
    assert mem.stats().nodes["Query"] == 1
    assert sorted(mem.show(q.id).attempts) == [1, 2]


# ---- retrieval -------------------------------------------------------------------------
def test_recall_seeds_by_similarity_and_keeps_successes_first(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(failure_k=1, success_k=2)
    ok = run(mem, "clean the mug and put it in the cabinet", CLEAN, True)
    bad = run(mem, "clean the cup and put it in the cabinet", CLEAN[2:], False, obj="cup")
    run(mem, "heat the potato and put it on the countertop", HEAT, True, obj="potato")
    recall = mem.recall("clean the plate and put it in the cabinet")
    kept = [q for q in recall.queries if q.kept]
    assert {q.id for q in kept} >= {ok.query_id, bad.query_id}
    assert recall.trajectories[0].query_id == ok.query_id
    assert recall.trajectories[0].outcome == Outcome.SUCCESS
    assert recall.trajectories[-1].outcome == Outcome.FAILURE
    seed = next(q for q in recall.queries if q.id == ok.query_id)
    assert seed.path[0].how == "seed" and seed.hop == 0 and seed.similarity > 0.6
    heat = [q for q in recall.queries if "potato" in q.task]
    assert all(not q.kept for q in heat)


def test_failure_k_zero_shows_no_failed_trajectories(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(failure_k=0)
    run(mem, "clean the cup and put it in the cabinet", CLEAN[2:], False, obj="cup")
    recall = mem.recall("clean the plate and put it in the cabinet")
    assert recall.trajectories == []
    assert "Failed attempt" not in recall.prompt("actor")


def test_hop_expansion_reaches_queries_through_used_memory(make_memory) -> None:  # type: ignore[no-untyped-def]
    from graph_store import Edge

    for hops in (1, 0):
        mem = make_memory(seed_k=1, hops=hops, similar_edge_k=0, min_relevance=0.0)
        far = run(
            mem,
            "water the basil plant on the windowsill",
            ["go to windowsill 1", "water basil with wateringcan 1"],
            True,
            obj="basil",
        )
        near = run(mem, "clean the mug and put it in the cabinet", CLEAN, True)
        # The near task was solved with the far task's memory.
        mem.store.put_edges(
            [Edge(kind=EdgeKind.USED_MEMORY_OF, src=near.query_id, dst=far.query_id)]
        )
        recall = mem.recall("clean the plate and put it in the cabinet")
        by_id = {q.id: q for q in recall.queries}
        assert by_id[near.query_id].hop == 0
        if hops == 0:
            assert far.query_id not in by_id
            continue
        assert by_id[far.query_id].hop == 1
        step = by_id[far.query_id].path[-1]
        assert (step.how, step.edge, step.source) == (
            "edge",
            EdgeKind.USED_MEMORY_OF,
            near.query_id,
        )
        assert any("USED_MEMORY_OF" in line for line in recall.explain())


def test_upward_returns_insights_supported_by_retrieved_queries(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory()
    for obj in ("mug", "cup", "bowl"):
        run(mem, f"clean the {obj} and put it in the cabinet", CLEAN, True, obj=obj)
    run(mem, "clean the plate and put it in the cabinet", CLEAN[2:], False, obj="plate")
    recall = mem.recall("clean the spoon and put it in the cabinet")
    assert recall.insights, "no insight reached"
    top = recall.insights[0]
    assert top.support_overlap >= 1
    assert top.path[-1].edge in (EdgeKind.SUPPORTS, EdgeKind.CONTRADICTS)
    stored = mem.store.get_node(top.id)
    assert isinstance(stored, Insight)
    kept_or_ranked = {q.id for q in recall.queries}
    assert set(stored.supporting) & kept_or_ranked


def test_retired_insights_are_not_recalled(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory()
    run(mem, "clean the mug and put it in the cabinet", CLEAN, True)
    run(mem, "clean the cup and put it in the cabinet", CLEAN, True, obj="cup")
    run(mem, "clean the plate and put it in the cabinet", CLEAN[2:], False, obj="plate")
    recall = mem.recall("clean the bowl and put it in the cabinet")
    ids = [i.id for i in recall.insights]
    assert ids
    for iid in ids:
        node = mem.store.get_node(iid)
        assert isinstance(node, Insight)
        mem.store.put_nodes([node.model_copy(update={"retired": True})])
    assert mem.recall("clean the bowl and put it in the cabinet").insights == []


def test_downward_shows_key_steps_of_the_matching_attempt(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(failure_k=0)
    task = "clean the mug and put it in the cabinet"
    with mem.task(task) as t:
        t.record("a1", "actor", "look", action="look", observation="Nothing happens.")
        t.record(
            "a1",
            "actor",
            "go to sinkbasin 1",
            action="go to sinkbasin 1",
            observation="You arrive.",
        )
        t.record(
            "a1",
            "actor",
            "go to sinkbasin 1",
            action="go to sinkbasin 1",
            observation="You arrive.",
        )
        t.record(
            "a1",
            "actor",
            "clean mug",
            action="clean mug with sinkbasin 1",
            observation="You clean the mug.",
        )
        t.record(
            "a1", "actor", "put", action="put mug in cabinet 2", observation="Done.", reward=1.0
        )
        t.finish(success=True)
    run(mem, task, CLEAN[:1], False)  # a later failed attempt at the same task
    recall = mem.recall("clean the cup and put it in the cabinet")
    (traj,) = recall.trajectories
    assert traj.attempt == 1 and traj.outcome == Outcome.SUCCESS
    actions = [s.action for s in traj.steps]
    assert actions == ["go to sinkbasin 1", "clean mug with sinkbasin 1", "put mug in cabinet 2"]
    assert traj.total_steps == 5


# ---- per-role memory -------------------------------------------------------------------
def test_role_prompts_respect_budget_and_role_filters(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(role_token_budget=120)
    for obj in ("mug", "cup", "bowl", "plate"):
        run(mem, f"clean the {obj} and put it in the cabinet", CLEAN, True, obj=obj)
    critic_only = Insight(
        text="the critic should check the cabinet door is closed",
        roles=["critic"],
        embedding=mem.embedder.embed(["critic cabinet"])[0],
    )
    mem.store.put_nodes([critic_only])
    recall = mem.recall("clean the spoon and put it in the cabinet")
    for role in ("planner", "actor", "critic"):
        rm = recall.for_role(role)
        assert rm.tokens <= 120
        assert rm.tokens == mem.tokens.count(rm.text)
    assert all("critic" in i.roles or not i.roles for i in recall.for_role("critic").insights)
    assert critic_only.id not in {i.id for i in recall.for_role("actor").insights}
    assert "Memory for the actor" in recall.prompt("actor")


# ---- evolution of insights -------------------------------------------------------------
def test_new_insights_carry_typed_rules_and_their_evidence(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(merge_every=0)
    goods = [
        run(mem, f"clean the {obj} and put it in the cabinet", CLEAN, True, obj=obj)
        for obj in ("mug", "cup")
    ]
    assert not goods[0].added, "one success alone shows no regularity"
    wrong = ["heat {o} with microwave 1", *CLEAN[2:]]
    bad = run(mem, "clean the plate and put it in the cabinet", wrong, False, obj="plate")
    assert bad.added, "a failure that skipped what every success did must yield an insight"
    ins = mem.store.get_node(bad.added[0])
    assert isinstance(ins, Insight) and ins.rule is not None
    assert ins.rule.kind == "require"
    assert "clean <obj> with sinkbasin" in ins.rule.actions
    assert "clean <obj> with sinkbasin" in ins.rule.scope
    assert ins.rule.evidence == RuleEvidence(
        successes_with=2, successes=2, failures_with=0, failures=1
    )
    # Support is evidence: the successes that did it; the failure skipped it, so it shows
    # nothing either way.
    assert set(ins.supporting) == {g.query_id for g in goods}
    assert bad.query_id not in ins.supporting + ins.contradicting
    assert ins.provenance[0].operation == "add" and ins.provenance[0].query_id == bad.query_id
    edges = mem.store.get_edges([ins.id], [EdgeKind.SUPPORTS], "in")
    assert {e.src for e in edges} == {g.query_id for g in goods}
    # Once several successes and failures agree, a step only failures took (heating) yields
    # an avoid rule that the failures which took it support.
    run(mem, "clean the spoon and put it in the cabinet", CLEAN, True, obj="spoon")
    worse = run(mem, "clean the bowl and put it in the cabinet", wrong, False, obj="bowl")
    assert not any(
        (n := mem.store.get_node(i))
        and isinstance(n, Insight)
        and n.rule
        and n.rule.kind == "avoid"
        for i in worse.added
    ), "two failures are not yet enough for an avoid rule"
    worst = run(mem, "clean the pan and put it in the cabinet", wrong, False, obj="pan")
    rules = [mem.store.get_node(i) for i in worst.added]
    avoid = [r for r in rules if isinstance(r, Insight) and r.rule and r.rule.kind == "avoid"]
    assert avoid and avoid[0].rule is not None
    assert avoid[0].rule.actions == ["heat <obj> with microwave"]
    assert set(avoid[0].supporting) == {bad.query_id, worse.query_id, worst.query_id}


def _clean_rule_insight(mem: Memory, score: float) -> Insight:
    text = "Clean the object at the sinkbasin before putting it in the cabinet."
    ins = Insight(
        text=text,
        score=score,
        roles=["actor"],
        rule=InsightRule(
            kind="require",
            actions=["clean <obj> with sinkbasin"],
            scope=["go to sinkbasin", "clean <obj> with sinkbasin", "go to <obj>"],
        ),
        embedding=mem.embedder.embed([text])[0],
    )
    mem.store.put_nodes([ins])
    return ins


def _score(mem: Memory, iid: str) -> float:
    node = mem.store.get_node(iid)
    assert isinstance(node, Insight)
    return node.score


def test_an_insight_shown_where_tasks_succeed_anyway_gains_nothing(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(merge_every=0, insight_initial_score=2.0)
    ins = _clean_rule_insight(mem, 2.0)
    for obj in ("mug", "cup", "bowl"):  # the domain's history: every attempt succeeds
        run(mem, f"clean the {obj} and put it in the cabinet", CLEAN, True, obj=obj)
    for obj in ("fork", "knife", "spoon"):
        report = run(
            mem,
            f"clean the {obj} and put it in the cabinet",
            CLEAN,
            True,
            obj=obj,
            recall_roles=("actor",),
        )
        assert ins.id not in report.rewarded
        assert _score(mem, ins.id) == pytest.approx(2.0)
    shown = mem.recall("clean the plate and put it in the cabinet").for_role("actor")
    assert ins.id in shown.rendered_insights, "the insight must have been shown all along"


def test_credit_is_the_advantage_over_similar_tasks_and_retires_at_zero(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(merge_every=0, insight_credit=1.0, credit_min_baseline=3)
    ins = _clean_rule_insight(mem, 1.0)
    run(mem, "clean the mug and put it in the cabinet", CLEAN, True)
    for obj in ("cup", "bowl", "plate"):  # a hard domain: one success in four
        run(mem, f"clean the {obj} and put it in the cabinet", CLEAN[2:], False, obj=obj)
    win = run(
        mem,
        "clean the fork and put it in the cabinet",
        CLEAN,
        True,
        "fork",
        recall_roles=("actor",),
    )
    assert ins.id in win.rewarded
    assert _score(mem, ins.id) == pytest.approx(1.0 + (1 - 1 / 4))
    lose = run(mem, "clean the knife and put it in the cabinet", CLEAN, False, "knife", ("actor",))
    assert ins.id in lose.penalized
    assert _score(mem, ins.id) == pytest.approx(1.75 - 2 / 5)
    node = mem.store.get_node(ins.id)
    assert isinstance(node, Insight) and node.provenance[-1].operation == "penalize"
    # Driven to zero (bounded below), it retires, stays stored and leaves recall.
    mem.store.put_nodes([node.model_copy(update={"score": 0.1})])
    gone = run(mem, "clean the spoon and put it in the cabinet", CLEAN, False, "spoon", ("actor",))
    assert ins.id in gone.retired
    node = mem.store.get_node(ins.id)
    assert isinstance(node, Insight) and node.retired and node.score == 0.0
    assert node.provenance[-1].operation == "retire"
    assert ins.id not in {i.id for i in mem.insights()}
    assert ins.id in {i.id for i in mem.insights(include_retired=True)}


def test_support_needs_evidence_not_display(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(merge_every=0)
    ins = _clean_rule_insight(mem, 2.0)
    run(mem, "clean the mug and put it in the cabinet", CLEAN, True)
    # Shown, succeeded, but its trajectory never cleaned anything: no support.
    skipped = ["go to sinkbasin 1", "go to cabinet 2", "put {o} in cabinet 2"]
    shown = run(mem, "clean the cup and put it in the cabinet", skipped, True, "cup", ("actor",))
    node = mem.store.get_node(ins.id)
    assert isinstance(node, Insight)
    assert shown.query_id not in node.supporting
    assert shown.query_id in node.contradicting  # a success without the required step
    # Never shown, but its own trajectory shows the pattern: it supports the insight.
    unseen = run(mem, "clean the bowl and put it in the cabinet", CLEAN, True, "bowl")
    node = mem.store.get_node(ins.id)
    assert isinstance(node, Insight) and unseen.query_id in node.supporting
    # Outside the scope (another procedure), an attempt says nothing about the rule.
    other = run(mem, "heat the potato and put it on the countertop", HEAT, True, "potato")
    node = mem.store.get_node(ins.id)
    assert isinstance(node, Insight)
    assert other.query_id not in node.supporting + node.contradicting


def test_an_insight_is_not_shown_outside_its_procedure(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(merge_every=0)
    ins = _clean_rule_insight(mem, 2.0)
    for obj in ("mug", "cup"):
        run(mem, f"clean the {obj} and put it in the cabinet", CLEAN, True, obj=obj)
        run(mem, f"heat the {obj} and put it on the countertop", HEAT, True, obj=obj)
    clean = mem.recall("clean the bowl and put it in the cabinet")
    assert ins.id in {i.id for i in clean.insights}
    heat = mem.recall("heat the bowl and put it on the countertop", namespace="default")
    shown = {t.query_id for t in heat.trajectories}
    assert shown and all("heat" in t.task for t in heat.trajectories)
    assert ins.id not in {i.id for i in heat.insights}


def test_used_queries_and_related_insights_are_linked(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory()
    a = run(mem, "clean the mug and put it in the cabinet", CLEAN, True)
    run(mem, "clean the cup and put it in the cabinet", CLEAN[2:], False, obj="cup")
    c = run(
        mem,
        "clean the bowl and put it in the cabinet",
        CLEAN,
        True,
        obj="bowl",
        recall_roles=("planner", "actor"),
    )
    used = {e.dst for e in mem.store.get_edges([c.query_id], [EdgeKind.USED_MEMORY_OF])}
    assert a.query_id in used
    if len(c.rewarded) >= 2:
        assert c.related_edges >= 1
        rel = mem.store.get_edges(c.rewarded, [EdgeKind.RELATED_TO], "both")
        assert all(e.props["query_id"] == c.query_id for e in rel)


def test_near_duplicate_insights_merge_with_provenance(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(merge_every=0, merge_similarity=0.9)
    texts = [
        "Clean the object at the sink before putting it in the cabinet.",
        "Clean the object at the sink before you put it in the cabinet.",
        "Heat food in the microwave before placing it on the countertop.",
    ]
    nodes = [
        Insight(text=t, score=s, embedding=mem.embedder.embed([t])[0])
        for t, s in zip(texts, (2.0, 3.0, 2.0), strict=True)
    ]
    mem.store.put_nodes(nodes)
    merged = mem.merge_insights()
    assert len(merged) == 1
    keep, sources = merged[0]
    assert keep == nodes[1].id and sources == [nodes[0].id]
    gone = mem.store.get_node(nodes[0].id)
    assert isinstance(gone, Insight) and gone.retired
    assert gone.provenance[-1].operation == "merge" and keep in gone.provenance[-1].detail
    survivor = mem.store.get_node(keep)
    assert isinstance(survivor, Insight) and not survivor.retired
    assert nodes[0].id in survivor.provenance[-1].detail
    assert {i.id for i in mem.insights()} == {nodes[1].id, nodes[2].id}


def test_forget_task_cleans_insight_evidence(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory()
    a = run(mem, "clean the mug and put it in the cabinet", CLEAN, True)
    b = run(mem, "clean the cup and put it in the cabinet", CLEAN[2:], False, obj="cup")
    removed = mem.forget_task(b.query_id)
    assert removed.nodes == 1 + 4
    for ins in mem.insights(include_retired=True):
        assert b.query_id not in ins.supporting + ins.contradicting
    assert mem.store.get_node(a.query_id) is not None


def test_namespaces_are_isolated(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory()
    run(mem, "clean the mug and put it in the cabinet", CLEAN, True, ns="team-a")
    assert mem.recall("clean the cup and put it in the cabinet", namespace="team-b").is_empty
    assert not mem.recall("clean the cup and put it in the cabinet", namespace="team-a").is_empty


# ---- bad input leaves the store unchanged -----------------------------------------------
def test_task_misuse_raises_clear_errors_and_writes_nothing(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory()
    run(mem, "clean the mug and put it in the cabinet", CLEAN, True)
    before = mem.stats()
    with pytest.raises(UserInputError, match="must not be empty"):
        mem.task("   ")
    t = mem.task("heat the potato", roles=["actor"])
    with pytest.raises(UnknownRoleError, match="unknown role 'cook'"):
        t.record("x", "cook", "hello")
    with pytest.raises(UnknownRoleError):
        t.recall("cook")
    with pytest.raises(TrajectoryError, match="empty trajectory"):
        t.finish(success=True)
    other = mem.task("another task", roles=["actor"])
    foreign = other.record("a", "actor", "hi")
    with pytest.raises(TrajectoryError, match="not part of this task"):
        t.record("a", "actor", "reply", replies_to=[foreign])
    with pytest.raises(UserInputError, match="score"):
        t.record("a", "actor", "x") and t.finish(success=True, score=1.5)
    assert mem.stats() == before
    t.finish(success=True)
    with pytest.raises(TaskStateError, match="already finished"):
        t.finish(success=True)
    with pytest.raises(TaskStateError, match="already finished"):
        t.record("a", "actor", "late")
    after = mem.stats()
    assert after.nodes["Query"] == before.nodes["Query"] + 1


def test_exception_inside_task_block_records_a_failure(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory()
    with pytest.raises(RuntimeError), mem.task("clean the mug") as t:
        t.record("a", "actor", "go to sinkbasin 1", action="go to sinkbasin 1")
        raise RuntimeError("tool crashed")
    q = mem.store.get_node(query_id_for("default", "clean the mug"))
    assert isinstance(q, QueryNode) and q.outcome == Outcome.FAILURE
    assert q.metadata["error"] == "RuntimeError"  # the type only: the text may hold secrets


def test_task_left_without_finish_warns_by_name_and_stores_nothing(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory()
    unfinished = "'wash the plate' ended without finish"
    with pytest.warns(UnfinishedTaskWarning, match=unfinished), mem.task("wash the plate") as t:
        t.record("a", "actor", "go to sinkbasin 1", action="go to sinkbasin 1")
    assert mem.store.get_node(query_id_for("default", "wash the plate")) is None
    with warnings.catch_warnings():  # finished, or nothing recorded: nothing to say
        warnings.simplefilter("error")
        with mem.task("wash the plate") as t:
            t.recall("actor")
        with mem.task("wash the plate") as t:
            t.record("a", "actor", "go to sinkbasin 1")
            t.finish(success=None)


def test_async_twins(make_memory) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    mem = make_memory()

    async def go() -> None:
        async with mem.task("clean the mug and put it in the cabinet", roles=["actor"]) as t:
            await t.arecall("actor")
            await t.arecord("a", "actor", "go to sinkbasin 1", action="go to sinkbasin 1")
            report = await t.afinish(success=True)
        assert report.attempt == 1
        recall = await mem.arecall("clean the cup and put it in the cabinet")
        assert recall.queries[0].id == report.query_id
        rep2 = await mem.aingest(
            {
                "task": "t2",
                "success": False,
                "steps": [{"agent": "a", "role": "actor", "content": "x"}],
            }
        )
        assert rep2.outcome == Outcome.FAILURE

    asyncio.run(go())


# ---- what reaches the prompt, and what is credited ---------------------------------------
def _store_snapshot(mem: Memory) -> tuple[object, list[dict[str, object]]]:
    nodes = [
        n.props()
        for kind in ("Query", "Utterance", "Insight")
        for n in mem.store.list_nodes(kind, None)  # type: ignore[arg-type]
    ]
    return mem.stats(), sorted(nodes, key=lambda p: str(p["id"]))


def test_recall_without_credit_changes_nothing_in_the_store(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(merge_every=0)
    for obj in ("mug", "cup", "bowl"):
        run(mem, f"clean the {obj} and put it in the cabinet", CLEAN, True, obj=obj)
    run(mem, "clean the plate and put it in the cabinet", CLEAN[2:], False, obj="plate")
    probe = mem.task("clean the fork and put it in the cabinet", roles=["actor"])
    shown = probe.recall("actor", credit=False)
    assert shown.rendered_insights and shown.rendered_trajectories
    before = _store_snapshot(mem)
    # The probe finishes (its own query is new), yet nothing it read may be credited.
    probe.record("a1", "actor", "go to sinkbasin 1", action="go to sinkbasin 1")
    report = probe.finish(success=True)
    assert report.used_memory_edges == 0
    assert not report.rewarded and not report.penalized
    assert not mem.store.get_edges([report.query_id], [EdgeKind.USED_MEMORY_OF], "out")
    # Reading alone, with a task never finished, leaves the store byte-for-byte as it was.
    before = _store_snapshot(mem)
    other = mem.task("clean the spoon and put it in the cabinet", roles=["actor"])
    other.recall("actor", credit=False)
    mem.recall("clean the spoon and put it in the cabinet").prompt("actor")
    assert _store_snapshot(mem) == before


def test_only_rendered_items_are_used(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(role_token_budget=60, merge_every=0)
    for obj in ("mug", "cup", "bowl"):
        run(mem, f"clean the {obj} and put it in the cabinet", CLEAN, True, obj=obj)
    recall = mem.recall("clean the fork and put it in the cabinet")
    rm = recall.for_role("actor")
    assert rm.tokens <= 60
    offered = {t.query_id for t in rm.trajectories}
    assert set(rm.rendered_trajectories) | set(rm.cut_trajectories) == offered
    assert set(rm.rendered_insights) | set(rm.cut_insights) == {i.id for i in rm.insights}
    assert rm.cut_trajectories or rm.cut_insights, "a 60-token budget must cut something"
    for qid in rm.cut_trajectories:
        task = next(t.task for t in rm.trajectories if t.query_id == qid)
        assert task not in rm.text
    report = run(
        mem,
        "clean the fork and put it in the cabinet",
        CLEAN,
        True,
        "fork",
        recall_roles=("actor",),
    )
    used = {e.dst for e in mem.store.get_edges([report.query_id], [EdgeKind.USED_MEMORY_OF])}
    assert used == set(rm.rendered_trajectories)


def test_budget_never_leaves_a_trajectory_header_without_steps(make_memory) -> None:  # type: ignore[no-untyped-def]
    for budget in (50, 70, 90, 120, 160):
        mem = make_memory(role_token_budget=budget, insight_k=0)
        for obj in ("mug", "cup", "bowl"):
            run(mem, f"clean the {obj} and put it in the cabinet", CLEAN, True, obj=obj)
        rm = mem.recall("clean the fork and put it in the cabinet").for_role("actor")
        lines = rm.text.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("Successful attempt") or line.startswith("Failed attempt"):
                assert i + 1 < len(lines) and lines[i + 1].startswith("  "), rm.text
        assert rm.tokens <= budget


def test_a_message_that_restates_its_action_is_rendered_once(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(insight_k=0)
    with mem.task("heat the egg and put it on the countertop") as t:
        t.record("a1", "actor", "go to stoveburner 2", action="go to stoveburner 2")
        t.record(
            "a1", "actor", "heat egg 1 with stoveburner 2", action="heat egg 1 with stoveburner 2"
        )
        t.finish(success=True)
    text = mem.recall("heat the egg and put it on the countertop").prompt("actor")
    assert text.count("go to stoveburner 2") == 1
    assert "[action: go to stoveburner 2]" in text


def test_a_failure_at_relevance_one_does_not_hide_a_relevant_success(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(success_k=2, failure_k=1)
    # Relevant (above min_relevance) but further than the margin below the failure.
    ok = run(mem, "rinse a mug at the sink, then store it in cabinet 2", CLEAN, True)
    bad = run(mem, "clean the cup and put it in the cabinet", CLEAN[2:], False, obj="cup")
    recall = mem.recall("clean the cup and put it in the cabinet")
    by_id = {q.id: q for q in recall.queries}
    assert by_id[bad.query_id].relevance == pytest.approx(1.0, abs=1e-4)
    assert by_id[ok.query_id].relevance < 1.0 - mem.config.relevance_margin
    assert by_id[ok.query_id].relevance >= mem.config.min_relevance
    assert {t.query_id for t in recall.trajectories} == {ok.query_id, bad.query_id}
    assert recall.trajectories[0].query_id == ok.query_id


def test_ingest_keeps_used_memory_edges_of_a_replay(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory()
    first = run(mem, "clean the mug and put it in the cabinet", CLEAN, True)
    step = {"agent": "a", "role": "actor", "content": "go", "action": "go to sinkbasin 1"}
    replay = mem.ingest(
        {
            "task": "clean the cup and put it in the cabinet",
            "success": True,
            "steps": [step],
            "used_queries": ["clean the mug and put it in the cabinet"],
        }
    )
    third = mem.ingest(
        {"task": "clean the bowl", "success": False, "steps": [step]},
        used_queries=[first.query_id, replay.query_id, "a task never stored"],
    )
    used = {e.dst for e in mem.store.get_edges([replay.query_id], [EdgeKind.USED_MEMORY_OF])}
    assert used == {first.query_id}
    used = {e.dst for e in mem.store.get_edges([third.query_id], [EdgeKind.USED_MEMORY_OF])}
    assert used == {first.query_id, replay.query_id}
    assert not replay.rewarded and not third.penalized


def test_a_model_written_rule_is_validated_against_the_procedures(make_memory) -> None:  # type: ignore[no-untyped-def]
    from gmem.llm import HeuristicLLM
    from gmem.llm.protocol import InsightOp, InsightRequest, InsightResult, RuleView

    class Writer(HeuristicLLM):
        """Answers derive_insights as a model would: its own sentence and rule."""

        def derive_insights(self, request: InsightRequest) -> InsightResult:
            return InsightResult(
                operations=[
                    InsightOp(
                        op="add",
                        text="Always clean it at the sink first.",
                        rule=RuleView(kind="require", actions=["clean <obj> with sinkbasin"]),
                    ),
                    InsightOp(
                        op="add",
                        text="Teleport to the cabinet.",
                        rule=RuleView(kind="require", actions=["teleport to <obj>"]),
                    ),
                ]
            )

    mem = make_memory(merge_every=0)
    mem._evolver.llm = Writer(mem.embedder, mem.config)
    run(mem, "clean the mug and put it in the cabinet", CLEAN, True)
    report = run(mem, "clean the cup and put it in the cabinet", CLEAN, True, obj="cup")
    typed, invented = (mem.store.get_node(i) for i in report.added[-2:])
    assert isinstance(typed, Insight) and typed.rule is not None
    assert typed.text == "Always clean it at the sink first."
    assert (typed.rule.kind, typed.rule.actions) == ("require", ["clean <obj> with sinkbasin"])
    assert "clean <obj> with sinkbasin" in typed.rule.scope
    assert report.query_id in typed.supporting
    # An action the trajectories never took is not a rule: the lesson is kept as a note.
    assert isinstance(invented, Insight) and invented.rule is not None
    assert invented.rule.kind == "note" and invented.rule.actions == []
    assert invented.rule.scope == typed.rule.scope


def test_the_maintenance_pass_decays_unused_scores_and_bounds_live_insights(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(
        merge_every=0, insight_initial_score=2.0, insight_decay=0.5, max_live_insights=2
    )
    texts = ["Rinse the mug first.", "Heat the egg in the microwave.", "Look under the lamp."]
    nodes = [
        Insight(text=t, score=s, embedding=mem.embedder.embed([t])[0])
        for t, s in zip(texts, (6.0, 1.0, 3.0), strict=True)
    ]
    mem.store.put_nodes(nodes)
    mem.merge_insights()
    after = {n.id: n for n in mem.insights(include_retired=True)}
    # Nothing credited them since the pass began: halfway back toward the neutral 2.0.
    assert after[nodes[0].id].score == pytest.approx(4.0)
    assert after[nodes[2].id].score == pytest.approx(2.5)
    # Three live insights, room for two: the lowest scored retires, with its reason.
    weakest = after[nodes[1].id]
    assert weakest.retired and weakest.provenance[-1].operation == "retire"
    assert {i.id for i in mem.insights()} == {nodes[0].id, nodes[2].id}


def test_the_maintenance_pass_retires_rules_no_trajectory_supports(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(merge_every=0)
    supported = run(mem, "clean the mug and put it in the cabinet", CLEAN, True)
    evidenced, bare = (
        Insight(
            text=t,
            rule=InsightRule(kind="require", actions=[step], scope=[step, "go to <obj>"]),
            supporting=sup,
            embedding=mem.embedder.embed([t])[0],
        )
        for t, step, sup in (
            ("Clean it first.", "clean <obj> with sinkbasin", [supported.query_id]),
            ("Walk to the sink.", "go to sinkbasin", []),
        )
    )
    note = Insight(text="A person's note.", embedding=mem.embedder.embed(["note"])[0])
    mem.store.put_nodes([evidenced, bare, note])
    mem.merge_insights()
    gone = mem.store.get_node(bare.id)
    assert isinstance(gone, Insight) and gone.retired
    assert gone.provenance[-1].operation == "retire"
    assert "supports" in gone.provenance[-1].detail
    assert {i.id for i in mem.insights()} == {evidenced.id, note.id}


def _supported_here_and_elsewhere(mem: Memory) -> tuple[Insight, Insight]:
    """Two cleaning tasks and two bookings, and two insights of the same rule and scope
    (which the cleaning successes fit): one supported by the cleanings, the other by the
    bookings."""
    travel = [
        run(mem, f"book a train ticket to {city} for next monday", ["search trains"], True)
        for city in ("lisbon", "madrid")
    ]
    cleans = [
        run(mem, f"clean the {obj} and put it in the cabinet", CLEAN, True, obj=obj)
        for obj in ("mug", "cup")
    ]
    here, elsewhere = (_clean_rule_insight(mem, 2.0) for _ in range(2))
    mem.store.put_nodes(
        [
            here.model_copy(update={"supporting": [r.query_id for r in cleans]}),
            elsewhere.model_copy(
                update={"text": "Clean it, then book.", "supporting": [r.query_id for r in travel]}
            ),
        ]
    )
    mem.store.put_edges(
        [Edge(kind=EdgeKind.SUPPORTS, src=r.query_id, dst=here.id) for r in cleans]
        + [Edge(kind=EdgeKind.SUPPORTS, src=r.query_id, dst=elsewhere.id) for r in travel]
    )
    return here, elsewhere


def test_an_insight_whose_supporting_tasks_lie_elsewhere_is_not_shown(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(merge_every=0)
    here, elsewhere = _supported_here_and_elsewhere(mem)
    recall = mem.recall("clean the bowl and put it in the cabinet")
    shown = {i.id for i in recall.insights}
    assert here.id in shown
    assert elsewhere.id not in shown


def test_a_positive_rule_about_steps_every_procedure_takes_is_not_written(make_memory) -> None:  # type: ignore[no-untyped-def]
    from gmem.llm import HeuristicLLM
    from gmem.llm.protocol import InsightOp, InsightRequest, InsightResult, RuleView

    class Writer(HeuristicLLM):
        def derive_insights(self, request: InsightRequest) -> InsightResult:
            return InsightResult(
                operations=[
                    InsightOp(op="add", text=f"Do {step}.", rule=RuleView(kind=kind, actions=acts))
                    for step, kind, acts in (
                        ("clean", "require", ["clean <obj> with sinkbasin"]),
                        ("put", "require", ["put <obj> in <obj>"]),
                        ("order", "order", ["go to sinkbasin", "put <obj> in <obj>"]),
                    )
                ]
            )

    mem = make_memory(merge_every=0)
    mem._evolver.llm = Writer(mem.embedder, mem.config)
    run(mem, "heat the mug and put it on the countertop", HEAT, True)
    run(mem, "clean the mug and put it in the cabinet", CLEAN, True)
    report = run(mem, "clean the cup and put it in the cabinet", CLEAN, True, obj="cup")
    written = [mem.store.get_node(i) for i in report.added]
    rules = [(n.rule.kind, n.rule.actions) for n in written if isinstance(n, Insight) and n.rule]
    # Heating tasks put things away too: that step does not make the procedure, so neither
    # a rule requiring it nor an order ending in it is written.
    assert rules == [("require", ["clean <obj> with sinkbasin"])]


def test_credit_history_keeps_its_last_entries_and_all_authorship(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(
        merge_every=0, insight_credit=1.0, credit_min_baseline=3, insight_credit_history=2
    )
    ins = _clean_rule_insight(mem, 1.0)
    authored = ins.model_copy(
        update={"provenance": [Provenance(operation="add", query_id="q-author")]}
    )
    mem.store.put_nodes([authored])
    run(mem, "clean the mug and put it in the cabinet", CLEAN, True)
    for obj in ("cup", "bowl", "plate"):  # a hard domain, so a success earns credit
        run(mem, f"clean the {obj} and put it in the cabinet", CLEAN[2:], False, obj=obj)
    rewarded = 0
    for obj in ("fork", "knife", "spoon", "ladle"):
        report = run(
            mem, f"clean the {obj} and put it in the cabinet", CLEAN, True, obj, ("actor",)
        )
        rewarded += ins.id in report.rewarded
    assert rewarded > 2, "more credit was written than the history keeps"
    node = mem.store.get_node(ins.id)
    assert isinstance(node, Insight)
    credits = [p for p in node.provenance if p.operation in ("reward", "penalize")]
    assert len(credits) == 2
    ladle = query_id_for("default", "clean the ladle and put it in the cabinet")
    assert credits[-1].query_id == ladle
    assert [p.query_id for p in node.provenance if p.operation == "add"] == ["q-author"]


def test_evidence_lists_stay_bounded_and_forget_still_finds_every_task(make_memory) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(merge_every=0, insight_evidence_keep=2)
    ins = _clean_rule_insight(mem, 2.0)
    objs = ("mug", "cup", "bowl", "plate", "fork")
    tasks = [f"clean the {o} and put it in the cabinet" for o in objs]
    ids = [run(mem, t, CLEAN, True, obj=o).query_id for t, o in zip(tasks, objs, strict=True)]

    def node() -> Insight:
        n = mem.store.get_node(ins.id)
        assert isinstance(n, Insight)
        return n

    assert node().supporting == ids[-2:], "the list keeps only the most recent supporters"
    assert node().support_count == 5
    supporters = {e.src for e in mem.store.get_edges([ins.id], [EdgeKind.SUPPORTS], "in")}
    assert supporters == set(ids), "every supporter keeps its edge"
    # A task counted once stays counted once when it supports again, listed or not.
    run(mem, tasks[0], CLEAN, True, obj=objs[0])
    run(mem, tasks[4], CLEAN, True, obj=objs[4])
    assert node().support_count == 5
    assert node().supporting == [ids[0], ids[4]]
    # Forget and quarantine reach a task the list no longer names, through its edge.
    mem.forget_task(ids[1])
    assert node().support_count == 4
    assert ids[1] not in {e.src for e in mem.store.get_edges([ins.id], [EdgeKind.SUPPORTS], "in")}
    assert ids[1] not in node().supporting + node().contradicting
    mem.quarantine(ids[2])
    assert node().support_count == 3
    left = {e.src for e in mem.store.get_edges([ins.id], [EdgeKind.SUPPORTS], "in")}
    assert left == {ids[0], ids[3], ids[4]}


TRAVEL = [
    "search trains",
    "compare fares",
    "choose a seat",
    "pay by card",
    "go to sinkbasin 1",
    "clean {o} with sinkbasin 1",
    "go to {o}",
]


@pytest.mark.parametrize("peers", [0, 1])
def test_a_task_of_another_procedure_does_not_join_a_rule_by_its_steps(make_memory, peers) -> None:  # type: ignore[no-untyped-def]
    mem = make_memory(merge_every=0, evidence_min_peers=peers)
    for city in ("lisbon", "madrid"):
        run(mem, f"book a train ticket to {city} for monday", TRAVEL, True, obj=city)
    cleans = [
        run(mem, f"clean the {obj} and put it in the cabinet", CLEAN, True, obj=obj).query_id
        for obj in ("mug", "cup")
    ]
    ins = _clean_rule_insight(mem, 2.0)
    mem.store.put_nodes([ins.model_copy(update={"supporting": cleans})])
    # Its trajectory takes every step of the clean rule's scope, but the successes of its
    # own procedure (the other bookings) never supported the rule.
    booking = run(mem, "book a train ticket to porto for monday", TRAVEL, True, obj="porto")
    clean = run(mem, "clean the bowl and put it in the cabinet", CLEAN, True, obj="bowl")
    node = mem.store.get_node(ins.id)
    assert isinstance(node, Insight)
    assert clean.query_id in node.supporting
    assert (booking.query_id in node.supporting) is (peers == 0)


def test_an_insight_none_of_the_nearest_tasks_supports_is_not_shown(make_memory) -> None:  # type: ignore[no-untyped-def]
    # Placement by supporters' mean is off here, so only the neighbourhood decides.
    mem = make_memory(
        merge_every=0,
        insight_min_support_share=0.2,
        procedure_min_similarity=-1.0,
        procedure_margin=1.0,
    )
    here, elsewhere = _supported_here_and_elsewhere(mem)
    shown = {i.id for i in mem.recall("clean the bowl and put it in the cabinet").insights}
    assert here.id in shown
    assert elsewhere.id not in shown


def test_structural_vectors_place_an_insight_once_tasks_have_them(make_memory) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    mem = make_memory(merge_every=0, gnn_alpha=0.5, procedure_margin=0.02)
    text = np.ones(4, dtype=np.float32)
    heat, cool = np.eye(4, dtype=np.float32)[0], np.eye(4, dtype=np.float32)[1]
    # Worded alike (same text vector), done differently (structural vectors apart).
    tasks = [
        QueryNode(
            text=f"put a {w} mug on the table {i}",
            outcome=Outcome.SUCCESS,
            embedding=text,
            graph_embedding=g,
        )
        for w, g in (("hot", heat), ("cold", cool))
        for i in range(2)
    ]
    lessons = [
        Insight(
            text=f"lesson {k}",
            rule=InsightRule(kind="require", actions=[step], scope=[step]),
            supporting=[t.id for t in tasks[2 * k : 2 * k + 2]],
        )
        for k, step in enumerate(("heat <obj> with microwave", "cool <obj> with fridge"))
    ]
    mem.store.put_nodes([*tasks, *lessons])
    retriever = mem._retriever
    assert retriever._misplaced(lessons, text) == set(), "text alone cannot tell them apart"
    assert retriever._misplaced(lessons, text, heat) == {lessons[1].id}
    assert retriever._misplaced(lessons, text, cool) == {lessons[0].id}
