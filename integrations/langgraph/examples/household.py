"""The demo's household world played by LangGraph teams that read their memory as text.

The example team in :mod:`integrations.langgraph.examples.team` shows the plumbing, but its
scripted models ignore what they are told, so memory cannot change how it does. Here the
agents are the demo's rule-based policy (:class:`gmem.demo.team.OfflineTeam`) inside
LangGraph nodes, and the planner learns from memory the only way an LLM agent can: by
reading the block gmem puts in front of its prompt. It takes the actions of recalled
successes as a plan and those of recalled failures as warnings, so with memory the team
solves more tasks, offline and the same on every run.

Two teams play the same world:

- :func:`build_team`: planner -> actor -> verifier, the verifier sending the actor back
  for the next step or the planner for a revised plan;
- :func:`build_supervisor_team`: ``langgraph-supervisor``'s prebuilt supervisor handing
  over to a planner agent and an actor agent (actor and verifier in one subgraph).

The actor acts through a tool call (``act({"command": ...})``) whose result is the world's
observation, which is how gmem records actions and observations from a LangGraph run.
"""

from __future__ import annotations

import json
import re
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.graph import END, START, MessagesState, StateGraph

from gmem.demo.hints import MemoryHints
from gmem.demo.team import OfflineTeam, Verifier
from gmem.demo.world import Task, World, make_tasks

ROLES = ("planner", "actor", "verifier")
ACT = "act"
#: Supersteps one task may take: an episode is at most 20 actions, each an actor and a
#: verifier step, plus revised plans and the supervisor's turns.
RECURSION_LIMIT = 200

_COMMAND = re.compile(r'"command":\s*"((?:[^"\\]|\\.)*)"')


def hints_from_prompt(text: str) -> MemoryHints:
    """What the planner takes from its memory block: recalled successes' actions as plans,
    recalled failures' actions as warnings, and the listed lessons.

    The block is read line by line by its headings ("Successful attempt", "Failed
    attempt", "Lessons"), as a model would read it; actions are the ``act`` tool calls it
    shows. Text it does not recognise is ignored.
    """
    plans: list[list[str]] = []
    warnings: list[str] = []
    insights: list[str] = []
    section = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("Successful attempt"):
            section = "success"
            plans.append([])
        elif stripped.startswith("Failed attempt"):
            section = "failure"
        elif stripped.startswith("Lessons"):
            section = "lessons"
        elif section == "lessons" and stripped.startswith("- "):
            insights.append(stripped[2:])
        else:
            commands = [json.loads(f'"{c}"') for c in _COMMAND.findall(stripped)]
            if section == "success" and plans:
                plans[-1].extend(commands)
            elif section == "failure":
                warnings.extend(commands)
    return MemoryHints([p for p in plans if p], warnings, insights)


def memory_text(messages: Sequence[BaseMessage]) -> str:
    """The system messages in front of a node's input: where gmem puts its memory block."""
    return "\n".join(str(m.content) for m in messages if isinstance(m, SystemMessage))


def task_text(messages: Sequence[BaseMessage]) -> str:
    return next(str(m.content) for m in messages if isinstance(m, HumanMessage))


def planned(messages: Sequence[BaseMessage]) -> bool:
    """Whether the planner has spoken in this run (then its next turn is a revision)."""
    return any(isinstance(m, AIMessage) and m.name == "planner" for m in messages)


@dataclass
class Episode:
    """One task being played: the world's state and the team's."""

    task: Task
    seed: int
    team: OfflineTeam
    verifier: Verifier
    observation: str
    action: str = ""
    done: bool = False
    success: bool = False
    revision: str | None = None
    hints: MemoryHints = field(default_factory=MemoryHints)


