"""ExpectNodes, the optimistic-concurrency check, behaves the same on every backend."""

from __future__ import annotations

import threading
from datetime import timedelta

import numpy as np
import pytest

from graph_store import GraphStore
from graph_store.errors import ConflictError, UserInputError
from graph_store.model import Insight, Item, NodeKind, QueryNode, Utterance, new_id
from graph_store.ops import DeleteNodes, ExpectNodes, GetNodes, PutNodes


def _query(**kw: object) -> QueryNode:
    return QueryNode(text="clean the mug", embedding=np.ones(4, dtype=np.float32), **kw)


def test_unchanged_node_passes_and_the_writes_land(store: GraphStore) -> None:
    q = _query()
    store.put_nodes([q])
    moved = q.model_copy(update={"attempts": 1, "updated_at": q.updated_at + timedelta(1)})
    results = store.batch([ExpectNodes([(NodeKind.QUERY, q.id, q.updated_at)]), PutNodes([moved])])
    assert results[0] is None
    got = store.get_node(q.id)
    assert isinstance(got, QueryNode) and got.attempts == 1


def test_changed_node_conflicts_and_nothing_is_written(store: GraphStore) -> None:
    q = _query()
    store.put_nodes([q])
    newer = q.model_copy(update={"attempts": 5, "updated_at": q.updated_at + timedelta(1)})
    store.put_nodes([newer])
    stale = q.model_copy(update={"attempts": 1, "updated_at": q.updated_at + timedelta(2)})
    extra = Insight(text="never written", embedding=np.ones(4, dtype=np.float32))
    with pytest.raises(ConflictError):
        store.batch([ExpectNodes([(NodeKind.QUERY, q.id, q.updated_at)]), PutNodes([stale, extra])])
    got = store.get_node(q.id)
    assert isinstance(got, QueryNode) and got.attempts == 5
    assert store.get_node(extra.id) is None


def test_expected_absent(store: GraphStore) -> None:
    q = _query()
    store.batch([ExpectNodes([(NodeKind.QUERY, q.id, None)]), PutNodes([q])])
    got = store.get_node(q.id)
    assert isinstance(got, QueryNode) and got.text == q.text and got.updated_at == q.updated_at
    with pytest.raises(ConflictError):
        store.batch([ExpectNodes([(NodeKind.QUERY, q.id, None)]), PutNodes([q])])
    with pytest.raises(ConflictError):  # a deleted node is not "as it was read"
        store.batch([ExpectNodes([(NodeKind.QUERY, new_id(), q.updated_at)])])


def test_a_claim_no_write_fills_is_refused_and_leaves_no_node(store: GraphStore) -> None:
    """Expecting absent a node the batch never writes is a caller's mistake: refused
    before the backend runs (Neo4j would otherwise keep the claim's placeholder node)."""
    q = _query()
    other = QueryNode(text="wipe the table", embedding=np.ones(4, dtype=np.float32))
    with pytest.raises(UserInputError, match="no later PutNodes"):
        store.batch([ExpectNodes([(NodeKind.QUERY, q.id, None)]), PutNodes([other])])
    assert store.get_nodes([q.id, other.id]) == [None, None]
    assert store.count().total_nodes == 0
    # Deleting the claimed id in the same batch fills the claim too.
    store.batch([ExpectNodes([(NodeKind.QUERY, q.id, None)]), DeleteNodes([q.id])])
    assert store.count().total_nodes == 0


def test_racing_writers_exactly_one_commits(store: GraphStore) -> None:
    q = _query()
    store.put_nodes([q])
    (seen,) = store.batch([GetNodes([q.id])])
    version = seen[0].updated_at
    wins: list[int] = []
    losses: list[int] = []
    barrier = threading.Barrier(4)

    def write(n: int) -> None:
        update = {"attempts": n, "updated_at": version + timedelta(seconds=n)}
        utt = Utterance(query_id=q.id, step=0, agent="a", role="r", content=f"w{n}")
        barrier.wait()
        try:
            store.batch(
                [
                    ExpectNodes(
                        [(NodeKind.QUERY, q.id, version), (NodeKind.UTTERANCE, utt.id, None)]
                    ),
                    PutNodes([q.model_copy(update=update), utt]),
                ]
            )
            wins.append(n)
        except ConflictError:
            losses.append(n)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 3
    got = store.get_node(q.id)
    assert isinstance(got, QueryNode) and got.attempts == wins[0]


def test_a_stale_copy_never_overwrites_a_newer_state(store: GraphStore) -> None:
    """A writer that skips ExpectNodes (or forgot to advance updated_at) still cannot put
    an older version over a newer one: the batch conflicts and writes nothing."""
    q = _query()
    store.put_nodes([q])
    newer = q.model_copy(update={"attempts": 3, "updated_at": q.updated_at + timedelta(1)})
    store.put_nodes([newer])
    stale = q.model_copy(update={"graph_embedding": np.ones(4, dtype=np.float32)})
    extra = Insight(text="never written", embedding=np.ones(4, dtype=np.float32))
    with pytest.raises(ConflictError):
        store.batch([PutNodes([extra, stale])])
    got = store.get_node(q.id, with_vectors=True)
    assert isinstance(got, QueryNode) and got.attempts == 3 and got.graph_embedding is None
    assert store.get_node(extra.id) is None


def test_a_write_at_the_stored_version_or_later_lands(store: GraphStore) -> None:
    """Re-putting what was read (idempotent writes, migrations) and advancing are allowed;
    only going back in time is refused."""
    q = _query()
    store.put_nodes([q])
    store.put_nodes([q])
    later = q.model_copy(update={"attempts": 2, "updated_at": q.updated_at + timedelta(1)})
    store.put_nodes([later])
    got = store.get_node(q.id)
    assert isinstance(got, QueryNode) and got.attempts == 2 and got.updated_at == later.updated_at


def test_an_advanced_write_fails_the_check_of_who_read_before_it(store: GraphStore) -> None:
    """Why writers advance updated_at: a reader of the old version then conflicts instead
    of overwriting the write (here: vectors written back by a second writer)."""
    q = _query()
    store.put_nodes([q])
    (seen,) = store.batch([GetNodes([q.id])])
    version = seen[0].updated_at
    vectors = q.model_copy(
        update={
            "graph_embedding": np.full(4, 0.5, dtype=np.float32),
            "updated_at": version + timedelta(microseconds=1),
        }
    )
    store.put_nodes([vectors])
    finish = q.model_copy(update={"attempts": 1, "updated_at": version + timedelta(seconds=1)})
    with pytest.raises(ConflictError):
        store.batch([ExpectNodes([(NodeKind.QUERY, q.id, version)]), PutNodes([finish])])
    got = store.get_node(q.id, with_vectors=True)
    assert isinstance(got, QueryNode) and got.attempts == 0 and got.graph_embedding is not None


def test_items_are_last_write_wins(store: GraphStore) -> None:
    """Adapter records are not versioned: a put with an older timestamp still replaces."""
    item = Item(key="k", value={"v": 1})
    store.put_nodes([item])
    older = item.model_copy(
        update={"value": {"v": 2}, "updated_at": item.updated_at - timedelta(1)}
    )
    store.put_nodes([older])
    got = store.get_node(item.id)
    assert isinstance(got, Item) and got.value == {"v": 2}
