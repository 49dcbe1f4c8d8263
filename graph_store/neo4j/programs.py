"""Each primitive store operation as a short program of Cypher statements.

A program is a generator that yields a statement with its parameters and receives the
statement's rows; its return value is the operation's result. :func:`drive` runs one in
a managed transaction. Keeping the operations as programs, not as functions of a
transaction, lets a batch run them back to back inside one transaction that the driver
may retry whole. The Cypher itself lives in :mod:`graph_store.neo4j.cypher`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from graph_store import programs as graph_programs
from graph_store import refusals
from graph_store.model import Edge, EdgeKind, Node, NodeKind
from graph_store.neo4j import codec, cypher
from graph_store.ops import (
    WRITE_OPS,
    Count,
    Counts,
    DeleteEdges,
    DeleteNamespace,
    DeleteNodes,
    Expand,
    ExpectNodes,
    GetEdges,
    GetNodes,
    Hit,
    Link,
    ListNamespaces,
    ListNodes,
    Op,
    PutEdges,
    PutNodes,
    ReadVersion,
    Removed,
    VectorSearch,
    passes,
)

if TYPE_CHECKING:
    import neo4j

Rows = list[dict[str, Any]]
Statement = tuple[str, dict[str, Any]]
Program = Generator[Statement, Rows, Any]
VectorKey = tuple[NodeKind, str]
#: The most statements :func:`prefetch_reads` runs as one: each distinct combination is
#: a statement Neo4j plans once, and the reads of a recall's batches are at most three.
MOST_TOGETHER = 8
#: A read program begun ahead: its operation's ``id``, the program, its first statement.
Begun = tuple[int, Program, Statement]


@dataclass
class BatchState:
    """What one batch's programs share: the vector dimensions, how many index candidates
    to fetch per wanted hit, the first insertion number of each put, the vector indexes
    still being built (searched by exact scan until they are ONLINE), whether the batch
    has written yet (then the vector index may not see those writes), and the searches
    answered ahead in one statement."""

    dims: dict[VectorKey, int]
    oversample: int
    next_seq: Callable[[int], int]
    populating: frozenset[VectorKey] = field(default=frozenset())
    wrote: bool = field(default=False)
    #: First index answers of searches, by ``id(op)``, from :func:`prefetch_searches`.
    prefetched: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: Read programs begun by :func:`prefetch_reads`, by ``id(op)``, to be driven on.
    begun: dict[int, Program] = field(default_factory=dict)


def program(op: Op, state: BatchState) -> Program:
    """The program of one primitive operation."""
    match op:
        case ExpectNodes(expected):
            return _expect_nodes(expected)
        case PutNodes(nodes):
            state.wrote = True
            return _put_nodes(nodes, state.next_seq(len(nodes)))
        case PutEdges(edges):
            state.wrote = True
            return _put_edges(edges)
        case DeleteEdges(keys):
            state.wrote = True
            return _delete_edges(keys)
        case DeleteNodes(ids):
            state.wrote = True
            return _delete_nodes(list(dict.fromkeys(ids)), cypher.DELETE_NODES)
        case DeleteNamespace(namespace):
            state.wrote = True
            return _delete_nodes(namespace, cypher.DELETE_NAMESPACE)
        case ReadVersion():
            return _no_version()
    return _read_program(op, state)


def _read_program(op: Op, state: BatchState) -> Program:
    match op:
        case GetNodes(ids, with_vectors):
            return _get_nodes(ids, with_vectors)
        case ListNodes(kind, namespace, with_vectors, limit, where, offset):
            if where or offset:
                return _list_where(op)
            return _list_nodes(NodeKind(kind), namespace, with_vectors, limit)
        case GetEdges(ids, kinds, direction):
            return _get_edges(ids, kinds, direction)
        case Expand(ids, kinds, direction, exclude, with_nodes, with_vectors):
            return _expand(ids, kinds, direction, exclude, with_nodes, with_vectors)
        case VectorSearch():
            return _vector_search(op, state)
        case Count(namespace):
            return _count(namespace)
        case ListNamespaces():
            return _list_namespaces()
    raise refusals.unknown_operation(op)


def drive(tx: neo4j.ManagedTransaction | neo4j.Session, program: Program) -> Any:
    """Run ``program`` in ``tx``, a transaction or (for reads) a session whose every
    statement is its own transaction: each statement it yields, its rows sent back."""
    try:
        text, params = next(program)
        while True:
            result = tx.run(text, params)
            keys = result.keys()
            # Plain dicts of the values: Result.data() would re-walk every vector element.
            text, params = program.send([dict(zip(keys, record, strict=True)) for record in result])
    except StopIteration as done:
        return done.value


# ---- writes ------------------------------------------------------------------------------
def _expect_nodes(expected: Sequence[tuple[NodeKind, str, datetime | None]]) -> Program:
    """Lock, then compare (see the EXPECT_* statements for why this order holds)."""
    present = sorted({node_id: at for _, node_id, at in expected if at is not None}.items())
    if present:
        ids = [node_id for node_id, _ in present]
        yield cypher.EXPECT_LOCK, {"ids": ids}
        rows = yield cypher.EXPECT_VERSIONS, {"ids": ids}
        found = {row["id"]: codec.native_time(row["at"]) for row in rows}
        for node_id, at in present:
            if found.get(node_id) != at:
                raise refusals.changed_by_another_writer(node_id)
    absent: dict[NodeKind, list[str]] = {}
    for kind, node_id, seen in expected:
        if seen is None:
            absent.setdefault(NodeKind(kind), []).append(node_id)
    for kind, claims in absent.items():
        rows = yield cypher.EXPECT_ABSENT[kind], {"ids": sorted(set(claims))}
        for row in rows:
            if not row["claimed"]:
                raise refusals.changed_by_another_writer(row["id"])


def _put_nodes(nodes: Sequence[Node], seq: int) -> Program:
    by_kind: dict[NodeKind, list[dict[str, Any]]] = {}
    for i, node in enumerate(nodes):
        row = {
            "id": node.id,
            "props": codec.node_props(node),
            "vectors": codec.vector_props(node),
            "seq": seq + i,
        }
        by_kind.setdefault(node.kind, []).append(row)
    for kind, rows in by_kind.items():
        (result,) = yield cypher.PUT_NODES[kind], {"rows": rows}
        if result["clashes"]:
            clash = result["clashes"][0]
            raise refusals.kind_clash(clash["id"], clash["node_kind"], kind.value)
        if result["stale"]:
            raise refusals.changed_by_another_writer(result["stale"][0])


def _put_edges(edges: Sequence[Edge]) -> Program:
    rows = [
        {
            "kind": EdgeKind(edge.kind).value,
            "src": edge.src,
            "dst": edge.dst,
            "props": codec.edge_props(dict(edge.props)),
        }
        for edge in edges
    ]
    if not rows:
        return
    (written,) = yield cypher.PUT_EDGES, {"rows": rows}
    if written["written"] != len(rows):
        ends = list(dict.fromkeys(i for row in rows for i in (row["src"], row["dst"])))
        missing = yield cypher.MISSING_NODES, {"ids": ends}
        node_id = missing[0]["id"] if missing else "?"
        kind = next((str(r["kind"]) for r in rows if node_id in (r["src"], r["dst"])), "an")
        raise refusals.missing_endpoint(kind, node_id)


def _delete_edges(keys: Sequence[tuple[EdgeKind, str, str]]) -> Program:
    unique = dict.fromkeys((EdgeKind(k).value, s, d) for k, s, d in keys)
    rows = [{"kind": k, "src": s, "dst": d} for k, s, d in unique]
    if not rows:
        return 0
    (deleted,) = yield cypher.DELETE_EDGES, {"rows": rows}
    return int(deleted["deleted"])


def _delete_nodes(which: list[str] | str, statement: str) -> Program:
    """Nodes by id (a list) or a whole namespace (a string), with every edge touching them
    and their vector nodes; both statements count what they remove in one row (vector
    nodes are not counted: they are part of their node), or return none for nothing."""
    if not which:
        return Removed(nodes=0, edges=0)
    key = "namespace" if isinstance(which, str) else "ids"
    vectors = (
        cypher.DELETE_VECTORS_OF_NAMESPACE if key == "namespace" else cypher.DELETE_VECTORS_OF_NODES
    )
    yield vectors, {key: which}
    rows = yield statement, {key: which}
    if not rows:
        return Removed(nodes=0, edges=0)
    return Removed(nodes=int(rows[0]["nodes"]), edges=int(rows[0]["edges"]))


# ---- reads -------------------------------------------------------------------------------
def _get_nodes(ids: Sequence[str], with_vectors: bool) -> Program:
    unique = list(dict.fromkeys(ids))
    rows = yield cypher.GET_NODES[with_vectors], {"ids": unique}
    found = {
        row["props"]["id"]: codec.node_from_record(row["props"], with_vectors, row.get("vectors"))
        for row in rows
        if codec.is_live(row["props"])
    }
    return [found.get(i) for i in ids]


def _list_nodes(
    kind: NodeKind, namespace: str | None, with_vectors: bool, limit: int | None
) -> Program:
    key = (kind, namespace is not None, with_vectors, limit is not None)
    params = {"namespace": namespace, "limit": None if limit is None else max(0, int(limit))}
    rows = yield cypher.LIST_NODES[key], params
    return [
        codec.node_from_record(row["props"], with_vectors, row.get("vectors"))
        for row in rows
        if codec.is_live(row["props"])
    ]


def _list_where(op: ListNodes) -> Program:
    """A listing with conditions, decided on each node's JSON properties (as every
    backend decides them, :meth:`Where.holds`), then paged."""
    nodes = yield from _list_nodes(NodeKind(op.kind), op.namespace, op.with_vectors, None)
    kept = [n for n in nodes if passes(op.where, n.props())]
    stop = None if op.limit is None else op.offset + op.limit
    return kept[op.offset : stop]


def _kind_names(kinds: Sequence[EdgeKind] | None) -> tuple[str, ...] | None:
    """The kinds as a statement's key: each once, in one order (fewer plans to cache)."""
    return None if kinds is None else tuple(sorted({EdgeKind(k).value for k in kinds}))


