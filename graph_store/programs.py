"""The operations that are algorithms, written once over the primitives every backend has.

A program is a generator: it yields primitive operations and receives their results, and
returns the operation's result. :func:`run_op` drives it with a backend's own runner, in
the backend's transaction, so a program reads the writes before it in the same batch and
rolls back with it. This is how PyTorch Geometric keeps sampling out of its storage
classes: a backend only stores and fetches, and breadth-first search, the task-delete
cascade and their error messages live here, the same for every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from graph_store.errors import NotFoundError, UnknownNamespaceError
from graph_store.model import EdgeKind, NodeKind, QueryNode
from graph_store.ops import (
    DeleteNamespace,
    DeleteNodes,
    DeleteTask,
    Expand,
    GetEdges,
    GetNodes,
    Link,
    Neighbors,
    Op,
    Reached,
    Removed,
)

Program = Generator[Op, Any, Any]
#: Runs one primitive operation inside the current transaction and returns its result.
Runner = Callable[[Op], Any]


def _link_order(link: Link) -> tuple[bool, str, str, str]:
    """Out-edges before in-edges, then by kind and ends: an order no backend's storage
    layout decides, so both backends reach the same nodes through the same edges."""
    edge = link.via
    return (not link.outgoing, edge.kind.value, edge.src, edge.dst)


def neighbors(op: Neighbors) -> Program:
    """Level-by-level breadth-first search, one :class:`Expand` per hop.

    The frontier is walked in discovery order, and a node is reached through the first
    edge (in :func:`_link_order`) of the first frontier node that touches it.
    """
    want = None if op.node_kind is None else NodeKind(op.node_kind)
    frontier = list(dict.fromkeys(op.ids))
    visited = set(frontier)
    reached: list[Reached] = []
    for hop in range(1, op.hops + 1):
        if not frontier:
            break
        links: list[Link] = yield Expand(
            frontier, op.kinds, op.direction, frozenset(visited), op.with_nodes, op.with_vectors
        )
        by_origin: dict[str, list[Link]] = {}
        for link in sorted(links, key=_link_order):
            by_origin.setdefault(link.origin, []).append(link)
        next_frontier: list[str] = []
        for origin in frontier:
            for link in by_origin.get(origin, []):
                if link.other in visited or (want is not None and link.other_kind != want):
                    continue
                visited.add(link.other)
                reached.append(Reached(link.other, hop, link.via, link.node))
                next_frontier.append(link.other)
        frontier = next_frontier
    return reached


def delete_task(op: DeleteTask) -> Program:
    """A query and every utterance of its trace, with all their edges; nothing else."""
    (node,) = yield GetNodes([op.query_id])
    if not isinstance(node, QueryNode):
        raise NotFoundError(f"no task with id {op.query_id}")
    trace = yield GetEdges([op.query_id], [EdgeKind.HAS_TRACE], "out")
    removed: Removed = yield DeleteNodes([op.query_id, *(edge.dst for edge in trace)])
    return removed


def delete_namespace(op: DeleteNamespace) -> Program:
    """The primitive, refused for a namespace that holds nothing (most likely a typo)."""
    removed: Removed = yield op
    if removed.nodes == 0:
        raise UnknownNamespaceError(f"namespace {op.namespace!r} holds no memory")
    return removed


_PROGRAMS: dict[type, Callable[[Any], Program]] = {
    Neighbors: neighbors,
    DeleteTask: delete_task,
    DeleteNamespace: delete_namespace,
}


def is_program(op: Op) -> bool:
    """Whether ``op`` is one of the operations written here over the primitives."""
    return type(op) in _PROGRAMS


def run_op(op: Op, primitive: Runner) -> Any:
    """The result of ``op``: a primitive goes straight to the backend, a program is driven
    over it."""
    make = _PROGRAMS.get(type(op))
    if make is None:
        return primitive(op)
    program = make(op)
    try:
        step = next(program)
        while True:
            step = program.send(primitive(step))
    except StopIteration as done:
        return done.value
