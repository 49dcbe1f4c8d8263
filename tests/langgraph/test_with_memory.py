"""``with_memory`` on the real LangGraph runtime with scripted chat models."""

from __future__ import annotations

import asyncio
import operator
import warnings
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, interrupt

from gmem.memory import Memory
from integrations.langgraph import MemoryUnavailableWarning, with_memory
from integrations.langgraph.examples.team import (
    TeamState,
    approved,
    build_team,
    team_with_memory,
)
from tests.langgraph.conftest import recorded

TASK = "Write a function that counts word frequencies in a text file"
SIMILAR = "Write a function that counts how often each word appears in a text file"


def ask(text: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(text)]}


def test_a_run_records_the_interaction_graph(memory: Memory) -> None:
    seen: dict[str, list[list[BaseMessage]]] = {}
    team = team_with_memory(memory, seen=seen)
    state = team.invoke(ask(TASK))

    assert approved(state)
    assert not any(isinstance(m, SystemMessage) for m in state["messages"])
    queries, utterances, replies = recorded(memory)
    assert [q.text for q in queries] == [TASK]
    assert queries[0].outcome.value == "success"
    assert [(u.agent, u.role) for u in utterances] == [
        ("planner", "planner"),
        ("coder", "coder"),
        ("critic", "critic"),
    ]
    assert replies == {("coder", "planner"), ("critic", "planner"), ("critic", "coder")}
    assert utterances[0].metadata["message_id"] == state["messages"][1].id
    # Nothing was remembered yet, so nothing was injected.
    assert all(not isinstance(msgs[0][0], SystemMessage) for msgs in seen.values())


def test_a_second_similar_task_recalls_the_first(memory: Memory) -> None:
    seen: dict[str, list[list[BaseMessage]]] = {}
    team = team_with_memory(memory, seen=seen)
    team.invoke(ask(TASK))
    seen.clear()
    state = team.invoke(ask(SIMILAR))

    for role in ("planner", "coder", "critic"):
        first = seen[role][0][0]
        assert isinstance(first, SystemMessage), role
        assert TASK in str(first.content)
        assert first.content == team.last_run.recalled[role]  # type: ignore[union-attr]
    assert "def count_words" in str(seen["coder"][0][0].content)
    assert not any(isinstance(m, SystemMessage) for m in state["messages"])
    queries, utterances, _ = recorded(memory)
    assert len(queries) == 2 and len(utterances) == 6
    second = next(q for q in queries if q.text == SIMILAR)
    used = memory.store.get_edges([second.id], ["USED_MEMORY_OF"])  # type: ignore[list-item]
    assert [e.dst for e in used] == [next(q.id for q in queries if q.text == TASK)]


@pytest.mark.parametrize("mode", ["invoke", "stream", "ainvoke", "astream"])
def test_every_way_of_running_records_and_finishes(memory: Memory, mode: str) -> None:
    team = team_with_memory(memory)

    async def consume() -> list[Any]:
        if mode == "ainvoke":
            return [await team.ainvoke(ask(TASK))]
        return [chunk async for chunk in team.astream(ask(TASK), stream_mode="updates")]

    if mode == "invoke":
        chunks = [team.invoke(ask(TASK))]
    elif mode == "stream":
        chunks = list(team.stream(ask(TASK), stream_mode="updates"))
    else:
        chunks = asyncio.run(consume())
    if mode in ("stream", "astream"):
        assert [next(iter(c)) for c in chunks] == ["planner", "coder", "critic"]
    queries, utterances, replies = recorded(memory)
    assert len(queries) == 1 and queries[0].outcome.value == "success"
    assert [u.role for u in utterances] == ["planner", "coder", "critic"]
    assert ("critic", "coder") in replies


def test_state_injection_puts_memory_under_a_key(memory: Memory) -> None:
    class State(TypedDict):
        messages: Annotated[list[AnyMessage], add_messages]

    shown: list[str] = []

    def solver(state: State) -> dict[str, Any]:
        shown.append(str(dict(state).get("memory", "")))
        return {"messages": [AIMessage("sorted the list with merge sort")]}

    builder = StateGraph(State)
    builder.add_node("solver", solver)
    builder.add_edge(START, "solver")
    team = with_memory(builder, memory, roles=["solver"], inject="state", judge=lambda s: 1.0)
    team.invoke(ask("sort a list of numbers"))
    team.invoke(ask("sort a list of integers"))
    assert shown[0] == ""
    assert "merge sort" in shown[1]
    queries, _, _ = recorded(memory)
    assert {q.score for q in queries} == {1.0}


def approval_team() -> StateGraph[Any]:
    """planner -> coder -> human approval (an interrupt) -> critic."""
    team = build_team()

    def approve(state: TeamState) -> dict[str, Any]:
        answer = interrupt("approve the code?")
        return {"messages": [AIMessage(f"human says: {answer}", name="approver")]}

    team.add_node("approve", approve)
    team.edges.discard(("coder", "critic"))
    team.add_edge("coder", "approve")
    team.add_edge("approve", "critic")
    return team


