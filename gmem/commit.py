"""Optimistic commits: evolution that loses no update when writers race.

Finishing a task reads the query node and the insights it touches, decides (with the
reasoner) what they become, and writes them back: the next attempt number, new scores,
new evidence. Two writers that read the same versions and both write would lose one
update. Locking the nodes for the whole decision would hold a lock across LLM calls, so
gmem checks instead: every node a finish read and then writes is expected, in the write
batch itself, to be as it was read (:class:`graph_store.ops.ExpectNodes`), and a new
node to be still absent. The backend checks under the write lock, so exactly one of two
racing finishes commits; the other gets :class:`ConflictError`, and :func:`retrying`
runs it again from fresh reads. A retried finish repeats its reasoner calls; with the
heuristic reasoner that costs milliseconds, with an LLM one more round trip, and only
when two writers really touched the same task or insight.

:class:`ReadTracked` adds the checks without the evolution code knowing: it is the store
the :class:`~gmem.evolution.Evolver` talks to, and while :func:`tracking` is active in the
calling thread it remembers the version of every node a batch returns and puts the
expectation in front of every write.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any, TypeVar

from gmem.errors import ConflictError
from graph_store.base import GraphStore
from graph_store.model import Node, NodeKind, Utterance, utcnow
from graph_store.ops import ExpectNodes, GetNodes, ListNodes, Op, PutNodes
from graph_store.programs import Runner

T = TypeVar("T")

#: The smallest step of a stored ``updated_at`` (ISO text and Neo4j both keep microseconds).
_TICK = timedelta(microseconds=1)

#: id -> (kind, updated_at seen; None: seen absent) for the finish running in this context.
_SEEN: ContextVar[dict[str, tuple[NodeKind | None, datetime | None]] | None] = ContextVar(
    "gmem_seen", default=None
)


def _version(node: Node) -> datetime | None:
    return getattr(node, "updated_at", None)


Seen = dict[str, tuple[NodeKind | None, datetime | None]]


def _expectations(
    writes: Sequence[Node], seen: Seen
) -> list[tuple[NodeKind, str, datetime | None]]:
    expected: list[tuple[NodeKind, str, datetime | None]] = []
    for node in writes:
        if node.id in seen:
            expected.append((node.kind, node.id, seen[node.id][1]))
        elif isinstance(node, Utterance):
            expected.append((node.kind, node.id, None))  # never rewritten: must be new
    return expected


def _remember(op: Op, result: Any, seen: Seen) -> None:
    """Note the version of every node a read returned (the first sighting counts: it is
    what the caller's decisions were based on)."""
    if isinstance(op, GetNodes):
        for node_id, node in zip(op.ids, result, strict=True):
            if node is None:
                seen.setdefault(node_id, (None, None))
            elif not isinstance(node, Utterance):
                seen.setdefault(node_id, (node.kind, _version(node)))
    elif isinstance(op, ListNodes):
        for node in result:
            if not isinstance(node, Utterance):
                seen.setdefault(node.id, (node.kind, _version(node)))


def advance(node: Node, seen: datetime | None) -> Node:
    """``node`` with an ``updated_at`` later than ``seen``, the version its writer read.

    Every write that changes a node must move its version on, or a writer that read the
    old version passes its check and overwrites this one. Later than ``seen`` even when
    this host's clock is behind the one that wrote ``seen``: the store refuses a version
    that goes back in time (see :class:`graph_store.ops.PutNodes`).
    """
    at = _version(node)
    if at is None or seen is None or at > seen:
        return node
    return node.model_copy(update={"updated_at": max(utcnow(), seen + _TICK)})


def _advanced(op: PutNodes, seen: Seen) -> PutNodes:
    """Advance every node this finish read and now rewrites without a newer version
    (a score decayed, evidence weighed, vectors written back)."""
    nodes = [
        advance(n, seen[n.id][1]) if n.id in seen and not isinstance(n, Utterance) else n
        for n in op.nodes
    ]
    return PutNodes(nodes)


class ReadTracked(GraphStore):
    """A view of a store that turns read-then-write into a checked write (see module)."""

    def __init__(self, inner: GraphStore) -> None:
        self.inner = inner
        self.url = inner.url

    def batch(self, ops: Sequence[Op]) -> list[Any]:
        ops = list(ops)
        seen = _SEEN.get()
        if seen is None:
            return self.inner.batch(ops)
        ops = [_advanced(op, seen) if isinstance(op, PutNodes) else op for op in ops]
        writes = [node for op in ops if isinstance(op, PutNodes) for node in op.nodes]
        expected = _expectations(writes, seen)
        results = self.inner.batch([ExpectNodes(expected), *ops] if expected else ops)
        if expected:
            results = results[1:]
        for op, result in zip(ops, results, strict=True):
            _remember(op, result, seen)
        for node in writes:  # what this finish wrote is the version its next batch saw
            if not isinstance(node, Utterance):
                seen[node.id] = (node.kind, _version(node))
        return results

    def _transact(self, ops: list[Op], work: Callable[[Runner], list[Any]]) -> list[Any]:
        return self.inner._transact(ops, work)  # batch() above never gets here

    def close(self) -> None:
        """The wrapped store belongs to the :class:`~gmem.memory.Memory`; it closes it."""


@contextmanager
def tracking() -> Iterator[None]:
    token = _SEEN.set({})
    try:
        yield
    finally:
        _SEEN.reset(token)


def retrying(step: Callable[[], T], retries: int, backoff_s: float) -> T:
    """Run ``step`` under :func:`tracking` until it commits without a conflict.

    The backoff doubles per conflict (with jitter, so racing writers spread out) from
    ``backoff_s``; after ``retries`` conflicts the last :class:`ConflictError` is raised,
    and, like every conflict, it left nothing written.
    """
    for attempt in range(retries + 1):
        try:
            with tracking():
                return step()
        except ConflictError:
            if attempt == retries:
                raise
            time.sleep(random.uniform(0, backoff_s * 2 ** min(attempt, 6)))
    raise AssertionError("unreachable")


def expected_versions(nodes: Sequence[Node]) -> ExpectNodes:
    """An expectation that ``nodes`` are still as given (for callers outside evolution
    that read, edit and write nodes themselves, such as forgetting)."""
    return ExpectNodes([(n.kind, n.id, _version(n)) for n in nodes])