def _edge_order(row: dict[str, Any]) -> tuple[str, str, str]:
    return (row["kind"], row["src"], row["dst"])


def _edge(row: dict[str, Any]) -> Edge:
    return codec.edge_from_record(row["kind"], row["src"], row["dst"], row["props"])


def _get_edges(ids: Sequence[str], kinds: Sequence[EdgeKind] | None, direction: str) -> Program:
    """Per given node, its out-edges before its in-edges, then by kind and ends, so that
    the order does not depend on Neo4j's storage layout."""
    unique = list(dict.fromkeys(ids))
    names = _kind_names(kinds)
    if names == () or not unique:
        return []
    rows = yield cypher.edges(direction, names), {"ids": unique}
    grouped: dict[str, Rows] = {}
    for row in sorted(rows, key=lambda r: (not r["outgoing"], *_edge_order(r))):
        grouped.setdefault(row["origin"], []).append(row)
    seen: set[tuple[str, str, str]] = set()
    out: list[Edge] = []
    for node_id in unique:
        for row in grouped.get(node_id, []):
            if _edge_order(row) not in seen:
                seen.add(_edge_order(row))
                out.append(_edge(row))
    return out


def _expand(
    ids: Sequence[str],
    kinds: Sequence[EdgeKind] | None,
    direction: str,
    exclude: frozenset[str],
    with_nodes: bool = False,
    with_vectors: bool = False,
) -> Program:
    names = _kind_names(kinds)
    params = {"ids": list(dict.fromkeys(ids)), "visited": sorted(exclude)}
    if names == () or not params["ids"]:
        return []
    if with_nodes and with_vectors:
        rows = yield cypher.expand_nodes_vectors(direction, names), params
        return [
            Link(
                link["origin"],
                row["other"],
                NodeKind(row["other_kind"]),
                link["outgoing"],
                codec.edge_from_record(link["kind"], link["src"], link["dst"], link["props"]),
                node,
            )
            for row in rows
            if codec.is_live(row["props"])
            for node in (codec.node_from_record(row["props"], True, row["vectors"]),)
            for link in row["links"]
        ]
    if with_nodes:
        rows = yield cypher.expand_nodes(direction, names), params
        return [
            Link(
                row["origin"],
                row["other"],
                NodeKind(row["other_kind"]),
                row["outgoing"],
                codec.edge_from_record(row["kind"], row["src"], row["dst"], row["edge_props"]),
                codec.node_from_record(row["props"], False),
            )
            for row in rows
            if codec.is_live(row["props"])
        ]
    rows = yield cypher.expand(direction, names), params
    return [
        Link(row["origin"], row["other"], NodeKind(row["other_kind"]), row["outgoing"], _edge(row))
        for row in rows
    ]


