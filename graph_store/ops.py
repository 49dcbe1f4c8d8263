"""Typed storage operations.

:meth:`GraphStore.batch` runs a sequence of these operations in one transaction and
returns one result per operation. Every convenience method of
:class:`graph_store.GraphStore` is a one-operation batch, so the semantics live here,
once, and the conformance suite pins them for every backend.

Most operations are primitives a backend implements. :class:`Neighbors` and
:class:`DeleteTask` are not: they are programs over primitives (breadth-first search over
:class:`Expand`, the cascade over :class:`GetEdges` and :class:`DeleteNodes`), written once
in :mod:`graph_store.programs`, so that no backend knows the algorithm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from graph_store.model import Edge, EdgeKind, Node, NodeKind

Direction = Literal["out", "in", "both"]
VectorField = Literal["embedding", "graph_embedding"]
Comparison = Literal["eq", "ne", "gt", "gte", "lt", "lte"]
COMPARISONS: tuple[Comparison, ...] = ("eq", "ne", "gt", "gte", "lt", "lte")


#: Kinds whose ``updated_at`` is their version: what :class:`ExpectNodes` compares and
#: :class:`PutNodes` never moves back. Items are an adapter's key-value records, where the
#: last write wins (LangGraph's semantics), so they are not versioned.
VERSIONED_KINDS = frozenset({NodeKind.QUERY, NodeKind.INSIGHT})


@dataclass(frozen=True, slots=True)
class PutNodes:
    """Insert or replace nodes (by id). Vectors given as ``None`` are stored as absent.

    A node of a :data:`VERSIONED_KINDS` kind is never moved back in time: replacing one
    whose stored ``updated_at`` is later than the written one fails the batch with
    :class:`ConflictError` and writes nothing (the writer holds a stale copy; it rereads
    and redoes its change). Writing the stored version again, or a later one, is allowed.
    So every write that changes such a node must advance its ``updated_at`` past the
    version it read: then a writer that read the old version fails its
    :class:`ExpectNodes` instead of overwriting the change (``gmem.commit.advance``).
    """

    nodes: Sequence[Node]


@dataclass(frozen=True, slots=True)
class PutEdges:
    """Insert or replace edges (by kind, src, dst). Both endpoints must exist."""

    edges: Sequence[Edge]


@dataclass(frozen=True, slots=True)
class DeleteEdges:
    """Remove edges by (kind, src, dst); missing ones are ignored. Result: number removed."""

    keys: Sequence[tuple[EdgeKind, str, str]]


@dataclass(frozen=True, slots=True)
class ExpectNodes:
    """Optimistic concurrency: fail the batch with :class:`ConflictError` unless every node
    is still as the caller read it. Result: ``None``.

    Each row is ``(kind, id, updated_at)``: the ``updated_at`` the caller saw, or ``None``
    for a node it found absent, which must still be absent (a later op of the same batch
    creates it). A reader that decides what to write from what it read (evolution: the
    next attempt number, an insight's new score) puts one of these before its writes;
    the backend checks under the nodes' write locks, held until commit, so of two
    writers that read the same version exactly one commits and the other recomputes.
    Nodes without ``updated_at`` (utterances) can only be expected absent.
    """

    expected: Sequence[tuple[NodeKind, str, datetime | None]]


@dataclass(frozen=True, slots=True)
class GetNodes:
    """Fetch nodes by id, in order; a missing id yields ``None`` in its place."""

    ids: Sequence[str]
    with_vectors: bool = False


@dataclass(frozen=True, slots=True)
class Where:
    """A condition on a node's stored properties (their JSON form, ``Node.props()``).

    ``path`` is a property name, then keys into the JSON maps below it; a path that runs
    into a missing key or a non-map reads as ``None`` (JSON null). ``eq``/``ne``: equal
    JSON values (maps and lists compared whole). ``gt gte lt lte``: numerically when both
    sides convert to numbers (numeric strings included, as JSON stores that cast), as text
    when both are other strings, otherwise false. ``or_none``: a node whose value is
    ``None`` passes whatever the comparison says (an optional expiry, for instance).

    Conditions let a backend drop nodes before it builds them, which is where listing
    many nodes spends its time, and so apply ``ListNodes.limit`` to the nodes wanted.
    """

    path: tuple[str, ...]
    op: Comparison
    value: Any = None
    or_none: bool = False

    def holds(self, props: Mapping[str, Any]) -> bool:
        """Whether a node with these stored properties passes; every backend decides
        with this one function, so the semantics cannot drift between them."""
        found: Any = props
        for part in self.path:
            found = found.get(part) if isinstance(found, Mapping) else None
        if found is None and self.or_none:
            return True
        if self.op == "eq":
            return bool(found == self.value)
        if self.op == "ne":
            return bool(found != self.value)
        return _ordered(found, self.op, self.value)


def _ordered(left: Any, op: Comparison, right: Any) -> bool:
    try:
        a: Any = float(left)
        b: Any = float(right)
    except (TypeError, ValueError):
        if not (isinstance(left, str) and isinstance(right, str)):
            return False
        a, b = left, right
    if op == "gt":
        return bool(a > b)
    if op == "gte":
        return bool(a >= b)
    if op == "lt":
        return bool(a < b)
    return bool(a <= b)


@dataclass(frozen=True, slots=True)
class ListNodes:
    """All nodes of one kind in a namespace (or every namespace), oldest first.

    With ``where``, only the nodes every condition holds for; ``offset`` and ``limit``
    then page through those (the first ``offset`` skipped, at most ``limit`` returned).
    """

    kind: NodeKind
    namespace: str | None = None
    with_vectors: bool = False
    limit: int | None = None
    where: Sequence[Where] = ()
    offset: int = 0


@dataclass(frozen=True, slots=True)
class GetEdges:
    """Edges touching the given nodes, optionally only of some kinds and one direction."""

    ids: Sequence[str]
    kinds: Sequence[EdgeKind] | None = None
    direction: Direction = "out"


@dataclass(frozen=True, slots=True)
class Neighbors:
    """Breadth-first expansion from ``ids`` up to ``hops`` steps over the given edge kinds.

    The result holds every node reached (not the start nodes) with its hop distance and
    the edge it was first reached through, so callers can explain how they found it.
    With ``with_nodes`` each :class:`Reached` carries the node itself (with its vectors
    under ``with_vectors``), read with the links (:class:`Expand`): the caller's next
    question, asked in the same statements.
    """

    ids: Sequence[str]
    hops: int = 1
    kinds: Sequence[EdgeKind] | None = None
    direction: Direction = "both"
    node_kind: NodeKind | None = None
    with_nodes: bool = False
    with_vectors: bool = False


@dataclass(frozen=True, slots=True)
class Expand:
    """One level of :class:`Neighbors`: the edges from ``ids`` to nodes not in ``exclude``.

    Result: one :class:`Link` per (origin, edge), in any order; an edge between two
    origins comes once from each end, a self-loop touching under "both" twice. Ids that
    name no node expand to nothing. With ``with_nodes`` each link carries the node at
    its other end (with its vectors under ``with_vectors``), as :class:`GetNodes` would
    read it: a traversal reads a step's links and their nodes in one go, which a backend
    answers with one statement (one round trip, for a server) instead of two.
    """

    ids: Sequence[str]
    kinds: Sequence[EdgeKind] | None = None
    direction: Direction = "both"
    exclude: frozenset[str] = frozenset()
    with_nodes: bool = False
    with_vectors: bool = False


@dataclass(frozen=True, slots=True)
class VectorSearch:
    """Exact or indexed cosine top-k over one node kind, filtered by namespace.

    With ``with_nodes`` each :class:`Hit` carries its node (with its vectors under
    ``with_vectors``), as :class:`GetNodes` would read it: a caller that reads the nodes
    it found anyway asks for them in the search's own statements (one round trip, for a
    server) instead of a batch of their own.
    """

    kind: NodeKind
    vector: npt.NDArray[np.float32]
    k: int
    namespace: str | None = None
    field: VectorField = "embedding"
    exclude_ids: frozenset[str] = frozenset()
    with_nodes: bool = False
    with_vectors: bool = False


@dataclass(frozen=True, slots=True)
class ReadVersion:
    """A token that changes whenever a query or insight node changes, whoever writes it.

    Result: a string, or ``None`` where the backend cannot tell (a server without a change
    log) and in a batch that writes. A reader that got the same token twice may reuse
    the query and insight nodes it read after the first: none has changed since. With
    ``None``, it must read them again.
    """


@dataclass(frozen=True, slots=True)
class DeleteTask:
    """Remove a query, every utterance of its trace, and all their edges."""

    query_id: str


@dataclass(frozen=True, slots=True)
class DeleteNodes:
    """Remove nodes by id with every edge touching them. Result: :class:`Removed`.

    Ids that name no node are ignored, so a delete that is retried, or races another,
    still succeeds. Unlike :class:`DeleteTask` it follows no edges: what hangs off a node
    stays unless it is listed too.
    """

    ids: Sequence[str]


@dataclass(frozen=True, slots=True)
class DeleteNamespace:
    """Remove every node and edge of a namespace. Unknown namespace: an error."""

    namespace: str


@dataclass(frozen=True, slots=True)
class Count:
    """Number of nodes per kind and of edges per kind, in a namespace or overall."""

    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class ListNamespaces:
    """Every namespace that holds at least one node, sorted."""


Op = (
    ExpectNodes
    | PutNodes
    | PutEdges
    | DeleteEdges
    | GetNodes
    | ListNodes
    | GetEdges
    | Neighbors
    | Expand
    | VectorSearch
    | ReadVersion
    | DeleteTask
    | DeleteNodes
    | DeleteNamespace
    | Count
    | ListNamespaces
)


#: Operations that write; a batch with none of them runs in a read transaction.
WRITE_OPS = (
    ExpectNodes,
    PutNodes,
    PutEdges,
    DeleteEdges,
    DeleteTask,
    DeleteNodes,
    DeleteNamespace,
)


def passes(where: Sequence[Where], props: Mapping[str, Any]) -> bool:
    """Whether stored properties pass every condition of a :class:`ListNodes`."""
    return all(condition.holds(props) for condition in where)


@dataclass(frozen=True, slots=True)
class Link:
    """An edge found by :class:`Expand`, seen from one of the nodes it was asked about;
    ``node`` is the other end's node when the expansion asked for nodes."""

    origin: str
    other: str
    other_kind: NodeKind
    outgoing: bool
    via: Edge
    node: Node | None = None


@dataclass(frozen=True, slots=True)
class Reached:
    """A node found by :class:`Neighbors`: how far away and through which edge, and the
    node itself when the search asked for nodes."""

    id: str
    hop: int
    via: Edge
    node: Node | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    """A vector-search result; ``node`` is the node found when the search asked for
    nodes."""

    id: str
    score: float
    node: Node | None = None


@dataclass(frozen=True, slots=True)
class Counts:
    nodes: dict[str, int] = field(default_factory=dict)
    edges: dict[str, int] = field(default_factory=dict)

    @property
    def total_nodes(self) -> int:
        return sum(self.nodes.values())

    @property
    def total_edges(self) -> int:
        return sum(self.edges.values())


@dataclass(frozen=True, slots=True)
class Removed:
    """What a delete removed."""

    nodes: int
    edges: int
