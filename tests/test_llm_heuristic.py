"""HeuristicLLM: the offline algorithms behind each memory operation."""

from __future__ import annotations

import pytest

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
def test_success_insight_names_the_step_failures_skipped(llm: HeuristicLLM) -> None:
    request = InsightRequest(
        trajectory=success(7),
        successes=[success(1), success(2)],
        failures=[failure(3), failure(4)],
        roles=ROLES,
    )

    result = llm.derive_insights(request)

    [op] = result.operations
    assert op.op == "add"
    assert op.text == (
        'For tasks like "put the key 7 in the box 7": operator should "open safe" before '
        '"take key from safe"; failed attempts skipped "open safe".'
    )
    assert op.roles == ["operator"]


def test_failure_yields_what_it_missed_and_what_it_did_instead(llm: HeuristicLLM) -> None:
    request = InsightRequest(
        trajectory=failure(9),
        successes=[success(1), success(2), success(3)],
        failures=[failure(4)],
        roles=ROLES,
    )

    added = texts(llm.derive_insights(request))

    assert len(added) == 2
    missed, did = added
    assert '"open safe" before "take key from safe"' in missed
    # What the failures did that no success did: examining the safe.
    assert 'should avoid "examine safe"' in did
    assert "successful ones did not" in did


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
    assert any('"put key in box"' in t for t in added)  # failures never put the key in


def test_existing_near_identical_insight_gets_agreement_not_a_duplicate(
    llm: HeuristicLLM,
) -> None:
    first = InsightRequest(
        trajectory=success(7), successes=[success(1)], failures=[failure(2)], roles=ROLES
    )
    [added] = llm.derive_insights(first).operations
    existing = [
        InsightView(id="unrelated", text="Always greet the user politely."),
        InsightView(id="same", text=added.text or "", score=2.0),
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


def test_success_removes_only_own_rules_that_the_successes_do_not_back(
    llm: HeuristicLLM,
) -> None:
    rule = InsightView(
        id="r1", text='For tasks like "x": operator should "examine safe" before "open safe".'
    )
    prose = InsightView(id="p1", text="Examine the safe before you open it.")

    lone = llm.derive_insights(InsightRequest(trajectory=success(1), existing=[rule, prose]))
    backed = llm.derive_insights(
        InsightRequest(trajectory=success(1), successes=[success(2)], existing=[rule, prose])
    )

    assert all(op.op != "remove" for op in lone.operations)  # one success is not enough
    removed = [op.insight_id for op in backed.operations if op.op == "remove"]
    assert removed == ["r1"]


def test_lone_trajectories_still_yield_a_lesson(llm: HeuristicLLM) -> None:
    looping = trajectory(
        "find the lamp",
        "failure",
        act("actor", "go to desk 1", "You see a pen."),
        act("actor", "search desk 1", "You find nothing."),
        act("actor", "search desk 1", "You find nothing."),
        act("actor", "search desk 1", "You find nothing."),
    )

    [lone_success] = llm.derive_insights(InsightRequest(trajectory=success(3))).operations
    [lone_failure] = llm.derive_insights(InsightRequest(trajectory=looping)).operations

    assert lone_success.op == "add" and '"go to safe" before "put key in box"' in (
        lone_success.text or ""
    )
    assert lone_failure.op == "add"
    assert 'should not repeat "search desk"' in (lone_failure.text or "")
    assert lone_failure.roles == ["actor"]


def test_without_actions_the_message_flow_is_contrasted(llm: HeuristicLLM) -> None:
    def talk(outcome: str, *roles: str) -> TrajectoryView:
        specs = [(role, f"{role} says something", None, None, None) for role in roles]
        return TrajectoryView(task="answer the question", outcome=outcome, steps=steps(*specs))

    request = InsightRequest(
        trajectory=talk("success", "planner", "researcher", "critic", "writer"),
        successes=[talk("success", "planner", "researcher", "writer")],
        failures=[talk("failure", "planner", "writer"), talk("failure", "writer", "planner")],
    )

    [op] = llm.derive_insights(request).operations

    assert op.op == "add"
    assert '"researcher" should speak before "writer"' in (op.text or "")
    assert 'left out "researcher"' in (op.text or "")


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


async def test_async_twins_answer_like_the_sync_methods(llm: HeuristicLLM) -> None:
    request = KeyStepsRequest(task="t", outcome="success", steps=success(1).steps)

    assert await llm.aextract_key_steps(request) == llm.extract_key_steps(request)


def test_derived_insights_keep_the_task_text_and_its_digits(llm: HeuristicLLM) -> None:
    task = "what is 2 plus 3"
    request = InsightRequest(
        trajectory=trajectory(task, "success", act("solver", "add 2 and 3")),
        roles=["solver"],
    )
    [op] = llm.derive_insights(request).operations
    assert op.text is not None and '"what is 2 plus 3"' in op.text