def _no_version() -> Program:
    """Neo4j keeps no change log a reader could compare, so nothing read may be reused."""
    return None
    yield  # a program that runs no statement


def _index_search(op: VectorSearch, state: BatchState) -> dict[str, Any] | None:
    """The parameters of ``op``'s first index query; None when the index is not asked
    (nothing to find, a zero vector, writes it cannot see yet, an index still building)."""
    kind = NodeKind(op.kind)
    if op.k <= 0 or (kind, op.field) not in state.dims:
        return None
    vector = np.asarray(op.vector, dtype=np.float32)
    if state.wrote or not np.any(vector) or (kind, op.field) in state.populating:
        return None
    return {
        "vector": vector.tolist(),
        "namespace": op.namespace,
        "exclude": sorted(op.exclude_ids),
        "index": cypher.vector_index_name(kind, op.field),
        "fetch": max(op.k * state.oversample, 16) + len(op.exclude_ids),
    }


def prefetch_reads(ops: Sequence[Op], state: BatchState) -> Program | None:
    """The first statement of every primitive read of a read batch, in one statement
    (:func:`cypher.together`); None when there are not two such statements.

    The reads of one batch do not depend on each other, and each statement is a round
    trip and a transaction on the server. The programs are begun here and left in
    ``state.begun``, each with its first statement's rows, for the batch to drive on; a
    batch of several index searches (a bulk writer's) is :func:`prefetch_searches`.
    """
    if (searches := prefetch_searches(ops, state)) is not None:
        return searches
    firsts: list[Begun] = []
    for op in ops:
        if graph_programs.is_program(op) or isinstance(op, WRITE_OPS):
            continue
        begun = program(op, state)
        try:
            firsts.append((id(op), begun, next(begun)))
        except StopIteration as done:  # answered without a statement
            state.begun[id(op)] = _finished(done.value)
    fused = 2 <= len(firsts) <= MOST_TOGETHER
    text = cypher.together(tuple(t for _, _, (t, _) in firsts)) if fused else None
    if text is None:
        for key, begun, first in firsts:
            state.begun[key] = _continued(begun, first, None)
        return None
    return _together(firsts, text, state)