def test_interrupt_and_resume_do_not_duplicate_utterances(memory: Memory) -> None:
    graph = approval_team().compile(checkpointer=InMemorySaver())
    team = with_memory(graph, memory, roles=["planner", "coder", "critic"], judge=approved)
    config: RunnableConfig = {"configurable": {"thread_id": "t1"}}

    paused = team.invoke(ask(TASK), config)
    assert "__interrupt__" in paused
    assert recorded(memory)[0] == []  # not finished while paused
    state = team.invoke(Command(resume="ship it"), config)

    assert approved(state)
    queries, utterances, replies = recorded(memory)
    assert len(queries) == 1
    assert [(u.agent, u.role) for u in utterances] == [
        ("planner", "planner"),
        ("coder", "coder"),
        ("approve", "approve"),
        ("critic", "critic"),
    ]
    assert ("approve", "coder") in replies and ("critic", "approve") in replies
    ids = [u.metadata["message_id"] for u in utterances]
    assert len(ids) == len(set(ids))


def test_static_interrupt_on_a_compiled_graph(memory: Memory) -> None:
    graph = build_team().compile(checkpointer=InMemorySaver(), interrupt_before=["critic"])
    team = with_memory(graph, memory, roles=["planner", "coder", "critic"], judge=approved)
    config: RunnableConfig = {"configurable": {"thread_id": "t2"}}
    team.invoke(ask(TASK), config)
    assert team.get_state(config).next == ("critic",)
    team.invoke(None, config)
    team.invoke(None, config)  # nothing left to run: records nothing more
    queries, utterances, _ = recorded(memory)
    assert len(queries) == 1 and len(utterances) == 3


def test_subgraph_nodes_are_wrapped_by_path(memory: Memory) -> None:
    class State(TypedDict):
        messages: Annotated[list[AnyMessage], add_messages]

    seen: dict[str, list[BaseMessage]] = {}

    def speaker(name: str, text: str) -> Any:
        def node(state: State) -> dict[str, Any]:
            seen[name] = list(state["messages"])
            return {"messages": [AIMessage(text)]}

        return node

    inner = StateGraph(State)
    inner.add_node("search", speaker("search", "found three sources on sorting"))
    inner.add_node("summarize", speaker("summarize", "merge sort is stable"))
    inner.add_edge(START, "search")
    inner.add_edge("search", "summarize")
    outer = StateGraph(State)
    outer.add_node("research", inner.compile())
    outer.add_node("review", speaker("review", "good summary"))
    outer.add_edge(START, "research")
    outer.add_edge("research", "review")
    roles = {"research/search": "researcher", "research/summarize": "writer", "review": "critic"}
    team = with_memory(outer, memory, roles=roles, judge=lambda s: True)
    team.invoke(ask("explain stable sorting"))
    team.invoke(ask("explain stable sorting algorithms"))

    assert isinstance(seen["search"][0], SystemMessage)
    assert "found three sources" in str(seen["search"][0].content)
    queries, utterances, replies = recorded(memory)
    assert len(queries) == 2
    latest = [u for u in utterances if u.query_id == max(queries, key=lambda q: q.updated_at).id]
    assert [(u.agent, u.role) for u in latest] == [
        ("research/search", "researcher"),
        ("research/summarize", "writer"),
        ("review", "critic"),
    ]
    assert ("research/summarize", "research/search") in replies
    assert ("review", "research/summarize") in replies


def test_a_subgraph_node_can_be_one_agent(memory: Memory) -> None:
    class State(TypedDict):
        messages: Annotated[list[AnyMessage], add_messages]

    inner = StateGraph(State)
    inner.add_node("think", lambda s: {"messages": [AIMessage("thinking")]})
    inner.add_node("say", lambda s: {"messages": [AIMessage("answer: 42")]})
    inner.add_edge(START, "think")
    inner.add_edge("think", "say")
    outer = StateGraph(State)
    outer.add_node("oracle", inner.compile())
    outer.add_edge(START, "oracle")
    team = with_memory(outer, memory, roles={"oracle": "oracle"}, judge=lambda s: True)
    team.invoke(ask("what is the answer"))
    state = team.invoke(ask("what is the answer to everything"))
    assert not any(isinstance(m, SystemMessage) for m in state["messages"])
    _, utterances, replies = recorded(memory)
    assert [u.content for u in utterances] == ["thinking", "answer: 42"] * 2
    assert {u.role for u in utterances} == {"oracle"}
    assert ("oracle", "oracle") in replies  # the second message follows the first


def test_two_nodes_share_a_role(memory: Memory) -> None:
    class State(TypedDict):
        messages: Annotated[list[AnyMessage], add_messages]

    shown: dict[str, list[str]] = {"first": [], "second": []}

    def coder(name: str) -> Any:
        def node(state: State) -> dict[str, Any]:
            head = state["messages"][0]
            shown[name].append(str(head.content) if isinstance(head, SystemMessage) else "")
            return {"messages": [AIMessage(f"{name} wrote a parser with a tokenizer")]}

        return node

    builder = StateGraph(State)
    builder.add_node("first", coder("first"))
    builder.add_node("second", coder("second"))
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    team = with_memory(
        builder, memory, roles={"first": "coder", "second": "coder"}, judge=lambda s: True
    )
    team.invoke(ask("write a parser for arithmetic"))
    team.invoke(ask("write a parser for arithmetic expressions"))

    assert shown["first"][1] and shown["first"][1] == shown["second"][1]
    _, utterances, _ = recorded(memory)
    assert {(u.agent, u.role) for u in utterances} == {("first", "coder"), ("second", "coder")}


