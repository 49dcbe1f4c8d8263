"""The household example: agents that read their memory from the prompt, in LangGraph."""

from __future__ import annotations

from langchain_core.messages import HumanMessage

from gmem.memory import Memory
from integrations.langgraph import with_memory
from integrations.langgraph.examples.household import (
    RECURSION_LIMIT,
    ROLES,
    Household,
    build_supervisor_team,
    build_team,
    hints_from_prompt,
)

BLOCK = """Memory for the planner from past tasks similar to: put a clean mug in the cabinet
Lessons learned:
- For tasks like "x": actor should "clean mug with sinkbasin" first.
Successful attempt at "put a clean bowl in the cabinet." (3 of 9 steps):
  actor (actor): [action: act({"command": "go to cabinet 1"})] -> You walk to the cabinet 1.
  actor (actor): [action: act({"command": "take bowl 1 from cabinet 1"})] -> You pick it up.
Failed attempt (avoid repeating it) at "put a bowl in the cabinet." (1 of 4 steps):
  actor (actor): [action: act({"command": "use desklamp 1"})] -> You turn on the desklamp 1.
"""


def test_the_planner_reads_plans_warnings_and_lessons_from_its_memory_block() -> None:
    hints = hints_from_prompt(BLOCK)
    assert hints.plans == [["go to cabinet 1", "take bowl 1 from cabinet 1"]]
    assert hints.warnings == ["use desklamp 1"]
    assert hints.insights == ['For tasks like "x": actor should "clean mug with sinkbasin" first.']
    assert not hints_from_prompt("(no memory)")


def test_with_memory_the_team_records_actions_and_plans_from_recalled_successes() -> None:
    world = Household(16, seed=1)
    memory = Memory(":memory:", embedder="hashing")
    team = with_memory(build_team(world), memory, roles=list(ROLES), judge=world.solved)
    plans = []
    for task in world.tasks:
        state = team.invoke({"messages": [HumanMessage(task.text)]}, {"recursion_limit": 200})
        plans.append(str(state["messages"][1].content))
    utterances = [
        u
        for q in memory.queries()
        for attempt in memory.show(q.id).attempts.values()
        for u in attempt
        if u.role == "actor"
    ]
    assert utterances and all(u.action and u.action.startswith("act(") for u in utterances)
    assert all(u.observation for u in utterances)
    assert any("as a recalled success did" in p for p in plans)
    assert not any("as a recalled success did" in p for p in plans[:1])
    memory.close()


def test_the_prebuilt_supervisor_team_plays_a_task_to_its_end() -> None:
    world = Household(2, seed=3)
    memory = Memory(":memory:", embedder="hashing")
    roles = {"supervisor": "supervisor", "planner": "planner", "actor": "actor"}
    team = with_memory(build_supervisor_team(world), memory, roles=roles, judge=world.solved)
    for task in world.tasks:
        state = team.invoke(
            {"messages": [HumanMessage(task.text)]}, {"recursion_limit": RECURSION_LIMIT}
        )
        assert world.current().done
        assert str(state["messages"][-1].content).startswith("The team is done")
    assert team.last_run is not None and set(team.last_run.recalled) == set(roles)
    assert memory.stats().nodes["Query"] == 2
    memory.close()
