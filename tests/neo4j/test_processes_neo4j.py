"""Two gmem processes on one Neo4j see each other's tasks at once (issue 14, "Beyond one
machine"): nothing a process keeps for itself may hide what another process wrote.

The parent process opens its memory first, on an empty database, so that it knows of no
vector index when the other process writes the first task; a handle that trusted what it
saw at connect would then find nothing.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest

from gmem.config import MemoryConfig
from gmem.embedding import HashingEmbedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from graph_store.neo4j import Neo4jStore
from tests.neo4j.conftest import Neo4jSettings

CHILD_TASK = "put a clean mug in the cabinet"
PARENT_TASK = "heat an egg and put it on the table"


def _memory(settings: Neo4jSettings, uri: str) -> Memory:
    embedder = HashingEmbedder()
    cfg = MemoryConfig()
    store = Neo4jStore(uri, user=settings.user, password=settings.password)
    return Memory(store, embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg)


def _play(mem: Memory, text: str) -> str:
    with mem.task(text) as t:
        t.recall("actor")
        t.record("alice", "actor", f"I will {text}", action="go to the kitchen")
        t.record("bob", "critic", "that worked", observation="done")
        return t.finish(success=True).query_id


def _child(settings: Neo4jSettings, uri: str, inbox: Any, outbox: Any) -> None:
    mem = _memory(settings, uri)
    try:
        outbox.put(("finished", _play(mem, CHILD_TASK)))
        inbox.get(timeout=120)  # the parent has finished its own task
        outbox.put(("recalled", [q.id for q in mem.recall(PARENT_TASK).queries]))
    finally:
        mem.close()


@pytest.mark.parametrize("scheme", ["bolt", "neo4j"])
def test_two_processes_see_each_others_tasks_at_once(
    neo4j_settings: Neo4jSettings, scheme: str
) -> None:
    # neo4j:// is the routing scheme a cluster or Aura is reached by; a single server
    # answers it with a routing table that names itself.
    uri = scheme + "://" + neo4j_settings.uri.split("://", 1)[1]
    cleaner = neo4j_settings.open()
    cleaner.delete_all()
    cleaner.close()
    parent = _memory(neo4j_settings, uri)
    assert parent.recall(CHILD_TASK).queries == []
    ctx = multiprocessing.get_context("spawn")
    inbox, outbox = ctx.Queue(), ctx.Queue()
    child = ctx.Process(target=_child, args=(neo4j_settings, uri, inbox, outbox))
    child.start()
    try:
        what, child_query = outbox.get(timeout=120)
        assert what == "finished"
        # Straight after the other process committed: no wait, no reindex, no reopen.
        assert child_query in [q.id for q in parent.recall(CHILD_TASK).queries]
        parent_query = _play(parent, PARENT_TASK)
        inbox.put("go")
        what, seen = outbox.get(timeout=120)
        assert what == "recalled"
        assert parent_query in seen
        child.join(timeout=60)
        assert child.exitcode == 0
    finally:
        if child.is_alive():
            child.terminate()
        parent.close()
