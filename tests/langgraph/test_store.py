"""``GmemStore`` against the operations LangGraph's own store tests exercise."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.store.base import BaseStore, InvalidNamespaceError, PutOp
from rich.console import Console

from gmem.cli.render import stats_table
from gmem.embedding import HashingEmbedder
from gmem.memory import Memory
from graph_store import EmbeddedStore
from integrations.langgraph import GmemStore


@pytest.fixture
def store() -> Iterator[GmemStore]:
    s = GmemStore(EmbeddedStore(":memory:"), embedder=HashingEmbedder())
    yield s
    s.close()


def test_put_get_update_delete(store: GmemStore) -> None:
    store.put(("users", "alice"), "prefs", {"theme": "dark", "langs": ["py"]})
    item = store.get(("users", "alice"), "prefs")
    assert item is not None and item.value == {"theme": "dark", "langs": ["py"]}
    assert item.namespace == ("users", "alice") and item.key == "prefs"
    created = item.created_at

    store.put(("users", "alice"), "prefs", {"theme": "light"})
    updated = store.get(("users", "alice"), "prefs")
    assert updated is not None and updated.value == {"theme": "light"}
    assert updated.created_at == created and updated.updated_at >= item.updated_at

    store.delete(("users", "alice"), "prefs")
    assert store.get(("users", "alice"), "prefs") is None
    assert store.get(("users", "bob"), "prefs") is None
    assert store.list_namespaces() == []  # the emptied namespace is gone from gmem too
    assert store.store.namespaces() == []


def test_namespaces_map_onto_gmem_namespaces(store: GmemStore) -> None:
    store.put(("team-a", "facts"), "k", {"v": 1})
    assert store.store.namespaces() == ["langgraph:team-a.facts"]
    assert store.gmem_namespace(("team-a", "facts")) == "langgraph:team-a.facts"
    assert store.langgraph_namespace("langgraph:team-a.facts") == ("team-a", "facts")
    with pytest.raises(InvalidNamespaceError):
        store.put(("the", "thing.about"), "foo", {})
    with pytest.raises(InvalidNamespaceError):
        store.put(("some", ""), "foo", {})
    with pytest.raises(InvalidNamespaceError):
        store.put(("x" * 300,), "foo", {})
    # The reserved top-level "langgraph" label is refused by put, allowed through batch.
    with pytest.raises(InvalidNamespaceError):
        store.put(("langgraph", "foo"), "bar", {"a": 1})
    store.batch([PutOp(("langgraph", "foo"), "bar", {"a": 1})])
    assert store.search(("langgraph", "foo"))[0].value == {"a": 1}


def test_search_with_filters_and_pagination(store: GmemStore) -> None:
    docs = [
        ("doc1", {"text": "red apple", "color": "red", "score": 4.5, "meta": {"n": 1}}),
        ("doc2", {"text": "red car", "color": "red", "score": 3.0, "meta": {"n": 2}}),
        ("doc3", {"text": "green apple", "color": "green", "score": 4.0, "meta": {"n": 1}}),
        ("doc4", {"text": "blue car", "color": "blue", "score": 3.5, "meta": {"n": 2}}),
    ]
    for key, value in docs:
        store.put(("test",), key, value)
    store.put(("other",), "doc5", {"color": "red"})

    assert [i.key for i in store.search(("test",))] == ["doc1", "doc2", "doc3", "doc4"]
    assert [i.key for i in store.search(("test",), filter={"color": "red"})] == ["doc1", "doc2"]
    assert [i.key for i in store.search((), filter={"color": "red"})] == ["doc5", "doc1", "doc2"]
    assert [i.key for i in store.search(("test",), filter={"score": {"$gt": 3.2}})] == [
        "doc1",
        "doc3",
        "doc4",
    ]
    assert [
        i.key
        for i in store.search(("test",), filter={"score": {"$lte": 3.5}, "color": {"$ne": "blue"}})
    ] == ["doc2"]
    assert [i.key for i in store.search(("test",), filter={"meta": {"n": 2}})] == ["doc2", "doc4"]
    assert [i.key for i in store.search(("test",), limit=2, offset=1)] == ["doc2", "doc3"]
    assert store.search(("nothing",)) == []


def test_vector_search_orders_by_similarity(store: GmemStore) -> None:
    store.put(("test",), "doc1", {"text": "zany zebra Xerxes"})
    store.put(("test",), "doc2", {"text": "something about dogs"})
    store.put(("test",), "doc3", {"text": "text about birds"})
    first = store.search(("test",), query="zany Xerxes zebra")
    assert first[0].key == "doc1"
    assert first[0].score is not None and first[0].score > (first[1].score or 0.0)
    initial = first[0].score

    store.put(("test",), "doc1", {"text": "new text about dogs"})
    after = {i.key: i.score for i in store.search(("test",), query="zany Xerxes zebra")}
    assert (after["doc1"] or 0.0) < initial
    assert store.search(("test",), query="new text about dogs")[0].key == "doc1"

    store.put(("test",), "doc4", {"text": "new text about dogs"}, index=False)
    top = store.search(("test",), query="new text about dogs", limit=3)
    assert "doc4" not in [i.key for i in top]
    everything = store.search(("test",), query="new text about dogs", limit=10)
    assert everything[-1].key == "doc4" and everything[-1].score is None

    filtered = store.search(("test",), query="dogs", filter={"text": "something about dogs"})
    assert [i.key for i in filtered] == ["doc2"]
    assert len(store.search(("test",), query="dogs", limit=2, offset=2)) == 2
    assert len(store.search(("test",), query="")) == 4  # an empty query lists


def test_several_index_fields_take_the_best_vector(store: GmemStore) -> None:
    store.put(
        ("docs",), "a", {"title": "apples", "body": "orchards in autumn"}, index=["title", "body"]
    )
    store.put(
        ("docs",), "b", {"title": "cars", "body": "engines and wheels"}, index=["title", "body"]
    )
    assert store.search(("docs",), query="orchards autumn")[0].key == "a"
    assert store.search(("docs",), query="engines wheels")[0].key == "b"
    store.put(("docs",), "a", {"title": "apples", "body": "orchards"}, index=["title"])
    assert store.search(("docs",), query="orchards autumn", limit=1)[0].key in {"a", "b"}
    store.delete(("docs",), "a")
    assert [i.key for i in store.search(("docs",), query="apples")] == ["b"]


def test_deletes_remove_items_and_their_vector_nodes(store: GmemStore) -> None:
    for i in range(6):
        store.put(("bulk",), f"k{i}", {"text": f"item number {i}"})
    for i in range(5):
        store.delete(("bulk",), f"k{i}")
    assert store.store.count("langgraph:bulk").nodes == {"Item": 1}
    assert [i.key for i in store.search(("bulk",), query="item number")] == ["k5"]

    store.put(("multi",), "m", {"a": "one", "b": "two", "c": "three"}, index=["a", "b", "c"])
    assert store.store.count("langgraph:multi").nodes == {"Item": 3}
    store.put(("multi",), "m", {"a": "one", "b": "two"}, index=["a", "b"])
    assert store.store.count("langgraph:multi").nodes == {"Item": 2}
    assert [i.key for i in store.search(("multi",))] == ["m"]
    store.delete(("multi",), "m")
    store.delete(("multi",), "m")  # deleting what is gone is no error
    assert store.store.namespaces() == ["langgraph:bulk"]


def test_keys_that_look_like_vector_nodes_stay_apart(store: GmemStore) -> None:
    store.put(("ns",), "k", {"a": "x", "b": "y"}, index=["a", "b"])
    store.put(("ns",), "k\x001", {"own": True})
    store.put(("ns",), "k", {"a": "x"}, index=["a"])
    item = store.get(("ns",), "k\x001")
    assert item is not None and item.value == {"own": True}
    assert sorted(i.key for i in store.search(("ns",))) == ["k", "k\x001"]


def test_store_items_are_not_team_memory(tmp_path: Any) -> None:
    embedder = HashingEmbedder()
    graph_store = EmbeddedStore(tmp_path / "memory.db")
    memory = Memory(graph_store, embedder=embedder)
    store = GmemStore(graph_store, embedder=embedder)
    store.put(("notes",), "milk", {"text": "buy milk"})
    store.put(("notes",), "eggs", {"title": "eggs", "text": "buy eggs"}, index=["title", "text"])
    assert memory.stats().nodes == {"Item": 3}
    table = Console(width=120, record=True)
    table.print(stats_table(memory.stats()))
    rows = {
        line.split()[1]: line
        for line in table.export_text().splitlines()
        if line.count("│") >= 3 and len(line.split()) > 2
    }
    assert "0" in rows["interactions"].split() and "3" in rows["store"].split()
    assert memory.stats("langgraph:notes").nodes.get("Utterance", 0) == 0
    assert memory.queries() == [] and memory.insights() == []
    assert memory.recall("buy milk", namespace="langgraph:notes").is_empty

    memory.ingest(
        {
            "task": "buy milk",
            "success": True,
            "steps": [{"agent": "a", "role": "shopper", "content": "went to the shop"}],
        }
    )
    counts = memory.stats()
    assert counts.nodes["Utterance"] == 1 and counts.nodes["Item"] == 3
    recalled = memory.recall("buy milk")
    assert [q.task for q in recalled.queries] == ["buy milk"]
    steps = [s.content for t in recalled.trajectories for s in t.steps]
    assert steps == ["went to the shop"]
    store.close()


def test_list_namespaces_prefix_suffix_depth(store: GmemStore) -> None:
    namespaces = [
        ("a", "b", "c"),
        ("a", "b", "d", "e"),
        ("a", "b", "d", "i"),
        ("a", "b", "f"),
        ("a", "c", "f"),
        ("b", "a", "f"),
        ("users", "123"),
        ("users", "456", "settings"),
        ("admin", "users", "789"),
    ]
    for i, ns in enumerate(namespaces):
        store.put(ns, f"id_{i}", {"data": f"value_{i:02d}"})

    assert store.list_namespaces(prefix=("a", "b")) == [
        ("a", "b", "c"),
        ("a", "b", "d", "e"),
        ("a", "b", "d", "i"),
        ("a", "b", "f"),
    ]
    assert store.list_namespaces(suffix=("f",)) == [
        ("a", "b", "f"),
        ("a", "c", "f"),
        ("b", "a", "f"),
    ]
    assert store.list_namespaces(prefix=("a",), suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f")]
    assert store.list_namespaces(prefix=("a", "b"), max_depth=3) == [
        ("a", "b", "c"),
        ("a", "b", "d"),
        ("a", "b", "f"),
    ]
    assert store.list_namespaces(prefix=("a", "b"), limit=2) == [
        ("a", "b", "c"),
        ("a", "b", "d", "e"),
    ]
    assert store.list_namespaces(prefix=("a", "b"), offset=2) == [
        ("a", "b", "d", "i"),
        ("a", "b", "f"),
    ]
    assert store.list_namespaces(prefix=("a", "*", "f")) == [("a", "b", "f"), ("a", "c", "f")]
    assert store.list_namespaces(suffix=("*", "f")) == [
        ("a", "b", "f"),
        ("a", "c", "f"),
        ("b", "a", "f"),
    ]
    assert store.list_namespaces(prefix=("nonexistent",)) == []
    assert store.list_namespaces(prefix=("users", "123")) == [("users", "123")]
    assert store.list_namespaces(max_depth=1) == [("a",), ("admin",), ("b",), ("users",)]


def test_async_operations(store: GmemStore) -> None:
    async def scenario() -> None:
        await asyncio.gather(
            *(store.aput(("a",), f"k{i}", {"text": f"note {i}"}) for i in range(5))
        )
        item = await store.aget(("a",), "k3")
        assert item is not None and item.value == {"text": "note 3"}
        hits = await store.asearch(("a",), query="note 3")
        assert hits[0].key == "k3"
        assert await store.alist_namespaces() == [("a",)]
        await store.adelete(("a",), "k3")
        assert await store.aget(("a",), "k3") is None

    asyncio.run(scenario())


def test_the_store_sits_beside_team_memory(tmp_path: Any) -> None:
    embedder = HashingEmbedder()
    graph_store = EmbeddedStore(tmp_path / "memory.db")
    memory = Memory(graph_store, embedder=embedder)
    store = GmemStore(graph_store, embedder=embedder)

    class State(TypedDict):
        messages: Annotated[list[AnyMessage], add_messages]

    def remember(state: State, *, store: BaseStore) -> dict[str, Any]:
        store.put(("notes",), "last", {"text": str(state["messages"][-1].content)})
        return {"messages": [AIMessage("noted")]}

    builder = StateGraph(State)
    builder.add_node("remember", remember)
    builder.add_edge(START, "remember")
    graph = builder.compile(store=store)
    graph.invoke({"messages": [HumanMessage("buy milk")]})
    assert store.search(("notes",), query="milk")[0].value == {"text": "buy milk"}
    # Team memory does not see store items, and the store lists only its own namespaces.
    assert memory.queries() == [] and memory.recall("buy milk").is_empty
    memory.ingest(
        {"task": "t", "success": True, "steps": [{"agent": "a", "role": "r", "content": "c"}]}
    )
    assert store.list_namespaces() == [("notes",)]
    store.close()
