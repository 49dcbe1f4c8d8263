"""``GmemStore`` keeps the semantics LangGraph's SQL stores have, on both gmem backends.

TTL, labels with control characters, filter validation and nested keys, ``index=`` at
construction, batches that read before they write and apply all or nothing, and (on
Neo4j) concurrent puts, deletes and searches.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings
from langgraph.store.base import GetOp, InvalidNamespaceError, PutOp, SearchOp

import integrations.langgraph.store as store_module
from gmem.embedding import HashingEmbedder
from gmem.errors import ConfigError
from graph_store import EmbeddedStore, GraphStore
from integrations.langgraph import GmemStore
from tests.conftest import BACKENDS, open_backend


class Clock:
    """The store's clock, moved by the test instead of waited for."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(store_module, "_now", c)
    return c


@pytest.fixture(params=[b for b in BACKENDS if b != "embedded-memory"])
def graph(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphStore]:
    backend = open_backend(request.param, tmp_path)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def store(graph: GraphStore) -> GmemStore:
    return GmemStore(graph, embedder=HashingEmbedder())


# ---- TTL ------------------------------------------------------------------------------------
def test_expired_items_are_never_returned_and_sweep_deletes_them(
    store: GmemStore, clock: Clock
) -> None:
    store.put(("t",), "short", {"v": 1}, ttl=1)
    store.put(("t",), "long", {"v": 2}, ttl=10)
    store.put(("t",), "forever", {"v": 3})
    clock.advance(2)
    assert store.get(("t",), "short") is None
    assert store.get(("t",), "long") is not None
    assert sorted(i.key for i in store.search(("t",))) == ["forever", "long"]
    assert sorted(i.key for i in store.search(("t",), query="v")) == ["forever", "long"]
    assert store.sweep_ttl() == 1
    assert store.store.count().nodes["Item"] == 2


def test_a_refresh_never_brings_an_expired_item_back_and_pages_skip_it(
    store: GmemStore, clock: Clock
) -> None:
    """What LangGraph's Postgres ``omit_expired`` tests check (they backdate rows with
    SQL, so they cannot run here): reads that refresh do not revive an expired item, and a
    page is cut after expired items are left out, so it is not short."""
    for key in ("a", "expired", "b", "c"):
        store.put(("p",), key, {"k": key}, ttl=1 if key == "expired" else 10)
    clock.advance(2)
    assert store.get(("p",), "expired", refresh_ttl=True) is None
    assert "expired" not in {i.key for i in store.search(("p",), refresh_ttl=True)}
    first = store.search(("p",), limit=2, offset=0)
    second = store.search(("p",), limit=2, offset=2)
    assert len(first) == 2 and len(second) == 1
    assert sorted(i.key for i in [*first, *second]) == ["a", "b", "c"]
    assert store.get(("p",), "expired", refresh_ttl=False) is None
    assert store.sweep_ttl() == 1  # still expired: no read moved its expiry


def test_reads_refresh_the_ttl_unless_told_not_to(store: GmemStore, clock: Clock) -> None:
    store.put(("t",), "a", {"v": 1}, ttl=10)
    store.put(("t",), "b", {"v": 2}, ttl=10)
    clock.advance(8)
    assert store.get(("t",), "a") is not None  # refreshed: expires at 18 now
    assert store.get(("t",), "b", refresh_ttl=False) is not None
    clock.advance(4)  # 12
    assert store.get(("t",), "a", refresh_ttl=False) is not None
    assert store.get(("t",), "b") is None
    assert [i.key for i in store.search(("t",))] == ["a"]  # refreshed again: 22
    clock.advance(9)  # 21
    assert store.get(("t",), "a", refresh_ttl=False) is not None


def test_ttl_config_gives_the_default_ttl_and_refresh(graph: GraphStore, clock: Clock) -> None:
    store = GmemStore(graph, ttl={"default_ttl": 5, "refresh_on_read": False})
    store.put(("t",), "a", {"v": 1})
    store.put(("t",), "b", {"v": 2}, ttl=None)
    clock.advance(4)
    assert store.get(("t",), "a") is not None  # not refreshed by the read
    clock.advance(2)
    assert store.get(("t",), "a") is None
    assert store.get(("t",), "b") is not None


def test_the_sweeper_thread_starts_and_stops(store: GmemStore) -> None:
    done = store.start_ttl_sweeper(sweep_interval_minutes=60)
    assert not done.done()
    assert store.stop_ttl_sweeper(timeout=5)
    assert done.result(timeout=5) is None


