"""A planner -> coder -> critic team on deterministic fake chat models, with gmem memory.

The team is an ordinary LangGraph ``StateGraph``; :func:`run_with_memory` wraps it with
:func:`integrations.langgraph.with_memory` and runs two similar tasks, so the second run
is given what the first one taught. Run it with::

    python -m integrations.langgraph.examples.team

The models are fakes (``FakeMessagesListChatModel``) so the example runs offline and the
same every time; swap in any LangChain chat model to use a real one.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, TypedDict, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from gmem.embedding import make_embedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from integrations.langgraph.wrap import MemoryGraph, with_memory

ROLES = ("planner", "coder", "critic")


class TeamState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def scripted_models() -> dict[str, BaseChatModel]:
    """One fake model per role with a fixed script (it cycles, so runs repeat exactly)."""
    return {
        "planner": FakeMessagesListChatModel(
            responses=[
                AIMessage(
                    "Plan: 1) parse the input file line by line, 2) count each word in a dict, "
                    "3) return the counts sorted by frequency."
                )
            ]
        ),
        "coder": FakeMessagesListChatModel(
            responses=[
                AIMessage(
                    "def count_words(path):\n    counts = {}\n    for line in open(path):\n"
                    "        for w in line.split():\n            counts[w] = counts.get(w, 0) + 1\n"
                    "    return sorted(counts.items(), key=lambda kv: -kv[1])"
                )
            ]
        ),
        "critic": FakeMessagesListChatModel(
            responses=[
                AIMessage(
                    "APPROVED: the function follows the plan; close the file with a "
                    "context manager next time."
                )
            ]
        ),
    }


def agent(
    name: str, model: BaseChatModel, seen: dict[str, list[list[BaseMessage]]] | None = None
) -> Callable[[TeamState], dict[str, Any]]:
    """A node that asks ``model`` and answers under ``name``; ``seen`` keeps its inputs."""

    def node(state: TeamState) -> dict[str, Any]:
        if seen is not None:
            seen.setdefault(name, []).append(list(state["messages"]))
        reply = model.invoke(state["messages"])
        return {"messages": [AIMessage(content=reply.content, name=name)]}

    node.__name__ = name
    return node


def build_team(
    models: Mapping[str, BaseChatModel] | None = None,
    seen: dict[str, list[list[BaseMessage]]] | None = None,
) -> StateGraph[Any]:
    """The team as a plain StateGraph builder: nothing in it knows about gmem."""
    models = models or scripted_models()
    team = StateGraph(TeamState)
    for role in ROLES:
        team.add_node(role, cast(Any, agent(role, models[role], seen)))
    team.add_edge(START, "planner")
    team.add_edge("planner", "coder")
    team.add_edge("coder", "critic")
    team.add_edge("critic", END)
    return team


def approved(state: Mapping[str, Any]) -> bool:
    """The critic's verdict is the team's outcome."""
    last = state["messages"][-1]
    return isinstance(last, BaseMessage) and "APPROVED" in str(last.content)


def team_with_memory(
    memory: Memory,
    models: Mapping[str, BaseChatModel] | None = None,
    seen: dict[str, list[list[BaseMessage]]] | None = None,
) -> MemoryGraph:
    return with_memory(build_team(models, seen), memory, roles=list(ROLES), judge=approved)


def run_with_memory(
    tasks: Sequence[str], store: str = ":memory:", embedder: str = "hashing"
) -> list[dict[str, Any]]:
    """Run ``tasks`` one after another through the team; returns what happened per task."""
    vectors = make_embedder(embedder)
    memory = Memory(store, embedder=vectors, llm=HeuristicLLM(vectors))
    seen: dict[str, list[list[BaseMessage]]] = {}
    team = team_with_memory(memory, seen=seen)
    results = []
    try:
        for text in tasks:
            seen.clear()
            state = team.invoke({"messages": [HumanMessage(text)]})
            run = team.last_run
            assert run is not None
            results.append(
                {
                    "task": text,
                    "answer": state["messages"][-1].content,
                    "memory_shown": dict(run.recalled),
                    "utterances": len(run.utterance_of),
                    "report": run.report,
                }
            )
        results[-1]["stats"] = memory.stats()
    finally:
        memory.close()
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--store", default=":memory:", help="gmem store path or URL")
    parser.add_argument(
        "--embedder",
        default="hashing",
        help="embedder spec (hashing is instant; minilm is the paper's)",
    )
    args = parser.parse_args(argv)
    tasks = [
        "Write a function that counts word frequencies in a text file",
        "Write a function that counts how often each word appears in a file",
    ]
    for i, result in enumerate(run_with_memory(tasks, args.store, args.embedder), 1):
        print(f"== run {i}: {result['task']}")
        for role, text in result["memory_shown"].items():
            shown = text.strip().replace("\n", "\n     ") if text else "(nothing yet)"
            print(f"  memory for {role}:\n     {shown}")
        print(f"  recorded {result['utterances']} utterances; answer: {result['answer']}")
        if "stats" in result:
            print(f"  store now holds {result['stats'].nodes}")


if __name__ == "__main__":
    main()
