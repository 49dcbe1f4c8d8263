"""How ``GmemStore`` talks to the graph store: filters and pages pushed into the listing,
concurrent async calls answered by one batch, and a batch redone when another writer
changed what it read. On both gmem backends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.base import PutOp, SearchOp

import integrations.langgraph.store as store_module
from gmem.embedding import HashingEmbedder
from graph_store import GraphStore
from graph_store.ops import GetNodes, ListNodes
from integrations.langgraph import GmemStore
from tests.conftest import BACKENDS, open_backend


class Spy:
    """Records every batch the GmemStore sends to the graph store."""

    def __init__(self, graph: GraphStore) -> None:
        self.graph = graph
        self.batches: list[list[Any]] = []
        self.original = graph.batch
        graph.batch = self  # type: ignore[method-assign]

    def __call__(self, ops: Sequence[Any]) -> list[Any]:
        self.batches.append(list(ops))
        return self.original(ops)

    def listings(self) -> list[ListNodes]:
        return [op for ops in self.batches for op in ops if isinstance(op, ListNodes)]


@pytest.fixture(params=[b for b in BACKENDS if b != "embedded-memory"])
def graph(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphStore]:
    backend = open_backend(request.param, tmp_path)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def store(graph: GraphStore) -> GmemStore:
    return GmemStore(graph, embedder=HashingEmbedder(), index=None, fields=["text", "more"])


def test_a_filtered_page_is_asked_of_the_graph_store_and_skips_what_is_not_wanted(
    store: GmemStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    monkeypatch.setattr(store_module, "_now", lambda: now)
    ops = []
    for i in range(12):
        value = {"text": f"doc {i}", "more": f"extra {i}", "tag": "a" if i % 3 else "b", "n": i}
        ops.append(PutOp(("docs",), f"k{i:02}", value, ttl=1 if i in (1, 2) else None))
    store.batch(ops)
    now += timedelta(minutes=5)  # k01 and k02 have expired
    spy = Spy(store.store)
    page = store.search(("docs",), filter={"tag": "a", "n": {"$gte": 4}}, limit=3, offset=1)
    assert [i.key for i in page] == ["k05", "k07", "k08"]
    (listing,) = spy.listings()
    assert listing.limit == 4  # offset + limit: the store builds only the page
    # A filter on a dotted key or a nested map is decided here, on every item.
    spy.batches.clear()
    store.put(("docs",), "deep", {"meta": {"lang": "py"}, "tag": "a"})
    assert [i.key for i in store.search(("docs",), filter={"meta.lang": "py"}, limit=1)] == ["deep"]
    assert [i.key for i in store.search(("docs",), filter={"meta": {"lang": "py"}})] == ["deep"]
    assert all(op.limit is None for op in spy.listings())


def test_semantic_search_with_a_filter_still_ranks_by_every_indexed_text(
    store: GmemStore,
) -> None:
    store.put(("docs",), "a", {"text": "apples", "more": "parsers and lexers", "tag": "x"})
    store.put(("docs",), "b", {"text": "parsers", "more": "bananas", "tag": "y"})
    store.put(("docs",), "c", {"text": "cherries", "more": "plums", "tag": "x"})
    found = store.search(("docs",), query="parsers and lexers", filter={"tag": "x"})
    assert [i.key for i in found] == ["a", "c"]
    assert found[0].score is not None and found[0].score > 0.9


def test_concurrent_async_calls_share_one_batch_and_keep_their_own_answers(
    store: GmemStore,
) -> None:
    spy = Spy(store.store)

    async def run() -> list[Any]:
        await asyncio.gather(*(store.aput(("n",), f"k{i}", {"i": i}) for i in range(30)))
        spy.batches.clear()
        return await asyncio.gather(*(store.aget(("n",), f"k{i}") for i in range(30)))

    got = asyncio.run(run())
    assert [item.value["i"] for item in got] == list(range(30))
    reads = [ops for ops in spy.batches if any(isinstance(op, GetNodes) for op in ops)]
    assert len(reads) < 30  # one batch per tick, not one per call


def test_a_failing_call_fails_alone_when_calls_are_combined(store: GmemStore) -> None:
    async def run() -> list[Any]:
        return list(
            await asyncio.gather(
                store.aput(("n",), "good", {"v": 1}),
                store.abatch([SearchOp(("n",), filter={"bad key!": 1})]),
                store.aput(("n",), "also", {"v": 2}),
                return_exceptions=True,
            )
        )

    first, second, third = asyncio.run(run())
    assert first is None and third is None
    assert isinstance(second, ValueError)
    assert {i.key for i in store.search(("n",))} == {"good", "also"}


def test_a_batch_is_redone_when_another_writer_changed_what_it_read(store: GmemStore) -> None:
    graph = store.store
    original = graph.batch
    raced: list[bool] = []

    def racing(ops: Sequence[Any]) -> list[Any]:
        # Right after the batch has read the (absent) item, another writer creates it
        # with two indexed texts, that is, with a vector node.
        result = original(ops)
        if not raced and any(isinstance(op, GetNodes) for op in ops):
            raced.append(True)
            other = GmemStore(graph, embedder=HashingEmbedder(), fields=["text", "more"])
            other.put(("n",), "k", {"text": "theirs", "more": "and more"})
        return result

    graph.batch = racing  # type: ignore[method-assign]
    store.put(("n",), "k", {"text": "mine"})
    graph.batch = original  # type: ignore[method-assign]
    got = store.get(("n",), "k")
    assert raced and got is not None and got.value == {"text": "mine"}
    # Redone from a fresh read, the put knew of the other write's vector node and
    # removed it: one node for one text.
    assert graph.count().nodes["Item"] == 1


def test_threads_writing_one_key_all_succeed(store: GmemStore) -> None:
    def write(n: int) -> None:
        for i in range(15):
            store.put(("hot",), "key", {"writer": n, "i": i})
            store.get(("hot",), "key")

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(write, range(6)))  # re-raises any writer's error
    got = store.get(("hot",), "key")
    assert got is not None and got.value["i"] == 14


def test_a_read_whose_ttl_refresh_meets_puts_takes_its_turn(graph: GraphStore) -> None:
    """A get that refreshes a TTL writes; while it runs without waiting for this store's
    writers, each of its attempts can meet one of their puts (LangGraph's
    ``test_large_batches`` on Neo4j raised ``ConflictError`` from a search so). Redone, it
    takes its turn with them and succeeds."""
    ttl: Any = {"default_ttl": 10, "refresh_on_read": True}
    store = GmemStore(graph, ttl=ttl)
    store.put(("n",), "k", {"v": 0})
    original = graph.batch
    raced: list[int] = []
    writing: list[bool] = []

    def racing(ops: Sequence[Any]) -> list[Any]:
        # After each read, a writer of this store changes the item, unless the read
        # holds the writers' turn (then that writer would wait for it).
        result = original(ops)
        read = any(isinstance(op, GetNodes) for op in ops)
        if read and not writing and not store._writing.locked():
            raced.append(1)
            writing.append(True)
            try:
                GmemStore(graph, ttl=ttl).put(("n",), "k", {"v": len(raced)})
            finally:
                writing.clear()
        return result

    graph.batch = racing  # type: ignore[method-assign]
    try:
        got = store.get(("n",), "k")
    finally:
        graph.batch = original  # type: ignore[method-assign]
    assert raced and got is not None and got.value == {"v": len(raced)}