# ---- namespaces ----------------------------------------------------------------------------
def test_labels_with_control_characters_round_trip(store: GmemStore) -> None:
    odd = ("tab\there", "bell\x07", "per%cent", "new\nline")
    store.put(odd, "k", {"v": 1})
    item = store.get(odd, "k")
    assert item is not None and item.namespace == odd
    assert store.list_namespaces() == [odd]
    assert [i.namespace for i in store.search(("tab\there",))] == [odd]
    with pytest.raises(InvalidNamespaceError):
        store.put(("nul\x00",), "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError):
        store.put(("a.b",), "k", {"v": 1})


# ---- filters --------------------------------------------------------------------------------
def test_filters_nested_keys_and_operators(store: GmemStore) -> None:
    store.put(("f",), "a", {"n": 1, "meta": {"lang": "py", "stars": 10}})
    store.put(("f",), "b", {"n": 5, "meta": {"lang": "go", "stars": 3}})

    def keys(**filter: object) -> list[str]:
        return sorted(i.key for i in store.search(("f",), filter=filter))

    assert keys(n={"$gt": 2}) == ["b"]
    assert keys(**{"meta.lang": "py"}) == ["a"]
    assert keys(**{"meta.stars": {"$gte": 3, "$lt": 10}}) == ["b"]
    assert keys(meta={"lang": "go"}) == ["b"]
    assert keys(n={"$ne": 1}) == ["b"]
    for bad in ({"n; DROP": 1}, {"$or": 1}, {"a b": 1}, {"": 1}):
        with pytest.raises(ValueError, match="filter key"):
            store.search(("f",), filter=bad)
    for op in ("$in", "$regex", "$exists"):
        with pytest.raises(ValueError, match="operator"):
            store.search(("f",), filter={"n": {op: [1]}})


# ---- index at construction -----------------------------------------------------------------
class Fixed(Embeddings):
    def __init__(self, dims: int) -> None:
        self.dims = dims

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(len(t) % 7 + 1)] + [0.5] * (self.dims - 1) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def test_index_config_at_construction(graph: GraphStore) -> None:
    embed = Fixed(4)
    store = GmemStore(graph, index={"dims": 4, "embed": embed, "fields": ["text"]})
    assert store.index_config == {"dims": 4, "embed": embed, "fields": ["text"]}
    assert store.embeddings is embed
    assert GmemStore(graph).index_config is None
    store.put(("i",), "a", {"text": "hello", "other": "x" * 50})
    found = store.search(("i",), query="hello")
    assert [i.key for i in found] == ["a"] and found[0].score is not None
    wrong = GmemStore(graph, index={"dims": 8, "embed": Fixed(4), "fields": ["text"]})
    with pytest.raises(ValueError, match="dimensions"):
        wrong.put(("i",), "b", {"text": "hello"})
    with pytest.raises(ValueError, match="once"):
        GmemStore(graph, embedder=HashingEmbedder(), index={"dims": 4, "embed": Fixed(4)})


def test_an_unusable_provider_string_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nosuchprovider"):
        GmemStore(EmbeddedStore(tmp_path / "s.db"), embedder="nosuchprovider:model-x")
    with pytest.raises(ConfigError):
        GmemStore(EmbeddedStore(tmp_path / "t.db"), index={"dims": 4, "embed": "nosuchprovider:m"})


# ---- batches --------------------------------------------------------------------------------
def test_a_batch_reads_before_it_writes(store: GmemStore) -> None:
    store.put(("b",), "k", {"v": "old"})
    got = store.batch(
        [
            PutOp(("b",), "k", {"v": "new"}),
            GetOp(("b",), "k"),
            PutOp(("b",), "fresh", {"v": 1}),
            SearchOp(("b",)),
            GetOp(("b",), "fresh"),
        ]
    )
    assert got[1] is not None and got[1].value == {"v": "old"}  # type: ignore[union-attr]
    assert [i.key for i in got[3]] == ["k"]  # type: ignore[union-attr]
    assert got[4] is None
    after = store.get(("b",), "k")
    assert after is not None and after.value == {"v": "new"}
    last = store.batch([PutOp(("b",), "k", {"v": 1}), PutOp(("b",), "k", {"v": 2})])
    assert last == [None, None]
    final = store.get(("b",), "k")
    assert final is not None and final.value == {"v": 2}  # the last put of a key wins


def test_deleting_a_missing_key_beside_other_writes_leaves_nothing_behind(
    store: GmemStore,
) -> None:
    # A batch expects every key it writes to be as it read it, here absent; deleting a
    # key that was never put must not leave a claim of it (on Neo4j a placeholder node).
    store.put(("b",), "kept", {"v": 1})
    before = store.store.count().total_nodes
    assert store.batch(
        [PutOp(("b",), "never", None), PutOp(("b",), "new", {"v": 2}), GetOp(("b",), "never")]
    ) == [None, None, None]
    assert store.get(("b",), "never") is None
    assert [i.key for i in store.search(("b",))] == ["kept", "new"]
    assert store.store.count().total_nodes == before + 1
    assert store.batch([PutOp(("b",), "gone", None)]) == [None]
    assert store.store.count().total_nodes == before + 1


def test_a_failing_batch_applies_nothing(store: GmemStore) -> None:
    store.put(("b",), "keep", {"v": 1})
    before = store.store.count()
    for bad in (
        PutOp(("b", "bad.label"), "x", {"v": 1}),
        PutOp(("b",), "x", "not a dict"),  # type: ignore[arg-type]
        SearchOp(("b",), filter={"bad key": 1}),
    ):
        with pytest.raises((ValueError, InvalidNamespaceError)):
            store.batch([PutOp(("b",), "first", {"v": 1}), PutOp(("b",), "keep", None), bad])
        assert store.store.count() == before
        assert store.get(("b",), "first") is None and store.get(("b",), "keep") is not None


# ---- concurrency -----------------------------------------------------------------------------
def test_concurrent_puts_deletes_and_searches(store: GmemStore) -> None:
    """On Neo4j a node read while another thread deletes it once raised KeyError."""
    errors: list[str] = []

    def work(worker: int) -> None:
        try:
            for i in range(25):
                store.put(("race",), f"k{i % 5}", {"w": worker, "i": i})
                store.search(("race",), query="w", limit=5)
                store.search(("race",), filter={"w": worker})
                store.delete(("race",), f"k{(i + 2) % 5}")
                store.get(("race",), f"k{i % 5}")
        except BaseException:  # noqa: BLE001 - reported, with where it came from, below
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, "\n".join(errors)
