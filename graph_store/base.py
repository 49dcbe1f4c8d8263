"""The :class:`GraphStore` base: a backend writes one transaction; validation, the
algorithms and every convenience call are written here once."""

from __future__ import annotations

import functools
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from graph_store.errors import UserInputError
from graph_store.model import Edge, EdgeKind, Node, NodeKind, check_id, check_namespace
from graph_store.ops import (
    COMPARISONS,
    Count,
    Counts,
    DeleteEdges,
    DeleteNamespace,
    DeleteNodes,
    DeleteTask,
    Direction,
    Expand,
    ExpectNodes,
    GetEdges,
    GetNodes,
    Hit,
    ListNamespaces,
    ListNodes,
    Neighbors,
    Op,
    PutEdges,
    PutNodes,
    Reached,
    Removed,
    VectorField,
    VectorSearch,
    Where,
)
from graph_store.programs import Runner, run_op

_DIRECTIONS = ("out", "in", "both")
_FIELDS = ("embedding", "graph_embedding")


def check_op(op: Op) -> None:
    """Reject malformed ids, namespaces and options before any backend sees the batch.

    Checked here, once, so that every backend refuses the same input with the same
    message, and a batch with one bad operation changes nothing.
    """
    match op:
        case GetNodes(ids) | DeleteNodes(ids):
            for node_id in ids:
                check_id(node_id)
        case ExpectNodes() | PutNodes():
            _check_write(op)
        case DeleteTask(query_id):
            check_id(query_id)
        case DeleteNamespace(namespace):
            check_namespace(namespace)
        case ListNodes(where=where, offset=offset, limit=limit):
            _check_listing(where, offset, limit)
        case VectorSearch(namespace=namespace, field=field):
            if namespace is not None:
                check_namespace(namespace)
            if field not in _FIELDS:
                raise UserInputError(
                    f"unknown vector field {field!r}: use 'embedding' or 'graph_embedding'"
                )
        case (
            GetEdges(direction=direction)
            | Neighbors(direction=direction)
            | Expand(direction=direction)
        ):
            if direction not in _DIRECTIONS:
                raise UserInputError(f"direction must be 'out', 'in' or 'both', not {direction!r}")
        case _:
            pass


def _check_claims(ops: Sequence[Op]) -> None:
    """A node expected absent must be written (or deleted) by a later op of the batch.
    Backends claim such an id until commit, Neo4j with a placeholder node that the
    batch's write fills: a claim nothing fills would leave an empty node behind."""
    for i, op in enumerate(ops):
        if not isinstance(op, ExpectNodes):
            continue
        claimed = {node_id for _, node_id, seen in op.expected if seen is None}
        if not claimed:
            continue
        later = ops[i + 1 :]
        filled = {n.id for o in later if isinstance(o, PutNodes) for n in o.nodes}
        filled |= {node_id for o in later if isinstance(o, DeleteNodes) for node_id in o.ids}
        if unfilled := sorted(claimed - filled):
            raise UserInputError(
                f"ExpectNodes expects {len(unfilled)} node(s) absent that no later PutNodes "
                f"or DeleteNodes of the batch writes (first: {unfilled[0]}); expect absent "
                "only the nodes the batch creates"
            )


def _check_listing(where: Sequence[Where], offset: int, limit: int | None) -> None:
    if offset < 0 or (limit is not None and limit < 0):
        raise UserInputError("offset and limit must be 0 or more")
    for condition in where:
        if not condition.path or condition.op not in COMPARISONS:
            raise UserInputError(
                f"bad condition {condition!r}: give a property path and one of "
                f"{' '.join(COMPARISONS)}"
            )


def _check_write(op: ExpectNodes | PutNodes) -> None:
    if isinstance(op, ExpectNodes):
        for _, node_id, _ in op.expected:
            check_id(node_id)
    else:
        for node in op.nodes:
            _check_unicode(node)


def holds_lone_surrogate(value: Any) -> bool:
    """Whether a string, or any key or value inside dicts, lists and models, holds a lone
    UTF-16 surrogate. Walked on the Python values: pydantic's JSON mode would already have
    replaced one in a dict key, silently. The strings are encoded as one (a bulk write
    checks hundreds of thousands of nodes), which fails exactly when one of them would."""
    texts: list[str] = []
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict):
            pending += item
            pending += item.values()
        elif isinstance(item, list | tuple):
            pending += item
        elif isinstance(item, BaseModel):
            pending += item.__dict__.values()
    try:
        "".join(texts).encode("utf-8")  # in C: a lone surrogate is the one thing it refuses
    except UnicodeEncodeError:
        return True
    return False


_PLAIN = (int, float, bool, datetime, type(None))


@functools.cache
def _text_fields(cls: type[Node]) -> tuple[str, ...]:
    """The fields of a node class that can hold text: all but numbers, flags, times and
    the vectors, decided from the annotations once per class."""
    names = []
    for name, field in cls.model_fields.items():
        if name in _FIELDS:
            continue
        ann = field.annotation
        union = isinstance(ann, types.UnionType) or typing.get_origin(ann) is typing.Union
        if not all(arg in _PLAIN for arg in (typing.get_args(ann) if union else (ann,))):
            names.append(name)
    return tuple(names)


