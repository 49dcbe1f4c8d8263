"""Storage backends for gmem's three-tier memory graph, behind one typed protocol.

``EmbeddedStore`` (networkx + SQLite) is the default; ``graph_store.neo4j.Neo4jStore``
needs the ``neo4j`` extra and a server. :func:`open_store` picks one from a URL.
"""

from __future__ import annotations

from pathlib import Path

from graph_store.base import GraphStore
from graph_store.embedded import EmbeddedStore
from graph_store.model import (
    DEFAULT_NAMESPACE,
    Edge,
    EdgeKind,
    Insight,
    InsightRule,
    Item,
    Node,
    NodeKind,
    Outcome,
    Provenance,
    QueryNode,
    RuleEvidence,
    Utterance,
)
from graph_store.ops import Counts, Hit, Reached, Removed
from graph_store.url import StoreURL, parse_store_url


def open_store(url: str | Path, **options: object) -> GraphStore:
    """Open a store from a path or URL.

    ``path/to/file.db``, ``sqlite:///abs/path.db`` and ``:memory:`` open an
    :class:`EmbeddedStore`; ``neo4j://``/``bolt://`` URLs open a Neo4j store, with
    ``user``/``password`` options or ``GMEM_NEO4J_USER``/``GMEM_NEO4J_PASSWORD``.
    """
    where = parse_store_url(url)
    if where.backend == "neo4j":
        from graph_store.neo4j import Neo4jStore

        return Neo4jStore(where.target, **options)  # type: ignore[arg-type]
    return EmbeddedStore(where.target, **options)  # type: ignore[arg-type]


__all__ = [
    "DEFAULT_NAMESPACE",
    "Counts",
    "Edge",
    "EdgeKind",
    "EmbeddedStore",
    "GraphStore",
    "Hit",
    "Insight",
    "InsightRule",
    "Item",
    "Node",
    "NodeKind",
    "Outcome",
    "Provenance",
    "QueryNode",
    "Reached",
    "Removed",
    "RuleEvidence",
    "StoreURL",
    "Utterance",
    "open_store",
    "parse_store_url",
]
