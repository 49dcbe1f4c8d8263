"""Fixtures for the LangGraph integration: a fast in-memory gmem and fake chat models."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import Field

from gmem.embedding import HashingEmbedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from graph_store import EmbeddedStore
from graph_store.model import EdgeKind, NodeKind, QueryNode, Utterance


class ToolCallingFake(FakeMessagesListChatModel):
    """A scripted model that accepts tools, as ``create_react_agent`` and the supervisor
    and swarm builders require; the script decides when it calls them."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ToolCallingFake:
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        self.seen.append(list(messages))
        return super()._generate(messages, *args, **kwargs)


def script(*replies: str | AIMessage) -> ToolCallingFake:
    return ToolCallingFake(
        responses=[r if isinstance(r, BaseMessage) else AIMessage(r) for r in replies]
    )


def call(name: str, args: dict[str, Any], call_id: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id}])


@pytest.fixture
def memory() -> Iterator[Memory]:
    embedder = HashingEmbedder()
    mem = Memory(EmbeddedStore(":memory:"), embedder=embedder, llm=HeuristicLLM(embedder))
    yield mem
    mem.close()


def recorded(memory: Memory) -> tuple[list[QueryNode], list[Utterance], set[tuple[str, str]]]:
    """Every stored query, every utterance (in step order) and REPLIES_TO as
    (agent of the reply, agent replied to) pairs."""
    queries = [q for q in memory.store.list_nodes(NodeKind.QUERY) if isinstance(q, QueryNode)]
    utterances = [
        u for u in memory.store.list_nodes(NodeKind.UTTERANCE) if isinstance(u, Utterance)
    ]
    utterances.sort(key=lambda u: (u.created_at, u.step))
    by_id = {u.id: u for u in utterances}
    edges = memory.store.get_edges(list(by_id), [EdgeKind.REPLIES_TO])
    pairs = {(by_id[e.src].agent, by_id[e.dst].agent) for e in edges}
    return queries, utterances, pairs