def test_explicit_finish_without_a_judge(memory: Memory) -> None:
    team = with_memory(build_team(), memory, roles=["planner", "coder", "critic"])
    team.invoke(ask(TASK))
    assert recorded(memory)[0] == []
    report = team.finish(success=False, score=0.2)
    assert report is not None
    queries, _, _ = recorded(memory)
    assert queries[0].outcome.value == "failure" and queries[0].score == 0.2
    assert team.finish(success=True) is None  # nothing left to finish


def test_a_crashing_team_is_remembered_as_a_failure(memory: Memory) -> None:
    class State(TypedDict):
        messages: Annotated[list[AnyMessage], add_messages]
        tries: Annotated[int, operator.add]

    def worker(state: State) -> dict[str, Any]:
        return {"messages": [AIMessage("trying the risky step")], "tries": 1}

    def crash(state: State) -> dict[str, Any]:
        raise RuntimeError("tool server unreachable")

    builder = StateGraph(State)
    builder.add_node("worker", worker)
    builder.add_node("crash", crash)
    builder.add_edge(START, "worker")
    builder.add_edge("worker", "crash")
    team = with_memory(builder, memory, judge=lambda s: True)
    with pytest.raises(RuntimeError, match="unreachable"):
        team.invoke(ask("do the risky thing"))
    queries, _, _ = recorded(memory)
    assert queries[0].outcome.value == "failure"


def test_a_closed_store_degrades_to_a_team_without_memory(memory: Memory) -> None:
    team = team_with_memory(memory)
    memory.close()
    with pytest.warns(MemoryUnavailableWarning, match="without memory"):
        state = team.invoke(ask(TASK))
    assert approved(state)


def test_memory_failing_mid_run_warns_once_and_the_team_finishes(memory: Memory) -> None:
    team = team_with_memory(memory)
    team.invoke(ask(TASK))
    original = memory.recall

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("neo4j is down")

    memory.recall = broken  # type: ignore[method-assign]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = team.invoke(ask(SIMILAR))
    memory.recall = original  # type: ignore[method-assign]
    assert approved(state)
    gmem_warnings = [w for w in caught if issubclass(w.category, MemoryUnavailableWarning)]
    assert len(gmem_warnings) == 1 and "neo4j is down" in str(gmem_warnings[0].message)
    assert len(recorded(memory)[0]) == 1  # the degraded run is not stored


def test_a_failing_judge_warns_and_keeps_the_answer(memory: Memory) -> None:
    def judge(state: Any) -> bool:
        raise KeyError("verdict")

    team = with_memory(build_team(), memory, judge=judge)
    with pytest.warns(MemoryUnavailableWarning, match="judge failed"):
        state = team.invoke(ask(TASK))
    assert approved(state)
    assert recorded(memory)[0][0].outcome.value == "unknown"


def test_unknown_role_nodes_are_rejected(memory: Memory) -> None:
    with pytest.raises(ValueError, match="tester"):
        with_memory(build_team(), memory, roles=["planner", "tester"])


def test_an_interrupt_inside_a_subgraph_resumes_into_the_same_task(memory: Memory) -> None:
    class State(TypedDict):
        messages: Annotated[list[AnyMessage], add_messages]

    def check(state: State) -> dict[str, Any]:
        return {"messages": [AIMessage(f"human said {interrupt('ok?')}")]}

    inner = StateGraph(State)
    inner.add_node("think", lambda s: {"messages": [AIMessage("thinking")]})
    inner.add_node("check", check)
    inner.add_edge(START, "think")
    inner.add_edge("think", "check")
    outer = StateGraph(State)
    outer.add_node("sub", inner.compile())
    outer.add_node("after", lambda s: {"messages": [AIMessage("done")]})
    outer.add_edge(START, "sub")
    outer.add_edge("sub", "after")
    team = with_memory(
        outer.compile(checkpointer=InMemorySaver()),
        memory,
        roles={"sub/think": "thinker", "sub/check": "checker"},
        judge=lambda s: True,
    )
    config: RunnableConfig = {"configurable": {"thread_id": "nested"}}
    team.invoke(ask("think, then check with a human"), config)
    assert list(dict(team.get_subgraphs())) == ["sub"]  # LangGraph still sees the subgraph
    assert team.get_state(config, subgraphs=True).next == ("sub",)
    team.invoke(Command(resume="yes"), config)

    queries, utterances, _ = recorded(memory)
    assert len(queries) == 1
    assert [(u.agent, u.role, u.content) for u in utterances] == [
        ("sub/think", "thinker", "thinking"),
        ("sub/check", "checker", "human said yes"),
        ("after", "after", "done"),
    ]
