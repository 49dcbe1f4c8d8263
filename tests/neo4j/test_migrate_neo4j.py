"""Embedded -> Neo4j -> embedded keeps the memory whole, counts checked."""

from __future__ import annotations

from pathlib import Path

from gmem.migrate import copy_memory
from graph_store import EmbeddedStore, NodeKind
from graph_store.neo4j import Neo4jStore
from tests.test_migrate import build


def test_round_trip_through_neo4j(tmp_path: Path, neo4j_store: Neo4jStore) -> None:
    src = build(tmp_path / "src.db")
    there = copy_memory(src, neo4j_store)
    assert there.target == src.count()
    back = EmbeddedStore(tmp_path / "back.db")
    copy_memory(neo4j_store, back)
    assert back.count() == src.count()
    for kind in NodeKind:
        originals = {n.id: n for n in src.list_nodes(kind, with_vectors=True)}
        assert {n.id: n for n in back.list_nodes(kind, with_vectors=True)} == originals