def _check_unicode(node: Node) -> None:
    """Text both backends can store: a lone surrogate, which a Python string can hold but
    no UTF-8 file or Neo4j string can, is refused the same way everywhere (the embedded
    store would otherwise keep it and a later migration to Neo4j fail on it)."""
    values = node.__dict__
    if holds_lone_surrogate([values[name] for name in _text_fields(type(node))]):
        raise UserInputError(
            f"node {node.id} holds a lone surrogate (U+D800..U+DFFF); store valid Unicode text "
            "(a store written before gmem refused them: copy it with `gmem migrate --repair-text`)"
        )


class GraphStore(ABC):
    """Storage for the three-tier memory graph.

    A backend implements :meth:`_transact` (all operations of one batch in one
    transaction: either every write lands or none does) for the primitive operations of
    :mod:`graph_store.ops`, and :meth:`close`. Reads inside a batch see the writes before
    them in the same batch. :meth:`batch` validates the operations first, so a backend
    only ever receives well-formed ones, and drives the operations that are algorithms
    (:mod:`graph_store.programs`) over the backend's primitives.

    The store is synchronous and safe to share between threads; see "Threads and async"
    in docs/architecture.md for why there is no async twin at this level.
    """

    #: A short URL-like description shown by the CLI, e.g. ``sqlite:///path/memory.db``.
    url: str = ""

    def batch(self, ops: Sequence[Op]) -> list[Any]:
        """Run ``ops`` in one transaction and return one result per op."""
        ops = list(ops)
        for op in ops:
            check_op(op)
        _check_claims(ops)
        return self._transact(ops, lambda primitive: [run_op(op, primitive) for op in ops])

    @abstractmethod
    def _transact(self, ops: list[Op], work: Callable[[Runner], list[Any]]) -> list[Any]:
        """Call ``work`` inside one transaction and return what it returns.

        ``work`` calls its argument with primitive operations (never :class:`Neighbors`
        or :class:`DeleteTask`) and expects each one's result. ``ops`` is the validated
        batch, for what a backend decides up front: a read or a write transaction
        (:data:`WRITE_OPS`), schema it must create first. A backend that retries a
        transaction calls ``work`` again from the start.
        """

    @abstractmethod
    def close(self) -> None:
        """Release files, connections and threads. Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Convenience calls: each is one operation in one transaction.
    def put_nodes(self, nodes: Sequence[Node]) -> None:
        self.batch([PutNodes(nodes)])

    def put_edges(self, edges: Sequence[Edge]) -> None:
        self.batch([PutEdges(edges)])

    def delete_edges(self, keys: Sequence[tuple[EdgeKind, str, str]]) -> int:
        return int(self.batch([DeleteEdges(keys)])[0])

    def get_nodes(self, ids: Sequence[str], with_vectors: bool = False) -> list[Node | None]:
        return list(self.batch([GetNodes(ids, with_vectors)])[0])

    def get_node(self, node_id: str, with_vectors: bool = False) -> Node | None:
        return self.get_nodes([node_id], with_vectors)[0]

    def list_nodes(
        self,
        kind: NodeKind,
        namespace: str | None = None,
        with_vectors: bool = False,
        limit: int | None = None,
        where: Sequence[Where] = (),
        offset: int = 0,
    ) -> list[Node]:
        op = ListNodes(kind, namespace, with_vectors, limit, tuple(where), offset)
        return list(self.batch([op])[0])

    def get_edges(
        self,
        ids: Sequence[str],
        kinds: Sequence[EdgeKind] | None = None,
        direction: Direction = "out",
    ) -> list[Edge]:
        return list(self.batch([GetEdges(ids, kinds, direction)])[0])

    def neighbors(
        self,
        ids: Sequence[str],
        hops: int = 1,
        kinds: Sequence[EdgeKind] | None = None,
        direction: Direction = "both",
        node_kind: NodeKind | None = None,
    ) -> list[Reached]:
        return list(self.batch([Neighbors(ids, hops, kinds, direction, node_kind)])[0])

    def vector_search(
        self,
        kind: NodeKind,
        vector: npt.NDArray[np.float32] | Sequence[float],
        k: int,
        namespace: str | None = None,
        field: VectorField = "embedding",
        exclude_ids: frozenset[str] = frozenset(),
    ) -> list[Hit]:
        vec = np.asarray(vector, dtype=np.float32)
        return list(self.batch([VectorSearch(kind, vec, k, namespace, field, exclude_ids)])[0])

    def delete_task(self, query_id: str) -> Removed:
        result: Removed = self.batch([DeleteTask(query_id)])[0]
        return result

    def delete_nodes(self, ids: Sequence[str]) -> Removed:
        result: Removed = self.batch([DeleteNodes(ids)])[0]
        return result

    def delete_namespace(self, namespace: str) -> Removed:
        result: Removed = self.batch([DeleteNamespace(namespace)])[0]
        return result

    def count(self, namespace: str | None = None) -> Counts:
        result: Counts = self.batch([Count(namespace)])[0]
        return result

    def namespaces(self) -> list[str]:
        return list(self.batch([ListNamespaces()])[0])
