"""Copy a memory between stores (embedded file to Neo4j and back) through the protocol.

The copy goes kind by kind in chunks, nodes before edges, with vectors; every write is an
upsert, so a copy interrupted half-way is finished by running it again. Afterwards the
target's counts are checked against the source's: a mismatch is an error, not a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gmem.errors import GmemError
from graph_store.base import GraphStore
from graph_store.model import NodeKind
from graph_store.ops import Counts, GetEdges, ListNodes, PutEdges, PutNodes


class MigrationError(GmemError):
    """The target does not hold what the source holds after a copy."""


@dataclass(frozen=True)
class MigrationReport:
    source: Counts
    target: Counts


def copy_memory(
    source: GraphStore,
    target: GraphStore,
    namespace: str | None = None,
    chunk: int = 500,
    progress: Callable[[str, int], None] | None = None,
) -> MigrationReport:
    """Copy every node and edge of ``namespace`` (or of all namespaces) into ``target``."""
    before = source.count(namespace)
    ids: list[str] = []
    for kind in NodeKind:
        (nodes,) = source.batch([ListNodes(kind, namespace, with_vectors=True)])
        for start in range(0, len(nodes), chunk):
            part = nodes[start : start + chunk]
            target.batch([PutNodes(part)])
            if progress is not None:
                progress(kind.value, len(part))
        ids += [n.id for n in nodes]
    for start in range(0, len(ids), chunk):
        (edges,) = source.batch([GetEdges(ids[start : start + chunk], None, "out")])
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
    return MigrationReport(before, after)
