"""Copy a memory between stores (embedded file to Neo4j and back) through the protocol.

The copy goes kind by kind in chunks, nodes before edges, with vectors; every write is an
upsert, so a copy interrupted half-way is finished by running it again. Afterwards the
target's counts are checked against the source's: a mismatch is an error, not a warning.

Stores written before gmem refused lone UTF-16 surrogates (half of a pair, which a Python
string can hold but no UTF-8 text or Neo4j string can) may still hold some. No store can
take them again, so the copy looks for them before it writes anything: by default it
refuses, naming the nodes, and writes nothing; asked to repair, it stores U+FFFD in place
of each lone surrogate and reports every node and edge it changed. Text is never changed
without the caller asking, and never dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gmem.errors import ConflictError, GmemError
from graph_store.base import GraphStore, holds_lone_surrogate
from graph_store.model import Edge, Node, NodeKind, node_from_props
from graph_store.ops import Counts, GetEdges, ListNodes, PutEdges, PutNodes


class MigrationError(GmemError):
    """The target does not hold what the source holds after a copy."""


@dataclass(frozen=True)
class MigrationReport:
    source: Counts
    target: Counts
    #: Ids of the nodes, and ``kind:src->dst`` of the edges, whose lone surrogates the copy
    #: replaced with U+FFFD (only with ``repair_text``).
    repaired: list[str] = field(default_factory=list)


def _repaired(value: Any) -> Any:
    """``value`` with U+FFFD in place of every lone surrogate, in keys and values."""
    if isinstance(value, str):
        return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in value)
    if isinstance(value, dict):
        return {_repaired(k): _repaired(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_repaired(v) for v in value]
    return value


def _fields(node: Node) -> dict[str, Any]:
    """The node's fields as Python values (JSON mode would mangle a lone surrogate in a
    metadata key before it could be seen)."""
    return node.model_dump(exclude={"embedding", "graph_embedding"})


def _repair_node(node: Node) -> Node:
    fields = _repaired(_fields(node))
    return node_from_props(node.kind, fields, node.embedding, node.graph_embedding)


def _repair_edge(edge: Edge) -> Edge:
    return edge.model_copy(update={"props": _repaired(dict(edge.props))})


def _edge_name(edge: Edge) -> str:
    return f"{edge.kind.value}:{edge.src}->{edge.dst}"


def _refuse(bad: Sequence[str]) -> MigrationError:
    shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    return MigrationError(
        f"{len(bad)} records hold lone surrogates (U+D800..U+DFFF, stored before gmem "
        f"refused them: {shown}); nothing was copied. Rerun with --repair-text to store "
        "U+FFFD in their place"
    )


def _lone_surrogates(source: GraphStore, namespace: str | None, chunk: int) -> list[str]:
    """Every node id and edge name in the source that holds a lone surrogate (a first
    pass without vectors, so that a refusal comes before any write)."""
    bad: list[str] = []
    ids: list[str] = []
    for kind in NodeKind:
        (nodes,) = source.batch([ListNodes(kind, namespace)])
        bad += [n.id for n in nodes if holds_lone_surrogate(_fields(n))]
        ids += [n.id for n in nodes]
    for start in range(0, len(ids), chunk):
        (edges,) = source.batch([GetEdges(ids[start : start + chunk], None, "out")])
        bad += [_edge_name(e) for e in edges if holds_lone_surrogate(dict(e.props))]
    return bad


def copy_memory(
    source: GraphStore,
    target: GraphStore,
    namespace: str | None = None,
    chunk: int = 500,
    progress: Callable[[str, int], None] | None = None,
    *,
    repair_text: bool = False,
) -> MigrationReport:
    """Copy every node and edge of ``namespace`` (or of all namespaces) into ``target``.

    Lone surrogates in the source (see the module) make it raise :class:`MigrationError`
    before anything is written, unless ``repair_text``.
    """
    before = source.count(namespace)
    bad = _lone_surrogates(source, namespace, chunk)
    if bad and not repair_text:
        raise _refuse(bad)
    flagged = set(bad)
    ids: list[str] = []
    for kind in NodeKind:
        (nodes,) = source.batch([ListNodes(kind, namespace, with_vectors=True)])
        for start in range(0, len(nodes), chunk):
            part = [_repair_node(n) if n.id in flagged else n for n in nodes[start : start + chunk]]
            try:
                target.batch([PutNodes(part)])
            except ConflictError as exc:
                raise MigrationError(
                    f"the target holds a newer version of a node than the source ({exc}); "
                    "copy into an empty store, or from the store that holds the newer memory"
                ) from None
            if progress is not None:
                progress(kind.value, len(part))
        ids += [n.id for n in nodes]
    for start in range(0, len(ids), chunk):
        (edges,) = source.batch([GetEdges(ids[start : start + chunk], None, "out")])
        edges = [_repair_edge(e) if _edge_name(e) in flagged else e for e in edges]
        for e_start in range(0, len(edges), chunk * 4):
            target.batch([PutEdges(edges[e_start : e_start + chunk * 4])])
        if progress is not None:
            progress("edges", len(edges))
    after = target.count(namespace)
    for what, want, got in (
        ("nodes", before.nodes, after.nodes),
        ("edges", before.edges, after.edges),
    ):
        short = {k: (n, got.get(k, 0)) for k, n in want.items() if got.get(k, 0) < n}
        if short:
            detail = ", ".join(f"{k} {g}/{n}" for k, (n, g) in sorted(short.items()))
            raise MigrationError(
                f"copy incomplete: the target holds fewer {what} ({detail}); "
                "run the migration again"
            )
    return MigrationReport(before, after, bad)