def _together(firsts: list[Begun], text: str, state: BatchState) -> Program:
    params = {
        f"s{at}_{name}": value
        for at, (_, _, (_, given)) in enumerate(firsts)
        for name, value in given.items()
    }
    rows = yield text, params
    for row in rows:
        key, begun, first = firsts[row["at"]]
        names = cypher.columns(first[0])
        found = [dict(zip(names, values, strict=True)) for values in row["rows"]]
        state.begun[key] = _continued(begun, first, found)


def _continued(begun: Program, first: Statement, rows: Rows | None) -> Program:
    """A program whose first statement is ``first``, from there on: ``rows`` are that
    statement's, or None when it is still to run."""
    if rows is None:
        rows = yield first
    try:
        statement = begun.send(rows)
        while True:
            rows = yield statement
            statement = begun.send(rows)
    except StopIteration as done:
        return done.value


def _finished(value: Any) -> Program:
    return value
    yield  # a program that runs no statement


def prefetch_searches(ops: Sequence[Op], state: BatchState) -> Program | None:
    """The first index query of every search in a read batch, in one statement; None
    when the batch has fewer than two such searches.

    Each statement of a read batch is a round trip of its own, and a bulk write looks up
    the neighbours of every task it writes, one search each: one statement for them all
    saves all but one of those trips. A search that needs more candidates than its first
    query gave asks again by itself (:func:`_vector_search`).
    """
    searches = [
        (op, params)
        for op in ops
        if isinstance(op, VectorSearch)
        and not op.with_nodes  # asked with its nodes, a search has a statement of its own
        and (params := _index_search(op, state)) is not None
    ]
    return _prefetch(searches, state) if len(searches) >= 2 else None


