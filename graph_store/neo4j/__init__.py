"""The Neo4j backend: :class:`Neo4jStore`, its Cypher, schema and local server script.

Importing this package does not import the ``neo4j`` driver; constructing a store does,
so ``graph_store`` stays usable without the ``neo4j`` extra installed.
"""

from graph_store.neo4j.store import Neo4jStore

__all__ = ["Neo4jStore"]
