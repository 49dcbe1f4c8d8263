"""The five memory operations answered by a real model (SmolLM2-135M on llama.cpp).

No fake anywhere: the local server started by ``gmem/llm/local_server.sh`` runs the model,
``OpenAIChat`` talks to it over HTTP. The model is tiny, so these tests pin the plumbing,
not the quality: every operation reaches the server and comes back either as a result
that passed validation and the request checks, or, after its retries, as the heuristic's
answer with one logged warning.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from gmem.config import MemoryConfig
from gmem.embedding import HashingEmbedder
from gmem.llm import (
    CandidateView,
    FallbackLLM,
    HeuristicLLM,
    InsightRequest,
    InsightView,
    KeyStepsRequest,
    MergeRequest,
    OpenAIChat,
    ProjectionRequest,
    RelevanceRequest,
    StepView,
    TrajectoryView,
)
from tests.llm_server.conftest import ServerSettings

TASK = "put a clean mug in the cabinet"
STEPS = [
    StepView(index=0, agent="p", role="planner", content="Find the mug, clean it, store it."),
    StepView(index=1, agent="a", role="actor", content="go to countertop 1"),
    StepView(index=2, agent="a", role="actor", content="take mug 1 from countertop 1"),
    StepView(index=3, agent="a", role="actor", content="clean mug 1 with sinkbasin 1"),
    StepView(index=4, agent="a", role="actor", content="put mug 1 in cabinet 2", reward=1.0),
]
INSIGHTS = [
    InsightView(id="i1", text="Clean an object at the sinkbasin before putting it away."),
    InsightView(id="i2", text="Wash the object in the sink before placing it."),
]
RELEVANCE = RelevanceRequest(
    task=TASK,
    candidates=[
        CandidateView(id="q1", task="put a clean cup in the cabinet", outcome="success"),
        CandidateView(id="q2", task="heat an egg in the microwave", outcome="failure"),
    ],
)
KEY_STEPS = KeyStepsRequest(task=TASK, outcome="success", steps=STEPS)
INSIGHT = InsightRequest(
    trajectory=TrajectoryView(task=TASK, outcome="success", steps=STEPS),
    existing=INSIGHTS[:1],
    roles=["planner", "actor"],
)
PROJECTION = ProjectionRequest(role="actor", task=TASK, insights=INSIGHTS)
MERGE = MergeRequest(insights=INSIGHTS)

OPERATIONS: list[tuple[str, Any]] = [
    ("score_relevance", RELEVANCE),
    ("extract_key_steps", KEY_STEPS),
    ("derive_insights", INSIGHT),
    ("project_insights", PROJECTION),
    ("merge_insights", MERGE),
]


def real_chat(server: ServerSettings, **config: Any) -> OpenAIChat:
    settings = {
        "llm_deadline_s": 120.0,  # a 2-core CI machine shared with the rest of the suite
        "llm_timeout_s": 120.0,
        "llm_max_retries": 1,
        # A 135M model rambles: a shorter answer bounds each request's time.
        "llm_max_tokens": 256,
        "llm_response_format": "json_object+schema",
        **config,
    }
    return OpenAIChat(base_url=server.base_url, model=server.model, config=MemoryConfig(**settings))


def heuristic() -> HeuristicLLM:
    return HeuristicLLM(HashingEmbedder(), MemoryConfig())


def test_the_server_lists_its_model_and_answers(llm_server: ServerSettings) -> None:
    chat = real_chat(llm_server)
    chat.model = None  # discovered from /v1/models, as for any single-model server

    answer = chat.chat([{"role": "user", "content": "Say hello."}], max_tokens=16)

    assert chat.model and chat.name == f"openai-chat:{chat.model}"
    assert answer.strip()
    assert chat.usage.by_operation["chat"].completion_tokens > 0


def test_all_five_operations_go_through_the_model(
    llm_server: ServerSettings, caplog: pytest.LogCaptureFixture
) -> None:
    chat = real_chat(llm_server)
    llm = FallbackLLM(chat, heuristic())

    with caplog.at_level(logging.WARNING, logger="gmem"):
        relevance = llm.score_relevance(RELEVANCE)
        key_steps = llm.extract_key_steps(KEY_STEPS)
        insights = llm.derive_insights(INSIGHT)
        projection = llm.project_insights(PROJECTION)
        merge = llm.merge_insights(MERGE)

    # Whoever answered, each result fits its request.
    assert len(relevance.scores) == 2 and all(0 <= s <= 1 for s in relevance.scores)
    assert set(key_steps.keep) <= {step.index for step in STEPS}
    known = {insight.id for insight in INSIGHTS}
    assert all(op.op == "add" or op.insight_id in known for op in insights.operations)
    assert {item.id for item in projection.insights} <= known
    assert all(set(group.source_ids) <= known for group in merge.groups)
    # Every operation reached the model, which wrote an answer each time.
    for op, _ in OPERATIONS:
        usage = chat.usage.by_operation[op]
        assert usage.calls >= 1 and usage.completion_tokens > 0, op
        if llm.fallbacks[op]:  # degraded only when every request of it failed
            assert usage.failures == usage.calls <= 1 + chat.max_retries, op
        else:
            assert usage.failures < usage.calls, op
    # With a JSON-schema grammar the model's answers validate for some operations at
    # least: the path from prompt to accepted result works end to end.
    assert sum(llm.fallbacks.values()) < len(OPERATIONS)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) <= sum(llm.fallbacks.values())


def test_an_invalid_answer_is_retried_then_degraded_with_one_warning(
    llm_server: ServerSettings, caplog: pytest.LogCaptureFixture
) -> None:
    # Twelve scores cannot fit in 16 tokens: every answer is cut off, so invalid.
    request = RelevanceRequest(
        task=TASK,
        candidates=[
            CandidateView(id=f"q{n}", task=f"put a clean mug in cabinet {n}", outcome="success")
            for n in range(12)
        ],
    )
    chat = real_chat(
        llm_server, llm_max_tokens=16, llm_max_retries=2, llm_response_format="json_object"
    )
    fallback = heuristic()
    llm = FallbackLLM(chat, fallback)

    with caplog.at_level(logging.WARNING, logger="gmem"):
        result = llm.score_relevance(request)

    assert result == fallback.score_relevance(request)
    usage = chat.usage.by_operation["score_relevance"]
    assert usage.calls == usage.failures == 3  # asked, re-asked twice, then degraded
    assert llm.degraded and llm.fallbacks["score_relevance"] == 1
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "token limit of 16" in warnings[0].getMessage()
    assert not chat.breaker.is_open  # the endpoint answered; only the answers were bad


def test_memory_learns_from_a_task_with_the_model_in_the_loop(
    llm_server: ServerSettings,
) -> None:
    from gmem.memory import Memory

    chat = real_chat(llm_server)
    config = MemoryConfig()
    with Memory(":memory:", embedder=HashingEmbedder(), llm=chat, config=config) as memory:
        for text in (TASK, "put a clean cup in the cabinet"):
            with memory.task(text, roles=["planner", "actor"]) as task:
                task.recall("actor")
                for step in STEPS:
                    task.record(agent=step.agent, role=step.role, content=step.content)
                task.finish(success=True)
        counts = memory.store.count().nodes

    assert counts.get("Query") == 2
    assert chat.usage.by_operation["extract_key_steps"].calls >= 2
    assert chat.usage.total_tokens > 0