def _prefetch(searches: list[tuple[VectorSearch, dict[str, Any]]], state: BatchState) -> Program:
    rows = yield (
        cypher.VECTOR_QUERIES,
        {"searches": [{**params, "at": i} for i, (_, params) in enumerate(searches)]},
    )
    for row in rows:
        state.prefetched[id(searches[row["at"]][0])] = row


def _vector_search(op: VectorSearch, state: BatchState) -> Program:
    kind = NodeKind(op.kind)
    if op.k <= 0 or (kind, op.field) not in state.dims:
        return []
    params = _index_search(op, state)
    if params is None:
        vector = np.asarray(op.vector, dtype=np.float32)
        scan = {
            "vector": vector.tolist(),
            "namespace": op.namespace,
            "field": op.field,
            "exclude": sorted(op.exclude_ids),
            "zero": not bool(np.any(vector)),
            "k": int(op.k),
        }
        rows = yield cypher.VECTOR_SCAN[kind], scan
        found = [Hit(row["id"], 2.0 * float(row["score"]) - 1.0) for row in rows]
        if not op.with_nodes:
            return found
        nodes = yield from _get_nodes([h.id for h in found], op.with_vectors)
        return [replace(h, node=n) for h, n in zip(found, nodes, strict=True) if n is not None]
    if op.with_nodes:
        params["k"] = int(op.k)
    statement = cypher.VECTOR_QUERY_NODES[op.with_vectors] if op.with_nodes else cypher.VECTOR_QUERY
    row = state.prefetched.pop(id(op), None)
    while True:
        if row is None:
            (row,) = yield statement, params
        # The index can hand back a node that a concurrent transaction is deleting; its
        # properties then read as null. It is gone, so it is no hit.
        hits = [
            h
            for h in row["hits"]
            if h["id"] is not None and (not op.with_nodes or codec.is_live(h["props"]))
        ]
        if len(hits) >= op.k or row["fetched"] < params["fetch"]:
            break
        params["fetch"] *= 4
        row = None
    ranked = sorted(hits, key=lambda h: (-float(h["score"]), h["id"]))[: op.k]
    return [
        Hit(
            h["id"],
            2.0 * float(h["score"]) - 1.0,
            codec.node_from_record(h["props"], op.with_vectors, h.get("vectors"))
            if op.with_nodes
            else None,
        )
        for h in ranked
    ]


def _count(namespace: str | None) -> Program:
    if namespace is None:
        nodes = yield cypher.COUNT_NODES, {}
        edges = yield cypher.COUNT_EDGES, {}
    else:
        nodes = yield cypher.COUNT_NODES_IN, {"namespace": namespace}
        edges = yield cypher.COUNT_EDGES_IN, {"namespace": namespace}
    return Counts(
        nodes={r["kind"]: int(r["n"]) for r in nodes if r["n"]},
        edges={r["kind"]: int(r["n"]) for r in edges if r["n"]},
    )


def _list_namespaces() -> Program:
    rows = yield cypher.LIST_NAMESPACES, {}
    return [row["namespace"] for row in rows]
