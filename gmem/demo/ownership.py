"""Which data in a store belongs to the demo, so that ``gmem demo`` never destroys a user's.

The demo writes one namespace, :data:`DEMO_NAMESPACE`, and tags every task it plays with
:data:`DEMO_MARK` in the task's metadata. A namespace is the demo's own when it holds
tasks and every one of them carries the mark, and nothing but the three tiers (no adapter
records): that is data an earlier demo run wrote, and the only data a new run replaces.
Anything else in the store is someone's memory. Without ``overwrite`` the demo refuses to
run in a store that holds any, rather than guess that it may share the store; with it,
the demo writes its namespace beside the other data and leaves that data as it was (the
one exception, which the flag's help names, is a ``demo`` namespace the demo did not
write: it is replaced).
"""

from __future__ import annotations

from dataclasses import dataclass

from gmem.errors import UserInputError
from graph_store.base import GraphStore
from graph_store.model import NodeKind, QueryNode
from graph_store.ops import DeleteNamespace

DEMO_NAMESPACE = "demo"
DEMO_MARK = "demo_task"  # key in a demo task's metadata: the demo world's task id
_TIERS = {NodeKind.QUERY.value, NodeKind.UTTERANCE.value, NodeKind.INSIGHT.value}


class DemoStoreError(UserInputError):
    """The demo was pointed at a store holding memory it did not write."""


@dataclass(frozen=True)
class Claim:
    """What the demo will do to a store: namespaces it replaces, and those it leaves."""

    cleared: tuple[str, ...]
    kept: tuple[str, ...]


def demo_made(store: GraphStore, namespace: str) -> bool:
    """True when every node of ``namespace`` came from a demo run."""
    counts = store.count(namespace)
    if set(k for k, n in counts.nodes.items() if n) - _TIERS:
        return False
    queries = store.list_nodes(NodeKind.QUERY, namespace)
    return bool(queries) and all(
        isinstance(q, QueryNode) and DEMO_MARK in q.metadata for q in queries
    )


def claim(store: GraphStore, where: str, overwrite: bool = False) -> Claim:
    """Clear the demo's earlier data from ``store`` and return what was done; raise
    :class:`DemoStoreError`, changing nothing, when other memory is there and
    ``overwrite`` is not set."""
    spaces = store.namespaces()
    mine = [ns for ns in spaces if demo_made(store, ns)]
    others = [ns for ns in spaces if ns not in mine]
    if others and not overwrite:
        names = ", ".join(repr(ns) for ns in others[:5]) + (", ..." if len(others) > 5 else "")
        raise DemoStoreError(
            f"{where} holds memory the demo did not write (namespace {names}); pass another "
            f"--store, or --overwrite to write the demo's namespace {DEMO_NAMESPACE!r} beside it"
        )
    cleared = [*mine, *(ns for ns in others if ns == DEMO_NAMESPACE)]
    if cleared:
        store.batch([DeleteNamespace(ns) for ns in cleared])
    return Claim(tuple(cleared), tuple(ns for ns in others if ns != DEMO_NAMESPACE))


__all__ = ["DEMO_MARK", "DEMO_NAMESPACE", "Claim", "DemoStoreError", "claim", "demo_made"]
