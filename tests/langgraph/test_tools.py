"""Memory tools an agent calls itself, run by a real LangGraph ``ToolNode``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage, HumanMessage, ToolMessage
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition

from gmem.memory import Memory
from graph_store import Insight
from integrations.langgraph import memory_tools
from tests.langgraph.conftest import call, script

FIXTURES = Path(__file__).parents[1] / "fixtures"
HEAT = "put a hot apple on the diningtable."


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def agent_graph(memory: Memory, *replies: Any) -> Any:
    tools = memory_tools(memory, role="actor")
    model = script(*replies)
    builder = StateGraph(State)
    builder.add_node("agent", lambda state: {"messages": [model.invoke(state["messages"])]})
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile()


def tool_results(state: dict[str, Any]) -> dict[str, Any]:
    return {
        str(m.name): json.loads(str(m.content))
        for m in state["messages"]
        if isinstance(m, ToolMessage)
    }


def lessons(memory: Memory) -> None:
    texts = [
        ("heat the apple in the microwave before placing it", []),
        ("look in the fridge for cold items first", []),
        ("the planner lists every receptacle", ["planner"]),
    ]
    vectors = memory.embedder.embed([t for t, _ in texts])
    memory.store.put_nodes(
        [
            Insight(text=t, roles=roles, embedding=v)
            for (t, roles), v in zip(texts, vectors, strict=True)
        ]
    )


def test_an_agent_recalls_searches_and_records(memory: Memory) -> None:
    memory.ingest_jsonl(FIXTURES / "trajectories.jsonl")
    lessons(memory)
    graph = agent_graph(
        memory,
        call("recall_memory", {"task": "put a hot apple on the dining table"}, "c1"),
        call("search_insights", {"query": "heat the apple in the microwave", "limit": 3}, "c2"),
        call(
            "record_lesson",
            {"task": "warm a mug", "lesson": "the microwave heats mugs", "success": True},
            "c3",
        ),
        "done",
    )
    state = graph.invoke({"messages": [HumanMessage("heat an apple")]})
    results = tool_results(state)
    recalled = results["recall_memory"]
    assert recalled["past_tasks"][0]["task"] == HEAT
    assert "heat apple 1 with microwave 1" in recalled["memory"]  # rendered for the actor
    found = [i["text"] for i in results["search_insights"]]
    assert found[0] == "heat the apple in the microwave before placing it"
    assert "the planner lists every receptacle" not in found  # another role's lesson
    recorded = results["record_lesson"]
    assert recorded["stored"] and recorded["outcome"] == "success"
    view = memory.show(recorded["query_id"])
    utterances = [u for steps in view.attempts.values() for u in steps]
    assert [(u.role, u.content) for u in utterances] == [("actor", "the microwave heats mugs")]


def test_tools_have_descriptions_and_schemas(memory: Memory) -> None:
    tools = {t.name: t for t in memory_tools(memory)}
    assert set(tools) == {"recall_memory", "search_insights", "record_lesson"}
    for tool in tools.values():
        assert tool.description and tool.args
    assert set(tools["record_lesson"].args) == {"task", "lesson", "success"}
