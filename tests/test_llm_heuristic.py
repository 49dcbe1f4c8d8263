"""HeuristicLLM: the offline algorithms behind each memory operation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gmem.config import MemoryConfig
from gmem.embedding import HashingEmbedder
from gmem.llm import (
    LLM,
    CandidateView,
    HeuristicLLM,
    InsightRequest,
    InsightResult,
    InsightView,
    KeyStepsRequest,
    MergeRequest,
    ProjectionRequest,
    RelevanceRequest,
    StepView,
    TrajectoryView,
)
from gmem.llm.protocol import RuleView
from gmem.rules import scope_similarity

Step = tuple[str, str, str | None, str | None, float | None]  # role, content, action, obs, reward


@pytest.fixture
def llm() -> HeuristicLLM:
    return HeuristicLLM(HashingEmbedder(dim=256), MemoryConfig())


def steps(*specs: Step) -> list[StepView]:
    return [
        StepView(
            index=i,
            agent=f"{role}-agent",
            role=role,
            content=content,
            action=action,
            observation=obs,
            reward=reward,
        )
        for i, (role, content, action, obs, reward) in enumerate(specs)
    ]


def act(role: str, action: str, obs: str = "OK.", reward: float | None = None) -> Step:
    return (role, f"I will {action}.", action, obs, reward)


def trajectory(task: str, outcome: str, *actions: Step) -> TrajectoryView:
    return TrajectoryView(task=task, outcome=outcome, steps=steps(*actions))


# Successes open the safe before taking the key; failures try to take it straight away.
def success(n: int) -> TrajectoryView:
    return trajectory(
        f"put the key {n} in the box {n}",
        "success",
        act("navigator", f"go to safe {n}"),
        act("operator", f"open safe {n}"),
        act("operator", f"take key {n} from safe {n}"),
        act("navigator", f"go to box {n}"),
        act("operator", f"put key {n} in box {n}"),
    )


def failure(n: int) -> TrajectoryView:
    return trajectory(
        f"put the key {n} in the box {n}",
        "failure",
        act("navigator", f"go to safe {n}"),
        act("operator", f"take key {n} from safe {n}"),
        act("operator", f"examine safe {n}"),
        act("navigator", f"go to box {n}"),
    )


ROLES = ["navigator", "operator"]


def texts(result: InsightResult) -> list[str]:
    return [op.text or "" for op in result.operations if op.op == "add"]


def test_is_an_llm_named_as_heuristic(llm: HeuristicLLM) -> None:
    assert isinstance(llm, LLM)
    assert llm.name == "heuristic"


# ---- relevance -----------------------------------------------------------------------
def test_relevance_is_clipped_cosine_of_tasks(llm: HeuristicLLM) -> None:
    request = RelevanceRequest(
        task="heat the mug in the microwave",
        candidates=[
            CandidateView(id="a", task="heat the mug in the microwave", outcome="success"),
            CandidateView(id="b", task="heat the cup in the microwave", outcome="success"),
            CandidateView(id="c", task="zebra quantum sonnet", outcome="failure"),
        ],
    )

    same, close, unrelated = llm.score_relevance(request).scores

    assert same == pytest.approx(1.0, abs=1e-5)
    assert 0.3 < close < same
    assert 0.0 <= unrelated < 0.15
    assert llm.score_relevance(RelevanceRequest(task="x", candidates=[])).scores == []


def test_relevance_uses_a_precomputed_similarity(llm: HeuristicLLM) -> None:
    request = RelevanceRequest(
        task="heat the mug",
        candidates=[
            CandidateView(id="a", task="heat the mug", outcome="success", similarity=0.4),
            CandidateView(id="b", task="zebra", outcome="success", similarity=-0.2),
            CandidateView(id="c", task="heat the mug", outcome="success"),
        ],
    )

    assert llm.score_relevance(request).scores == pytest.approx([0.4, 0.0, 1.0], abs=1e-5)


# ---- key steps -----------------------------------------------------------------------
def test_key_steps_drop_no_ops_penalised_and_looping_steps(llm: HeuristicLLM) -> None:
    request = KeyStepsRequest(
        task="put the key in the box",
        outcome="success",
        steps=steps(
            ("planner", "First find the key.", None, None, None),  # 0 plan: kept
            act("actor", "go to safe 1"),  # 1 kept
            act("actor", "open safe 1", "Nothing happens."),  # 2 no-op observation
            ("actor", "   ", None, None, None),  # 3 empty
            act("actor", "look", "You are in a room."),  # 4 kept
            act("actor", "look", "You are in a room."),  # 5 loop
            act("actor", "fly away", "Invalid action."),  # 6 no-op
            act("actor", "take key 1 from safe 1", "The safe is locked.", -1.0),  # 7 penalised
            act("actor", "look", "You are in a room."),  # 8 loop (within 3 actions)
            act("actor", "look", "A key lies on the floor."),  # 9 same action, new observation
            act("actor", "take key 1 from floor"),  # 10 kept
            act("actor", "put key 1 in box 1", "Nothing happens."),  # 11 final of a success
        ),
    )

    assert llm.extract_key_steps(request).keep == [0, 1, 4, 9, 10, 11]


def test_a_repeat_outside_the_loop_window_is_not_a_loop() -> None:
    llm = HeuristicLLM(HashingEmbedder(), MemoryConfig(loop_window=2))
    request = KeyStepsRequest(
        task="t",
        outcome="failure",
        steps=steps(
            act("actor", "look", "room"),
            act("actor", "go to desk 1", "desk"),
            act("actor", "go to bed 1", "bed"),
            act("actor", "look", "room"),  # two other actions since: not looping
            act("actor", "look", "room"),  # right after: looping
        ),
    )

    assert llm.extract_key_steps(request).keep == [0, 1, 2, 3]


def test_final_step_is_kept_only_for_a_success(llm: HeuristicLLM) -> None:
    specs = (act("actor", "look", "room"), act("actor", "look", "room"))

    kept = llm.extract_key_steps(KeyStepsRequest(task="t", outcome="success", steps=steps(*specs)))
    dropped = llm.extract_key_steps(
        KeyStepsRequest(task="t", outcome="failure", steps=steps(*specs))
    )

    assert kept.keep == [0, 1]
    assert dropped.keep == [0]


# ---- insights ------------------------------------------------------------------------
# In these tasks the key and the box are the task's own objects: procedure steps name them
# "<obj>" (gmem.procedure), so "put key 7 in box 7" is the step "put <obj> in <obj>".
def test_success_insight_names_the_steps_failures_skipped(llm: HeuristicLLM) -> None:
    request = InsightRequest(
        trajectory=success(7),
        successes=[success(1), success(2)],
        failures=[failure(3), failure(4)],
        roles=ROLES,
    )

    [op] = llm.derive_insights(request).operations  # two failures: too few for an avoid rule

    assert op.op == "add"
    assert op.rule is not None and op.rule.kind == "require"
    assert op.rule.actions == ["open safe", "put <obj> in <obj>"]
    assert op.text == (
        'For tasks like "put the key 7 in the box 7": operator should "open safe", then '
        '"put the object in the object" (3 of 3 successes did, 0 of 2 failures of the same '
        "procedure did)."
    )
    assert op.roles == ["operator"]


def test_failure_yields_what_it_missed_and_what_it_did_instead(llm: HeuristicLLM) -> None:
    request = InsightRequest(
        trajectory=failure(9),
        successes=[success(1), success(2), success(3)],
        failures=[failure(4), failure(5)],
        roles=ROLES,
    )

    ops = llm.derive_insights(request).operations

    assert [(op.op, op.rule.kind if op.rule else None) for op in ops] == [
        ("add", "require"),
        ("add", "avoid"),
    ]
    missed, did = ops
    assert missed.rule is not None and "open safe" in missed.rule.actions
    # What the failures did that no success did: examining the safe.
    assert did.rule is not None and did.rule.actions == ["examine safe"]
    assert 'should not "examine safe"' in (did.text or "")
    assert "0 of 3 successes did, 3 of 3 failures" in (did.text or "")


def test_order_is_a_lesson_only_where_failures_took_the_other_order(llm: HeuristicLLM) -> None:
    def reversed_failure(n: int) -> TrajectoryView:
        return trajectory(
            f"put the key {n} in the box {n}",
            "failure",
            act("navigator", f"go to safe {n}"),
            act("operator", f"take key {n} from safe {n}"),
            act("operator", f"open safe {n}"),
            act("navigator", f"go to box {n}"),
            act("operator", f"put key {n} in box {n}"),
        )

    request = InsightRequest(
        trajectory=success(7),
        successes=[success(1), success(2)],
        failures=[reversed_failure(3), reversed_failure(4), reversed_failure(5)],
        roles=ROLES,
    )

    [op] = llm.derive_insights(request).operations

    assert op.rule is not None and op.rule.kind == "order"
    assert op.rule.actions == ["open safe", "take <obj> from safe"]
    assert 'should "open safe" before "take the object from safe"' in (op.text or "")


def test_pattern_below_support_is_not_a_lesson() -> None:
    # Only one of three successes opens the safe first: below pattern_min_support (0.5).
    plain = [
        trajectory(
            f"put the key {n} in the box {n}",
            "success",
            act("navigator", f"go to safe {n}"),
            act("operator", f"take key {n} from safe {n}"),
            act("navigator", f"go to box {n}"),
            act("operator", f"put key {n} in box {n}"),
        )
        for n in (1, 2)
    ]
    llm = HeuristicLLM(HashingEmbedder(), MemoryConfig(pattern_min_support=0.5))
    request = InsightRequest(trajectory=success(5), successes=plain, failures=[failure(6)])

    added = texts(llm.derive_insights(request))

    assert added and not any("open safe" in t for t in added)
    assert any('"put the object in the object"' in t for t in added)  # failures never put


def test_an_existing_insight_with_the_same_rule_gets_agreement_not_a_duplicate(
    llm: HeuristicLLM,
) -> None:
    first = InsightRequest(
        trajectory=success(7), successes=[success(1)], failures=[failure(2)], roles=ROLES
    )
    [added] = llm.derive_insights(first).operations
    assert added.rule is not None
    existing = [
        InsightView(id="unrelated", text="Always greet the user politely."),
        InsightView(id="same", text="worded differently", score=2.0, rule=added.rule),
    ]
    second = InsightRequest(
        trajectory=success(8),
        successes=[success(1), success(3)],
        failures=[failure(2)],
        existing=existing,
        roles=ROLES,
    )

    ops = llm.derive_insights(second).operations

    assert [(op.op, op.insight_id) for op in ops] == [("agree", "same")]


def test_no_lesson_without_several_successes_and_a_contrast(llm: HeuristicLLM) -> None:
    """One success, or successes with no failure of their procedure, show no regularity
    that can be told from what every task does; a failure alone shows no contrast."""
    looping = trajectory(
        "find the lamp",
        "failure",
        act("actor", "go to desk 1", "You see a pen."),
        act("actor", "search desk 1", "You find nothing."),
        act("actor", "search desk 1", "You find nothing."),
    )
    alone = [
        InsightRequest(trajectory=success(3)),
        InsightRequest(trajectory=success(3), successes=[success(1), success(2)]),
        InsightRequest(trajectory=looping),
        InsightRequest(trajectory=failure(3), failures=[failure(4)]),
    ]

    for request in alone:
        assert llm.derive_insights(request).operations == []


def test_without_actions_there_is_no_procedure_to_learn(llm: HeuristicLLM) -> None:
    def talk(outcome: str, *roles: str) -> TrajectoryView:
        specs = [(role, f"{role} says something", None, None, None) for role in roles]
        return TrajectoryView(task="answer the question", outcome=outcome, steps=steps(*specs))

    request = InsightRequest(
        trajectory=talk("success", "planner", "researcher", "critic", "writer"),
        successes=[talk("success", "planner", "researcher", "writer")],
        failures=[talk("failure", "planner", "writer"), talk("failure", "writer", "planner")],
    )

    assert llm.derive_insights(request).operations == []


def test_no_steps_no_operations(llm: HeuristicLLM) -> None:
    empty = TrajectoryView(task="t", outcome="success", steps=[])

    assert llm.derive_insights(InsightRequest(trajectory=empty)).operations == []


# ---- projection ----------------------------------------------------------------------
def test_projection_filters_by_role_and_ranks_by_similarity_and_score(
    llm: HeuristicLLM,
) -> None:
    insights = [
        InsightView(id="nav", text="go to the safe first", score=2.0, roles=["navigator"]),
        InsightView(id="all", text="open the safe before taking the key", score=2.0),
        InsightView(
            id="op", text="open the safe before taking the key", score=-3.0, roles=["Operator"]
        ),
        InsightView(id="far", text="greet politely", score=5.0, roles=["operator"]),
    ]

    result = llm.project_insights(
        ProjectionRequest(role="operator", task="take the key from the safe", insights=insights)
    )

    assert [p.id for p in result.insights] == ["all", "op", "far"]
    assert [p.text for p in result.insights] == [i.text for i in insights[1:]]
    assert all(0.0 <= p.relevance <= 1.0 for p in result.insights)
    assert result.insights[0].relevance > result.insights[1].relevance


# ---- merge ---------------------------------------------------------------------------
def test_merge_groups_near_duplicates_and_keeps_the_best_text(llm: HeuristicLLM) -> None:
    insights = [
        InsightView(id="a", text="Open the safe before taking the key.", score=1.0),
        InsightView(id="b", text="Greet the user politely.", score=9.0),
        InsightView(id="c", text="Open the safe before taking the key!", score=3.0),
        InsightView(id="d", text="open the safe before taking the key", score=3.0),
        InsightView(id="e", text="Heat the mug in the microwave.", score=1.0),
    ]

    groups = llm.merge_insights(MergeRequest(insights=insights)).groups

    assert [g.source_ids for g in groups] == [["a", "c", "d"]]
    assert groups[0].text == "Open the safe before taking the key!"  # top score, then longest


class _Counting(HashingEmbedder):
    """Hashing vectors, remembering every text that reaches the model."""

    def __init__(self) -> None:
        super().__init__(dim=256)
        self.encoded: list[str] = []

    def _encode(self, texts: list[str]) -> Any:
        self.encoded.extend(texts)
        return super()._encode(texts)


def _rule(kind: str, actions: list[str], scope: list[str]) -> RuleView:
    return RuleView.model_validate({"kind": kind, "actions": actions, "scope": scope})


def test_merge_joins_rules_by_kind_actions_and_scope_and_embeds_only_rule_less_texts() -> None:
    model = _Counting()
    llm = HeuristicLLM(model, MemoryConfig())
    scope = ["go to safe", "open safe", "take key"]
    insights = [
        InsightView(id="r1", text="first wording", rule=_rule("require", ["open safe"], scope)),
        InsightView(id="n1", text="Greet the user politely.", score=2.0),
        InsightView(
            id="r2", text="second wording", rule=_rule("require", ["open safe"], scope[:2])
        ),
        InsightView(  # same rule, another procedure (scope overlap 1/5)
            id="r3",
            text="first wording",
            rule=_rule("require", ["open safe"], ["open safe", "a", "b", "c"]),
        ),
        InsightView(id="a1", text="first wording", rule=_rule("avoid", ["open safe"], scope)),
        InsightView(id="n2", text="Greet the user politely!", score=1.0),
        InsightView(id="n3", text="Heat the mug in the microwave."),
    ]

    groups = llm.merge_insights(MergeRequest(insights=insights)).groups

    assert [(g.source_ids, g.text) for g in groups] == [
        (["r1", "r2"], "second wording"),
        (["n1", "n2"], "Greet the user politely."),
    ]
    # Rules are compared as rules: only the three rule-less texts were worth encoding.
    assert sorted(model.encoded) == sorted(i.text for i in insights if i.rule is None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["open the safe", "open the safe!", "greet", None]),
            st.sampled_from([None, "require", "avoid"]),
            st.sampled_from([["x"], ["y"]]),
            st.lists(st.sampled_from("abcd"), max_size=3, unique=True),
            st.integers(0, 3),
        ),
        max_size=12,
    )
)
def test_merge_groups_are_the_components_of_the_pairwise_relation(
    specs: list[tuple[str | None, str | None, list[str], list[str], int]],
) -> None:
    """Bucketing by rule compares fewer pairs; the groups must be those of comparing all."""
    cfg = MemoryConfig()
    llm = HeuristicLLM(HashingEmbedder(dim=256), cfg)
    insights = [
        InsightView(
            id=f"i{n}",
            text=text or f"text {n}",
            score=float(score),
            rule=None if kind is None else _rule(kind, actions, scope),
        )
        for n, (text, kind, actions, scope, score) in enumerate(specs)
    ]
    vectors = HashingEmbedder(dim=256).embed([i.text for i in insights]) if insights else None

    def same(i: InsightView, j: InsightView, a: int, b: int) -> bool:
        if i.rule is None or j.rule is None:
            assert vectors is not None
            close = float(vectors[a] @ vectors[b]) >= cfg.merge_similarity
            return i.rule is None and j.rule is None and close
        return (
            i.rule.kind == j.rule.kind
            and i.rule.actions == j.rule.actions
            and scope_similarity(i.rule.scope, j.rule.scope) >= cfg.merge_scope_overlap
        )

    component = list(range(len(insights)))
    for a, i in enumerate(insights):  # transitive closure, the slow way
        for b, j in enumerate(insights):
            if a < b and same(i, j, a, b):
                old, new = max(component[a], component[b]), min(component[a], component[b])
                component = [new if c == old else c for c in component]
    expected = [
        [insights[n].id for n in range(len(insights)) if component[n] == c]
        for c in sorted(set(component))
    ]

    groups = llm.merge_insights(MergeRequest(insights=insights)).groups

    assert [g.source_ids for g in groups] == [e for e in expected if len(e) > 1]


# ---- determinism and usage -----------------------------------------------------------
def test_same_input_gives_the_same_output(llm: HeuristicLLM) -> None:
    request = InsightRequest(
        trajectory=failure(9),
        successes=[success(1), success(2)],
        failures=[failure(4)],
        existing=[InsightView(id="x", text="open the safe first")],
        roles=ROLES,
    )
    other = HeuristicLLM(HashingEmbedder(dim=256), MemoryConfig())

    assert llm.derive_insights(request) == llm.derive_insights(request)
    assert llm.derive_insights(request) == other.derive_insights(request)


def test_usage_counts_calls_without_tokens(llm: HeuristicLLM) -> None:
    llm.score_relevance(RelevanceRequest(task="t", candidates=[]))
    llm.merge_insights(MergeRequest(insights=[]))
    llm.merge_insights(MergeRequest(insights=[]))

    assert llm.usage.by_operation["score_relevance"].calls == 1
    assert llm.usage.by_operation["merge_insights"].calls == 2
    assert llm.usage.total_tokens == 0


def test_derived_insights_keep_the_task_text_and_its_digits(llm: HeuristicLLM) -> None:
    def attempt(outcome: str, *actions: str) -> TrajectoryView:
        return trajectory("what is 2 plus 3", outcome, *(act("solver", a) for a in actions))

    request = InsightRequest(
        trajectory=attempt("success", "read the question", "add the numbers", "answer 5"),
        successes=[attempt("success", "read the question", "add the numbers", "answer 5")],
        failures=[attempt("failure", "read the question", "answer 6")],
        roles=["solver"],
    )

    [op] = llm.derive_insights(request).operations

    assert op.text is not None and op.text.startswith('For tasks like "what is 2 plus 3": ')


def test_a_lesson_cites_a_task_that_shows_it_not_the_failure_it_was_mined_at(
    llm: HeuristicLLM,
) -> None:
    # The failure that triggers mining had another wording; the require lesson (open the
    # safe) is learned from the successes, so its sentence must cite one of them, while
    # the avoid lesson (examine the safe) is what this failure did and may cite it.
    failed = failure(9).model_copy(update={"task": "stash a spare key in the crate"})
    request = InsightRequest(
        trajectory=failed,
        successes=[success(1), success(2), success(3)],
        failures=[failure(4), failure(5)],
        roles=ROLES,
    )

    missed, did = llm.derive_insights(request).operations

    assert (missed.text or "").startswith('For tasks like "put the key 1 in the box 1": ')
    assert (did.text or "").startswith('For tasks like "stash a spare key in the crate": ')
