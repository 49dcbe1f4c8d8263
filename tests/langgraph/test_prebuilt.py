"""ReAct agents and tool nodes as team members: tool calls become recorded actions."""

from __future__ import annotations

import warnings
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages

from gmem.memory import Memory
from integrations.langgraph import with_memory
from tests.langgraph.conftest import ToolCallingFake, call, recorded, script

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # moved to langchain.agents in LangGraph 1.x
    from langgraph.prebuilt import create_react_agent


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def calculator(model: ToolCallingFake, name: str = "calculator") -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_react_agent(model, [add], name=name)


def test_react_agent_member_records_its_tool_call(memory: Memory) -> None:
    model = script(call("add", {"a": 2, "b": 3}, "call-1"), "The sum is 5")
    builder = StateGraph(State)
    builder.add_node("calculator", calculator(model))
    builder.add_edge(START, "calculator")
    team = with_memory(
        builder,
        memory,
        roles={"calculator": "mathematician"},
        judge=lambda s: "5" in str(s["messages"][-1].content),
    )
    state = team.invoke({"messages": [HumanMessage("what is 2 + 3")]})
    assert state["messages"][-1].content == "The sum is 5"

    queries, utterances, replies = recorded(memory)
    assert queries[0].outcome.value == "success"
    assert [(u.role, u.action, u.observation) for u in utterances] == [
        ("mathematician", 'add({"a": 2, "b": 3})', "5"),
        ("mathematician", None, None),
    ]
    assert ("calculator", "calculator") in replies
    # The tool result is part of the first utterance, so every message maps to a record.
    assert len(team.last_run.utterance_of) == 3  # type: ignore[union-attr]

    model.seen.clear()
    team.invoke({"messages": [HumanMessage("what is 2 + 4")]})
    first = model.seen[0][0]
    assert isinstance(first, SystemMessage) and "what is 2 + 3" in str(first.content)
    assert first.content == team.last_run.recalled["mathematician"]  # type: ignore[union-attr]


def test_a_tool_node_in_the_parent_graph_replies_to_the_call(memory: Memory) -> None:
    from langgraph.prebuilt import ToolNode, tools_condition

    model = script(call("add", {"a": 1, "b": 1}, "call-9"), "1 + 1 = 2")

    def agent(state: State) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(State)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([add]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    team = with_memory(builder, memory, roles=["agent"], judge=lambda s: True)
    team.invoke({"messages": [HumanMessage("add one and one")]})

    _, utterances, replies = recorded(memory)
    assert [(u.agent, u.role) for u in utterances] == [
        ("agent", "agent"),
        ("tools", "tools"),
        ("agent", "agent"),
    ]
    assert utterances[0].action == 'add({"a": 1, "b": 1})'
    assert ("tools", "agent") in replies and ("agent", "tools") in replies
