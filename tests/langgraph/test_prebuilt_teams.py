"""The prebuilt multi-agent patterns (``langgraph-supervisor``, ``langgraph-swarm``) wrapped
whole: handoffs travel as ``Command``s raised out of agent subgraphs, and are recorded."""

from __future__ import annotations

import warnings

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph_supervisor import create_supervisor
from langgraph_swarm import create_handoff_tool, create_swarm

from gmem.memory import Memory
from integrations.langgraph import with_memory
from tests.langgraph.conftest import call, recorded, script
from tests.langgraph.test_prebuilt import add, calculator

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # moved to langchain.agents in LangGraph 1.x
    from langgraph.prebuilt import create_react_agent


def test_supervisor_team(memory: Memory) -> None:
    coder = calculator(script("I added them: 7"), name="coder")
    boss = script(call("transfer_to_coder", {}, "h-1"), "The coder says 7. Done.")
    builder = create_supervisor([coder], model=boss)
    team = with_memory(
        builder,
        memory,
        roles={"supervisor": "supervisor", "coder": "coder"},
        judge=lambda s: "Done" in str(s["messages"][-1].content),
    )
    state = team.invoke({"messages": [HumanMessage("add 3 and 4")]})
    assert str(state["messages"][-1].content).endswith("Done.")

    queries, utterances, replies = recorded(memory)
    assert queries[0].outcome.value == "success"
    roles = [u.role for u in utterances]
    assert roles[0] == "supervisor" and "coder" in roles and roles[-1] == "supervisor"
    assert utterances[0].action == "transfer_to_coder({})"
    assert ("coder", "supervisor") in replies


def test_swarm_team_with_handoffs(memory: Memory) -> None:
    alice_model = script(call("transfer_to_bob", {}, "h-2"))
    bob_model = script("Bob here: the answer is 12")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alice = create_react_agent(
            alice_model, [create_handoff_tool(agent_name="bob")], name="alice"
        )
        bob = create_react_agent(bob_model, [add], name="bob")
    builder = create_swarm([alice, bob], default_active_agent="alice")
    graph = builder.compile(checkpointer=InMemorySaver())
    team = with_memory(graph, memory, roles=["alice", "bob"], judge=lambda s: True)
    config: RunnableConfig = {"configurable": {"thread_id": "swarm-1"}}
    team.invoke({"messages": [HumanMessage("what is 5 + 7")]}, config)

    state = team.get_state(config).values
    assert not any(isinstance(m, SystemMessage) for m in state["messages"])
    assert state["messages"][-1].content == "Bob here: the answer is 12"
    _, utterances, replies = recorded(memory)
    assert [(u.role, u.action) for u in utterances] == [
        ("alice", "transfer_to_bob({})"),
        ("bob", None),
    ]
    assert "Successfully transferred" in (utterances[0].observation or "")
    assert ("bob", "alice") in replies


def test_a_supervisor_member_s_tool_calls_are_recorded_in_last_message_mode(
    memory: Memory,
) -> None:
    # The default output_mode="last_message" hands only the member's final answer back to
    # the team state; its tool call and the tool's result happen inside the member.
    coder = calculator(
        script(call("add", {"a": 3, "b": 4}, "c-1"), "I added them: 7"), name="coder"
    )
    boss = script(call("transfer_to_coder", {}, "h-1"), "The coder says 7. Done.")
    builder = create_supervisor([coder], model=boss)
    team = with_memory(builder, memory, roles={"supervisor": "supervisor", "coder": "coder"})
    state = team.invoke({"messages": [HumanMessage("add 3 and 4")]})
    assert not any(m.type == "tool" and m.name == "add" for m in state["messages"])
    team.finish(True)

    _, utterances, _ = recorded(memory)
    coder_steps = [u for u in utterances if u.role == "coder"]
    assert coder_steps[0].action == 'add({"a": 3, "b": 4})'
    assert coder_steps[0].observation == "7"
    assert [u.content for u in coder_steps[1:2]] == ["I added them: 7"]
    # In the order things happened: handoff, the member's call, its answer, the boss.
    order = [u.action or u.content for u in utterances]
    assert order.index("transfer_to_coder({})") < order.index('add({"a": 3, "b": 4})')
    assert order.index('add({"a": 3, "b": 4})') < order.index("I added them: 7")
    assert order[-1] == "The coder says 7. Done."


def test_roles_naming_unknown_nodes_list_the_valid_ones(memory: Memory) -> None:
    coder = calculator(script("7"), name="coder")
    builder = create_supervisor([coder], model=script("done"))
    with pytest.raises(ValueError) as raised:
        with_memory(builder, memory, roles={"planner": "planner", "coder": "coder"})
    message = str(raised.value)
    assert "planner" in message
    assert "valid nodes: coder, supervisor, supervisor/agent, supervisor/tools" in message
