"""Stores written before vector nodes: refused at open, upgraded in place without loss.

The old layout is written here as the old ``Neo4jStore`` wrote it: the node's own
property map with ``embedding`` and ``graph_embedding`` float lists in it, and vector
indexes named ``gmem_<label>_<field>`` on the nodes' label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from graph_store import Insight, NodeKind, QueryNode
from graph_store.errors import StoreUpgradeNeededError
from graph_store.model import Node
from graph_store.neo4j import Neo4jStore, codec, cypher
from graph_store.neo4j.upgrade import upgrade
from tests.cli import gmem
from tests.neo4j.conftest import Neo4jSettings
from tests.neo4j.test_cli_neo4j import one_line_error

DIM = 12


def write_old_layout(store: Neo4jStore, nodes: Sequence[Node], index: bool = True) -> None:
    """``nodes`` stored the way gmem stored them before vector nodes."""
    by_kind: dict[NodeKind, list[dict[str, Any]]] = {}
    for seq, node in enumerate(nodes, start=1):
        props = {**codec.node_props(node), **(codec.vector_props(node) or {}), "seq": seq}
        by_kind.setdefault(node.kind, []).append({"id": node.id, "props": props})
    dims = {
        (node.kind, field): int(vec.shape[0])
        for node in nodes
        for field in codec.VECTOR_FIELDS
        if (vec := getattr(node, field)) is not None
    }
    with store._driver.session(database="neo4j") as session:
        for (kind, field), dim in dims.items() if index else ():
            name = cypher.OLD_VECTOR_INDEXES[(kind, field)]
            session.run(
                f"CREATE VECTOR INDEX {name} FOR (n:{kind.value}) ON (n.{field}) "
                "OPTIONS {indexConfig: {`vector.dimensions`: $dims, "
                "`vector.similarity_function`: 'cosine'}}",
                {"dims": dim},
            ).consume()
            session.run("CALL db.awaitIndex($name, 60)", {"name": name}).consume()
        for kind, rows in by_kind.items():
            session.run(cypher.DUMP_NODES[kind], {"rows": rows}).consume()


def old_memory(n: int = 60) -> list[Node]:
    rng = np.random.default_rng(5)
    nodes: list[Node] = [
        QueryNode(
            text=f"task {i}",
            namespace="a" if i % 3 else "b",
            embedding=rng.normal(size=DIM).astype(np.float32),
            graph_embedding=rng.normal(size=4).astype(np.float32) if i % 2 else None,
        )
        for i in range(n)
    ]
    nodes += [
        Insight(text=f"lesson {i}", embedding=rng.normal(size=DIM).astype(np.float32))
        for i in range(n // 4)
    ]
    nodes.append(QueryNode(text="no vector at all"))
    return nodes


def vector_properties_on_nodes(store: Neo4jStore) -> int:
    records, _, _ = store._driver.execute_query(
        f"MATCH (n:{cypher.ANY}) WHERE n.embedding IS NOT NULL OR n.graph_embedding IS NOT NULL "
        "RETURN count(n) AS n",
        database_="neo4j",
    )
    return int(records[0]["n"])


def vector_indexes(store: Neo4jStore) -> dict[str, list[str]]:
    records, _, _ = store._driver.execute_query(
        "SHOW VECTOR INDEXES YIELD name, labelsOrTypes RETURN name, labelsOrTypes",
        database_="neo4j",
    )
    return {r["name"]: r["labelsOrTypes"] for r in records}


def exact_top(nodes: Sequence[Node], probe: np.ndarray, k: int, ns: str | None) -> list[str]:
    def cos(v: np.ndarray) -> float:
        return float(v @ probe / (np.linalg.norm(v) * np.linalg.norm(probe)))

    found = [
        (cos(n.embedding), n.id)
        for n in nodes
        if isinstance(n, QueryNode) and n.embedding is not None and ns in (None, n.namespace)
    ]
    return [i for _, i in sorted(found, key=lambda t: (-t[0], t[1]))[:k]]


@pytest.fixture
def old_store(neo4j_store: Neo4jStore, neo4j_settings: Neo4jSettings) -> list[Node]:
    """The test database in the old layout; its nodes."""
    nodes = old_memory()
    write_old_layout(neo4j_store, nodes)
    return nodes


def test_opening_an_old_store_is_a_one_line_error_naming_the_upgrade(
    old_store: list[Node], neo4j_settings: Neo4jSettings
) -> None:
    with pytest.raises(StoreUpgradeNeededError) as info:
        neo4j_settings.open()
    message = str(info.value)
    assert "\n" not in message
    assert f"gmem upgrade --store {neo4j_settings.uri}" in message
    assert neo4j_settings.password not in message


def test_an_old_store_whose_indexes_are_gone_is_still_refused(
    neo4j_store: Neo4jStore, neo4j_settings: Neo4jSettings
) -> None:
    """Vectors on the newest nodes alone mark the old layout (an index dropped by hand,
    or killed in the middle of an old ``reindex_vectors``)."""
    write_old_layout(neo4j_store, old_memory(8), index=False)
    with pytest.raises(StoreUpgradeNeededError):
        neo4j_settings.open()


def test_upgrade_keeps_every_vector_and_every_search_result(
    old_store: list[Node], neo4j_settings: Neo4jSettings
) -> None:
    with neo4j_settings.open(refuse_old_layout=False) as raw:
        counts = raw.count()
        report = upgrade(raw, batch=7)  # many batches, the last one short
        assert vector_properties_on_nodes(raw) == 0
        indexes = vector_indexes(raw)
    with_vectors = [n for n in old_store if n.embedding is not None]
    assert sum(report.moved.values()) == len(with_vectors)
    assert report.seen["Query"] == sum(isinstance(n, QueryNode) for n in old_store)
    assert sorted(report.dropped) == sorted(
        cypher.OLD_VECTOR_INDEXES[k]
        for k in (
            (NodeKind.QUERY, "embedding"),
            (NodeKind.QUERY, "graph_embedding"),
            (NodeKind.INSIGHT, "embedding"),
        )
    )
    assert indexes == {
        cypher.vector_index_name(NodeKind.QUERY, "embedding"): ["QueryVector"],
        cypher.vector_index_name(NodeKind.QUERY, "graph_embedding"): ["QueryVector"],
        cypher.vector_index_name(NodeKind.INSIGHT, "embedding"): ["InsightVector"],
    }
    with neo4j_settings.open() as store:
        back = store.get_nodes([n.id for n in old_store], with_vectors=True)
        assert back == old_store  # every field and every vector, bit for bit
        probe = np.random.default_rng(9).normal(size=DIM).astype(np.float32)
        for ns in ("a", "b", None):
            hits = store.vector_search(NodeKind.QUERY, probe, k=5, namespace=ns)
            assert [h.id for h in hits] == exact_top(old_store, probe, 5, ns)
        structural = old_store[1].graph_embedding
        assert structural is not None
        (gnn,) = store.vector_search(NodeKind.QUERY, structural, k=1, field="graph_embedding")
        assert gnn.id == old_store[1].id
        assert store.count() == counts  # vector nodes are not gmem nodes


def test_upgrade_resumes_after_a_kill_and_a_rerun_changes_nothing(
    old_store: list[Node], neo4j_settings: Neo4jSettings
) -> None:
    class Killed(Exception):
        pass

    def die_after_two_batches(what: str, done: int, total: int) -> None:
        if what == "Query" and done >= 14:
            raise Killed

    with neo4j_settings.open(refuse_old_layout=False) as raw, pytest.raises(Killed):
        upgrade(raw, batch=7, progress=die_after_two_batches)
    with pytest.raises(StoreUpgradeNeededError):  # half done is still old
        neo4j_settings.open()
    with neo4j_settings.open(refuse_old_layout=False) as raw:
        assert vector_indexes(raw) == {}  # the old ones went first: the mark says "old"
        left = vector_properties_on_nodes(raw)
        assert 0 < left < sum(n.embedding is not None for n in old_store)
        finished = upgrade(raw, batch=7)
        assert sum(finished.moved.values()) == left
        again = upgrade(raw, batch=7)
        assert not again.changed
        marks, _, _ = raw._driver.execute_query(cypher.UPGRADE_UNDER_WAY, database_="neo4j")
        assert marks == []
    with neo4j_settings.open() as store:
        assert store.get_nodes([n.id for n in old_store], with_vectors=True) == old_store


def test_cli_upgrade_then_the_store_opens(
    old_store: list[Node], neo4j_settings: Neo4jSettings
) -> None:
    url = neo4j_settings.uri
    env = {"GMEM_NEO4J_USER": neo4j_settings.user, "GMEM_NEO4J_PASSWORD": neo4j_settings.password}
    refused = gmem("--store", url, "stats", env=env)
    one_line_error(refused, "gmem upgrade --store", url)
    done = gmem("--store", url, "upgrade", "--batch", "10", env=env)
    assert done.exit_code == 0, done.output
    assert "moved the vectors of" in done.stdout and "the store is current" in done.stdout
    again = gmem("upgrade", "--store", url, env=env)
    assert again.exit_code == 0 and "already current" in again.stdout, again.output
    assert gmem("--store", url, "stats", env=env).exit_code == 0


def test_cli_upgrade_user_errors_are_one_line(tmp_path: Any) -> None:
    one_line_error(gmem("--store", tmp_path / "missing.db", "upgrade"), "no gmem store")
    bad = gmem("--store", tmp_path / "missing.db", "upgrade", "--batch", "0")
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    unreachable = gmem("--store", "bolt://127.0.0.1:9", "upgrade")
    one_line_error(unreachable, "cannot reach")
