"""Storage backends for gmem's three-tier memory graph, behind one typed protocol.

``EmbeddedStore`` (networkx + SQLite) is the default; ``graph_store.neo4j.Neo4jStore``
needs the ``neo4j`` extra and a server. :func:`open_store` picks one from a URL.
"""

from __future__ import annotations

from pathlib import Path

from graph_store.base import GraphStore
from graph_store.embedded import EmbeddedStore
from graph_store.errors import ConfigError
from graph_store.model import (
    DEFAULT_NAMESPACE,
    Edge,
    EdgeKind,
    Insight,
    Item,
    Node,
    NodeKind,
    Outcome,
    Provenance,
    QueryNode,
    Utterance,
)
from graph_store.ops import Counts, Hit, Reached, Removed

_NEO4J_SCHEMES = ("neo4j://", "neo4j+s://", "neo4j+ssc://", "bolt://", "bolt+s://", "bolt+ssc://")


def open_store(url: str | Path, **options: object) -> GraphStore:
    """Open a store from a path or URL.

    ``path/to/file.db``, ``sqlite:///abs/path.db`` and ``:memory:`` open an
    :class:`EmbeddedStore`; ``neo4j://``/``bolt://`` URLs open a Neo4j store, with
    ``user``/``password`` options or ``GMEM_NEO4J_USER``/``GMEM_NEO4J_PASSWORD``.
    """
    text = str(url)
    if text.startswith(_NEO4J_SCHEMES):
        from graph_store.neo4j import Neo4jStore

        return Neo4jStore(text, **options)  # type: ignore[arg-type]
    if text.startswith("sqlite://"):
        text = text.removeprefix("sqlite://")
        text = text.removeprefix("/") if text.startswith("//") else text
        text = text or ":memory:"
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise ConfigError(
            f"unknown store URL scheme {scheme!r}: use a file path, sqlite:///path or neo4j://host"
        )
    return EmbeddedStore(text, **options)  # type: ignore[arg-type]


__all__ = [
    "DEFAULT_NAMESPACE",
    "Counts",
    "Edge",
    "EdgeKind",
    "EmbeddedStore",
    "GraphStore",
    "Hit",
    "Insight",
    "Item",
    "Node",
    "NodeKind",
    "Outcome",
    "Provenance",
    "QueryNode",
    "Reached",
    "Removed",
    "Utterance",
    "open_store",
]