class Household:
    """The world the team's nodes share, and the episode being played in it.

    Tasks are those of :func:`gmem.demo.world.make_tasks`; the ``i``-th task is played with
    seed ``i``, so a team with memory and one without draw the same random numbers and
    differ only in what memory told them.
    """

    def __init__(self, n_tasks: int, seed: int = 0) -> None:
        self.tasks = make_tasks(n_tasks, seed)
        self._index = {t.text: i for i, t in enumerate(self.tasks)}
        self.world = World()
        self.episode: Episode | None = None

    def begin(self, text: str, hints: MemoryHints) -> str:
        """Start the task named by ``text``; returns the planner's plan."""
        i = self._index[text]
        task = self.tasks[i]
        team = OfflineTeam(name="langgraph")
        observation = self.world.reset(task, i)
        self.episode = Episode(task, i, team, Verifier(task.text), observation, hints=hints)
        return team.plan(task.text, observation, hints, i)

    def current(self) -> Episode:
        if self.episode is None:
            raise RuntimeError("no task started: the planner runs first")
        return self.episode

    # ---- the three agents, as LangGraph nodes ------------------------------------------
    def planner(self, state: MessagesState) -> dict[str, Any]:
        messages = state["messages"]
        if planned(messages):
            episode = self.current()
            words, episode.revision = episode.revision or "Carry on with the plan.", None
        else:
            words = self.begin(task_text(messages), hints_from_prompt(memory_text(messages)))
        return {"messages": [AIMessage(words, name="planner")]}

    def actor(self, _state: MessagesState) -> dict[str, Any]:
        episode = self.current()
        action, words = episode.team.act(episode.observation, self.world.admissible_actions())
        observation, _, done, success = self.world.step(action)
        episode.observation, episode.action = observation, action
        episode.done, episode.success = done, success
        call_id = f"act-{uuid.uuid4().hex[:12]}"
        call = {"name": ACT, "args": {"command": action}, "id": call_id, "type": "tool_call"}
        return {
            "messages": [
                AIMessage(words, name="actor", tool_calls=[call]),
                ToolMessage(observation, tool_call_id=call_id, name=ACT),
            ]
        }

    def verifier(self, _state: MessagesState) -> dict[str, Any]:
        episode = self.current()
        verdict = episode.verifier.check(
            episode.action, episode.observation, episode.done, episode.success
        )
        if verdict is None:
            return {"messages": []}
        if not episode.done:
            episode.revision = episode.team.hear(verdict)
        return {"messages": [AIMessage(verdict.text, name="verifier")]}

    def next_step(self, _state: MessagesState) -> str:
        """After the verifier: the end, a revised plan, or the next action."""
        episode = self.current()
        if episode.done:
            return END
        return "planner" if episode.revision else "actor"

    def solved(self, _state: MessagesState) -> bool:
        """The judge: the world says the goal holds."""
        return self.current().success


def build_team(household: Household) -> StateGraph[Any]:
    """planner -> actor -> verifier, looping back to the actor or to the planner."""
    team = StateGraph(MessagesState)
    team.add_node("planner", cast(Any, household.planner))
    team.add_node("actor", cast(Any, household.actor))
    team.add_node("verifier", cast(Any, household.verifier))
    team.add_edge(START, "planner")
    team.add_edge("planner", "actor")
    team.add_edge("actor", "verifier")
    team.add_conditional_edges("verifier", household.next_step, ["actor", "planner", END])
    return team


class RuleModel(BaseChatModel):
    """A chat model whose reply is a function of the conversation (the supervisor's rule).

    It accepts tools so that the prebuilt supervisor can bind its handoff tools to it.
    """

    decide: Callable[[list[BaseMessage]], AIMessage]

    @property
    def _llm_type(self) -> str:
        return "gmem-example-rule"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> RuleModel:  # noqa: ARG002
        return self  # the rule knows the handoff tools by name

    def _generate(  # the rule needs only the conversation
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,  # noqa: ARG002
        run_manager: CallbackManagerForLLMRun | None = None,  # noqa: ARG002
        **kwargs: Any,  # noqa: ARG002
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.decide(messages))])


def _handoff(agent: str) -> AIMessage:
    call = {"name": f"transfer_to_{agent}", "args": {}, "id": f"handoff-{uuid.uuid4().hex[:12]}"}
    return AIMessage("", tool_calls=[call])


def build_supervisor_team(household: Household) -> StateGraph[Any]:
    """``langgraph-supervisor``'s supervisor over a planner agent and an actor agent."""
    from langgraph_supervisor import create_supervisor

    planner = StateGraph(MessagesState)
    planner.add_node("plan", cast(Any, household.planner))
    planner.add_edge(START, "plan")
    planner.add_edge("plan", END)

    def actor_continues(_state: MessagesState) -> str:
        episode = household.current()
        return END if episode.done or episode.revision else "act"

    actor = StateGraph(MessagesState)
    actor.add_node("act", cast(Any, household.actor))
    actor.add_node("check", cast(Any, household.verifier))
    actor.add_edge(START, "act")
    actor.add_edge("act", "check")
    actor.add_conditional_edges("check", actor_continues, ["act", END])

    def route(messages: list[BaseMessage]) -> AIMessage:
        if not planned(messages) or household.current().revision:
            return _handoff("planner")
        episode = household.current()
        if not episode.done:
            return _handoff("actor")
        verdict = "solved" if episode.success else "not solved"
        return AIMessage(f"The team is done: the task is {verdict}.")

    with warnings.catch_warnings():  # the prebuilt still builds on create_react_agent
        warnings.simplefilter("ignore", DeprecationWarning)
        return create_supervisor(
            [planner.compile(name="planner"), actor.compile(name="actor")],
            model=RuleModel(decide=route),
            output_mode="full_history",
        )


__all__ = [
    "RECURSION_LIMIT",
    "ROLES",
    "Household",
    "RuleModel",
    "build_supervisor_team",
    "build_team",
    "hints_from_prompt",
]
