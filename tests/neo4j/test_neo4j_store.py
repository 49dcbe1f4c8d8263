"""What the conformance suite cannot see: Neo4j's schema, Cypher safety, faults, retries.

Every test talks to the real server named by ``GMEM_NEO4J_URI``; nothing is mocked
except the one statement a fault-injection test breaks on purpose.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

import graph_store.neo4j.programs as programs_module
from graph_store import Edge, EdgeKind, Insight, NodeKind, Outcome, QueryNode, Utterance
from graph_store.errors import StoreError, StoreUnavailableError, UserInputError
from graph_store.model import query_id_for
from graph_store.neo4j import Neo4jStore, cypher
from graph_store.ops import GetNodes, PutEdges, PutNodes, VectorSearch
from tests.neo4j.conftest import Neo4jSettings

EVIL = [
    "x'}) MATCH (n) DETACH DELETE n //",
    'x"}) MATCH (n) DETACH DELETE n //',
    "x` MATCH (n) DETACH DELETE n //",
    "$ids} RETURN 1; MATCH (n) DETACH DELETE n",
    "\\' OR 1=1 --",
]


def a_task(
    text: str, ns: str = "default", n: int = 3, role: str = "planner", agent: str = "alice"
) -> tuple[QueryNode, list[Utterance], list[Edge]]:
    q = QueryNode(id=query_id_for(ns, text), text=text, namespace=ns, outcome=Outcome.SUCCESS)
    utts = [
        Utterance(
            query_id=q.id,
            namespace=ns,
            step=i,
            agent=agent,
            role=role,
            content=f"{text} / step {i}",
        )
        for i in range(n)
    ]
    edges = [Edge(kind=EdgeKind.HAS_TRACE, src=q.id, dst=u.id) for u in utts]
    edges += [Edge(kind=EdgeKind.NEXT, src=a.id, dst=b.id) for a, b in itertools.pairwise(utts)]
    return q, utts, edges


def schema(store: Neo4jStore) -> set[tuple[str, str]]:
    records, _, _ = store._driver.execute_query(
        "SHOW INDEXES YIELD name, type WHERE name STARTS WITH 'gmem_' RETURN name, type",
        database_="neo4j",
    )
    return {(r["name"], r["type"]) for r in records}


def raw_count(store: Neo4jStore) -> int:
    records, _, _ = store._driver.execute_query("MATCH (n) RETURN count(n) AS n", database_="neo4j")
    return int(records[0]["n"])


# ---- schema ------------------------------------------------------------------------------
def test_schema_is_applied_at_connect_and_idempotent(
    neo4j_store: Neo4jStore, neo4j_settings: Neo4jSettings
) -> None:
    before = schema(neo4j_store)
    for kind in NodeKind:
        label = kind.value.lower()
        assert (f"gmem_{label}_id", "RANGE") in before  # backs the uniqueness constraint
        assert (f"gmem_{label}_namespace", "RANGE") in before
    assert {("gmem_query_text", "FULLTEXT"), ("gmem_insight_text", "FULLTEXT")} <= before
    for _ in range(2):
        neo4j_settings.open().close()
    assert schema(neo4j_store) == before
    constraints, _, _ = neo4j_store._driver.execute_query(
        "SHOW CONSTRAINTS YIELD name, type, labelsOrTypes, properties "
        "WHERE name STARTS WITH 'gmem_' RETURN name, type, labelsOrTypes, properties",
        database_="neo4j",
    )
    assert {
        (tuple(c["labelsOrTypes"]), tuple(c["properties"]), c["type"]) for c in constraints
    } == {((k.value,), ("id",), "UNIQUENESS") for k in NodeKind}


def test_vector_index_is_created_on_first_vector_with_its_dimension(
    neo4j_store: Neo4jStore,
) -> None:
    assert not any(t == "VECTOR" for _, t in schema(neo4j_store))
    neo4j_store.put_nodes([QueryNode(text="t", embedding=np.ones(6, dtype=np.float32))])
    records, _, _ = neo4j_store._driver.execute_query(
        "SHOW VECTOR INDEXES YIELD name, labelsOrTypes, properties, options, state "
        "WHERE name STARTS WITH 'gmem_' RETURN *",
        database_="neo4j",
    )
    (index,) = records
    assert index["name"] == cypher.vector_index_name(NodeKind.QUERY, "embedding")
    assert index["labelsOrTypes"] == ["QueryVector"] and index["properties"] == ["embedding"]
    config = index["options"]["indexConfig"]
    assert config["vector.dimensions"] == 6
    assert config["vector.similarity_function"].lower() == "cosine"
    assert index["state"] == "ONLINE"


def vector_nodes(store: Neo4jStore) -> dict[str, list[str]]:
    """Owner id -> the fields its vector node holds; and every vector node has an owner."""
    records, _, _ = store._driver.execute_query(
        f"MATCH (v:{cypher.ANY_VECTOR}) OPTIONAL MATCH (n)-[:HAS_VECTOR]->(v) "
        "RETURN n.id AS id, [k IN keys(v) | k] AS fields",
        database_="neo4j",
    )
    assert all(r["id"] is not None for r in records), "a vector node without its node"
    return {r["id"]: sorted(r["fields"]) for r in records}


def test_vectors_live_on_a_linked_node_not_on_the_node(neo4j_store: Neo4jStore) -> None:
    """What the Browser's node inspector shows is the node's own properties: no vectors."""
    q = QueryNode(
        text="t", embedding=np.ones(6, np.float32), graph_embedding=np.ones(2, np.float32)
    )
    neo4j_store.put_nodes([q, QueryNode(text="bare")])
    records, _, _ = neo4j_store._driver.execute_query(
        "MATCH (n:Query) RETURN n.text AS text, keys(n) AS keys", database_="neo4j"
    )
    assert {r["text"] for r in records} == {"t", "bare"}
    assert all("embedding" not in r["keys"] and "graph_embedding" not in r["keys"] for r in records)
    assert vector_nodes(neo4j_store) == {q.id: ["embedding", "graph_embedding"]}
    assert neo4j_store.get_node(q.id, with_vectors=True) == q
    # A new version without a field drops it; without any vector, the vector node goes.
    neo4j_store.put_nodes([q.model_copy(update={"graph_embedding": None})])
    assert vector_nodes(neo4j_store) == {q.id: ["embedding"]}
    neo4j_store.put_nodes([q.model_copy(update={"embedding": None, "graph_embedding": None})])
    assert vector_nodes(neo4j_store) == {}
    assert neo4j_store.vector_search(NodeKind.QUERY, np.ones(6, np.float32), k=3) == []


def test_reads_without_vectors_never_reach_vector_nodes() -> None:
    for statement in [cypher.GET_NODES[False]] + [
        text for (_, _, wv, _), text in cypher.LIST_NODES.items() if not wv
    ]:
        assert cypher.HAS_VECTOR not in statement and "Vector" not in statement, statement
    for statement in [cypher.GET_NODES[True]] + [
        text for (_, _, wv, _), text in cypher.LIST_NODES.items() if wv
    ]:
        assert cypher.HAS_VECTOR in statement


def test_forgetting_removes_the_vector_nodes_too(neo4j_store: Neo4jStore) -> None:
    q, utts, edges = a_task("to forget", ns="gone")
    q = q.model_copy(update={"embedding": np.ones(4, np.float32)})
    keep, k_utts, k_edges = a_task("to keep", ns="kept")
    keep = keep.model_copy(update={"embedding": np.ones(4, np.float32)})
    insight = Insight(text="lesson", namespace="gone", embedding=np.ones(4, np.float32))
    neo4j_store.batch([PutNodes([q, *utts, keep, *k_utts, insight]), PutEdges(edges + k_edges)])
    assert set(vector_nodes(neo4j_store)) == {q.id, keep.id, insight.id}
    removed = neo4j_store.delete_task(q.id)
    assert removed.nodes == 1 + len(utts)  # vector nodes are part of their node, not counted
    assert set(vector_nodes(neo4j_store)) == {keep.id, insight.id}
    assert neo4j_store.delete_namespace("gone").nodes == 1
    assert set(vector_nodes(neo4j_store)) == {keep.id}
    assert {e.key for e in neo4j_store.get_edges([keep.id])} == {
        e.key for e in k_edges if e.src == keep.id
    }
    assert neo4j_store.count("kept").edges == {"HAS_TRACE": 3, "NEXT": 2}


def test_indexed_search_matches_exact_cosine_with_namespace_filter(
    neo4j_store: Neo4jStore,
) -> None:
    """Namespace 'rare' holds 5 of 400 vectors, so the oversampling loop must widen."""
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(400, 16)).astype(np.float32)
    nodes = [
        QueryNode(
            text=f"task {i}", namespace="rare" if i % 80 == 0 else "bulk", embedding=vectors[i]
        )
        for i in range(400)
    ]
    neo4j_store.put_nodes(nodes)
    probe = rng.normal(size=16).astype(np.float32)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    exact = unit @ (probe / np.linalg.norm(probe))
    for ns, k in (("rare", 3), ("bulk", 10), (None, 10)):
        rows = [i for i in range(400) if ns is None or nodes[i].namespace == ns]
        want = sorted(rows, key=lambda i: -exact[i])[:k]
        hits = neo4j_store.vector_search(NodeKind.QUERY, probe, k=k, namespace=ns)
        assert [h.id for h in hits] == [nodes[i].id for i in want]
        assert [h.score for h in hits] == pytest.approx([exact[i] for i in want], abs=1e-5)
    # In a batch after a write, the scan path (which sees uncommitted vectors) agrees.
    extra = QueryNode(text="fresh", namespace="rare", embedding=probe)
    _, hits = neo4j_store.batch(
        [PutNodes([extra]), VectorSearch(NodeKind.QUERY, probe, 2, namespace="rare")]
    )
    assert hits[0].id == extra.id and hits[0].score == pytest.approx(1.0, abs=1e-5)
    rare = sorted((i for i in range(400) if i % 80 == 0), key=lambda i: -exact[i])
    assert hits[1].id == nodes[rare[0]].id


# ---- Cypher injection --------------------------------------------------------------------
@pytest.mark.parametrize("evil", EVIL)
def test_injection_through_text_roles_and_namespaces_is_stored_as_data(
    neo4j_store: Neo4jStore, evil: str
) -> None:
    bystander, b_utts, b_edges = a_task("innocent task", ns="bystanders")
    neo4j_store.batch([PutNodes([bystander, *b_utts]), PutEdges(b_edges)])
    q, utts, edges = a_task(evil, ns=evil, role=evil, agent=evil)
    insight = Insight(text=evil, namespace=evil, roles=[evil], metadata={evil: evil})
    edges.append(Edge(kind=EdgeKind.SUPPORTS, src=q.id, dst=insight.id, props={evil: evil}))
    neo4j_store.batch([PutNodes([q, *utts, insight]), PutEdges(edges)])

    assert raw_count(neo4j_store) == 2 * (1 + 3) + 1
    assert neo4j_store.get_nodes([q.id, utts[0].id, insight.id]) == [q, utts[0], insight]
    assert neo4j_store.namespaces() == sorted(["bystanders", evil])
    assert [n.id for n in neo4j_store.list_nodes(NodeKind.UTTERANCE, namespace=evil)] == [
        u.id for u in utts
    ]
    assert neo4j_store.get_edges([q.id], kinds=[EdgeKind.SUPPORTS])[0].props == {evil: evil}
    assert neo4j_store.count(evil).nodes == {"Query": 1, "Utterance": 3, "Insight": 1}
    removed = neo4j_store.delete_namespace(evil)
    assert removed.nodes == 5
    assert neo4j_store.count().nodes == {"Query": 1, "Utterance": 3}
    assert neo4j_store.get_node(bystander.id) == bystander


def test_statements_are_fixed_text_with_no_data_in_them() -> None:
    """Every statement is built at import time; its only literals are fixed names."""
    texts: list[str] = []
    for name in dir(cypher):
        value = getattr(cypher, name)
        if name.isupper() and isinstance(value, str):
            texts.append(value)
        elif name.isupper() and isinstance(value, dict | tuple):
            items = value.values() if isinstance(value, dict) else value
            texts.extend(v for v in items if isinstance(v, str))
    assert len(texts) > 60
    for direction in ("out", "in", "both"):
        for kinds in (None, ("SIMILAR_TO", "USED_MEMORY_OF")):
            makers = (cypher.edges, cypher.expand, cypher.expand_nodes)
            built = [make(direction, kinds) for make in (*makers, cypher.expand_nodes_vectors)]
            texts.extend(built)
            texts.append(cypher.together((*built, cypher.VECTOR_QUERY)) or "")
    allowed = {
        "cosine",
        "gmem_",
        "vector.dimensions",
        *(k.value for k in NodeKind),
        *(k.value for k in EdgeKind),
    }
    for text in texts:
        assert set(re.findall(r"'([^']*)'", text)) <= allowed, text
        assert '"' not in text, text


# ---- faults ------------------------------------------------------------------------------
def test_wrong_password_is_a_one_line_unavailable_error(neo4j_settings: Neo4jSettings) -> None:
    wrong = Neo4jSettings(neo4j_settings.uri, neo4j_settings.user, "not-the-password")
    with pytest.raises(StoreUnavailableError) as info:
        wrong.open()
    message = str(info.value)
    assert "\n" not in message and "password" in message and neo4j_settings.uri in message
    time.sleep(0.2)  # leave the server's failed-login counter alone for the next test


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(60)  # a connect timeout that failed would hang here
def test_server_down_is_a_one_line_unavailable_error(neo4j_settings: Neo4jSettings) -> None:
    down = Neo4jSettings(f"bolt://127.0.0.1:{_free_port()}", "neo4j", "x")
    with pytest.raises(StoreUnavailableError) as info:
        down.open(connect_timeout_s=2.0)
    assert "\n" not in str(info.value) and "server.sh start" in str(info.value)


def test_failure_between_statements_leaves_no_partial_task(
    neo4j_store: Neo4jStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    q, utts, edges = a_task("half written", n=5)
    real_drive = programs_module.drive
    statements: list[str] = []

    def drive_then_fail(tx: Any, program: Any) -> Any:
        result = real_drive(tx, program)
        statements.append("op")
        if len(statements) == 1:  # the nodes are written, the edges not yet
            raise RuntimeError("injected failure between statements")
        return result

    monkeypatch.setattr(programs_module, "drive", drive_then_fail)
    with pytest.raises(RuntimeError, match="injected"):
        neo4j_store.batch([PutNodes([q, *utts]), PutEdges(edges)])
    monkeypatch.undo()
    assert statements == ["op"]
    assert raw_count(neo4j_store) == 0
    assert neo4j_store.count().total_nodes == 0


def test_server_side_error_mid_batch_rolls_back(neo4j_store: Neo4jStore) -> None:
    q, utts, edges = a_task("clash")
    with pytest.raises(UserInputError):
        neo4j_store.batch(
            [PutNodes([q, *utts]), PutEdges(edges), PutNodes([Insight(id=q.id, text="x")])]
        )
    assert raw_count(neo4j_store) == 0


def test_transient_errors_are_retried_then_bounded(
    neo4j_settings: Neo4jSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import neo4j

    store = neo4j_settings.open(retry_s=3.0)
    try:
        store.delete_all()
        real_drive = programs_module.drive
        attempts = {"n": 0}

        def flaky(tx: Any, program: Any) -> Any:
            attempts["n"] += 1
            result = real_drive(tx, program)
            if attempts["n"] == 1:
                raise neo4j.exceptions.TransientError("injected deadlock")
            return result

        q, utts, edges = a_task("retried")
        monkeypatch.setattr(programs_module, "drive", flaky)
        store.batch([PutNodes([q, *utts]), PutEdges(edges)])
        assert attempts["n"] == 3  # first try (2 ops, failed after op 1) + 2 ops again
        assert store.count().nodes == {"Query": 1, "Utterance": 3}

        def always(tx: Any, program: Any) -> Any:
            attempts["n"] += 1
            raise neo4j.exceptions.TransientError("injected, forever")

        attempts["n"] = 0
        monkeypatch.setattr(programs_module, "drive", always)
        with pytest.raises(StoreUnavailableError, match="stayed unavailable"):
            store.batch([PutNodes([a_task("never")[0]])])
        assert attempts["n"] >= 2  # retried, then gave up within retry_s
        monkeypatch.undo()
        assert store.count().nodes == {"Query": 1, "Utterance": 3}
    finally:
        monkeypatch.undo()
        store.close()


def test_read_batches_run_without_explicit_transactions_and_are_retried(
    neo4j_settings: Neo4jSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read batch sends each statement as its own auto-commit read (one round trip, not
    three); transient errors still retry the whole batch, for at most ``retry_s``."""
    import neo4j

    store = neo4j_settings.open(retry_s=3.0)
    try:
        store.delete_all()
        q, utts, edges = a_task("read back")
        store.batch([PutNodes([q, *utts]), PutEdges(edges)])

        def refused(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a read batch opened an explicit transaction")

        monkeypatch.setattr(neo4j.Session, "execute_read", refused)
        monkeypatch.setattr(neo4j.Session, "begin_transaction", refused)
        real_drive = programs_module.drive
        attempts = {"n": 0}

        def flaky(tx: Any, program: Any) -> Any:
            attempts["n"] += 1
            if attempts["n"] == 1:
                raise neo4j.exceptions.TransientError("injected, once")
            return real_drive(tx, program)

        monkeypatch.setattr(programs_module, "drive", flaky)
        (nodes,) = store.batch([GetNodes([q.id, utts[0].id])])
        assert [n.id for n in nodes] == [q.id, utts[0].id]
        assert attempts["n"] == 2

        def always(tx: Any, program: Any) -> Any:
            raise neo4j.exceptions.TransientError("injected, forever")

        monkeypatch.setattr(programs_module, "drive", always)
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="stayed unavailable"):
            store.batch([GetNodes([q.id])])
        assert time.monotonic() - started < 3.0 + 2.0
    finally:
        monkeypatch.undo()
        store.close()


def test_times_read_back_exactly_in_their_own_offset(neo4j_store: Neo4jStore) -> None:
    """Node reads fetch times as their parts, not as driver DateTime objects; what comes
    back is the stored instant to the microsecond, in the stored offset."""
    east = timezone(timedelta(hours=5, minutes=30))
    at = datetime(1969, 7, 20, 20, 17, 40, 123456, tzinfo=east)
    q, utts, edges = a_task("timed")
    q = q.model_copy(update={"created_at": at, "updated_at": at + timedelta(microseconds=1)})
    utc = datetime(2026, 12, 1, 14, 0, 0, 999999, tzinfo=UTC)
    utts = [u.model_copy(update={"created_at": utc}) for u in utts]
    neo4j_store.batch([PutNodes([q, *utts]), PutEdges(edges)])
    for with_vectors in (False, True):
        (back, first) = neo4j_store.batch([GetNodes([q.id, utts[0].id], with_vectors)])[0]
        assert back.created_at == at and back.created_at.utcoffset() == east.utcoffset(None)
        assert back.updated_at == at + timedelta(microseconds=1)
        assert first.created_at == utc and first.created_at.tzinfo is UTC
    listed = neo4j_store.list_nodes(NodeKind.UTTERANCE, "default")
    assert {u.created_at for u in listed} == {utc}


def test_database_errors_surface_as_store_errors(neo4j_store: Neo4jStore) -> None:
    with pytest.raises(StoreError):
        neo4j_store._call(
            lambda: neo4j_store._driver.execute_query("RETURN 1/0", database_="neo4j")
        )


def test_a_handle_recovers_vector_indexes_another_handle_dropped(
    neo4j_store: Neo4jStore, neo4j_settings: Neo4jSettings
) -> None:
    neo4j_store.put_nodes([QueryNode(text="first", embedding=np.ones(4, dtype=np.float32))])
    other = neo4j_settings.open()
    try:
        other.delete_all()  # drops the index this handle still believes in
    finally:
        other.close()
    q = QueryNode(text="second", embedding=np.array([1, 0, 0, 0], dtype=np.float32))
    neo4j_store.put_nodes([q])
    hits = neo4j_store.vector_search(NodeKind.QUERY, np.array([1, 0, 0, 0], np.float32), k=3)
    assert [h.id for h in hits] == [q.id]
    assert (cypher.vector_index_name(NodeKind.QUERY, "embedding"), "VECTOR") in schema(neo4j_store)

    # Again, now that the first write of the batch is what finds the index gone.
    other = neo4j_settings.open()
    other.delete_all()
    other.close()
    neo4j_store.put_nodes([q])
    hits = neo4j_store.vector_search(NodeKind.QUERY, np.array([1, 0, 0, 0], np.float32), k=3)
    assert [h.id for h in hits] == [q.id]


class Relay:
    """A TCP relay in front of the server that can cut every connection and refuse new
    ones for a while: to the driver, exactly what a server restart looks like."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.refuse_until = 0.0
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if time.monotonic() < self.refuse_until:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def restart(self, down_s: float) -> None:
        self.refuse_until = time.monotonic() + down_s
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.restart(0)
        self.listener.close()


@pytest.fixture
def relay(neo4j_settings: Neo4jSettings) -> Iterator[Relay]:
    host_port = neo4j_settings.uri.split("://", 1)[1].rstrip("/")
    host, _, port = host_port.rpartition(":")
    link = Relay((host or "127.0.0.1", int(port or 7687)))
    try:
        yield link
    finally:
        link.close()


def _through(relay: Relay, settings: Neo4jSettings, **options: Any) -> Neo4jStore:
    return Neo4jSettings(f"bolt://127.0.0.1:{relay.port}", settings.user, settings.password).open(
        **options
    )


def test_server_restart_mid_batch_is_retried_without_partial_writes(
    neo4j_store: Neo4jStore,
    neo4j_settings: Neo4jSettings,
    relay: Relay,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _through(relay, neo4j_settings, retry_s=20.0)
    try:
        real_drive = programs_module.drive
        calls = {"n": 0}

        def restart_after_first_statement(tx: Any, program: Any) -> Any:
            result = real_drive(tx, program)
            calls["n"] += 1
            if calls["n"] == 1:
                relay.restart(down_s=1.5)
            return result

        q, utts, edges = a_task("survives a restart", n=4)
        monkeypatch.setattr(programs_module, "drive", restart_after_first_statement)
        store.batch([PutNodes([q, *utts]), PutEdges(edges)])
        monkeypatch.undo()
        assert calls["n"] >= 3  # the first attempt died after its first op, then a retry
        assert neo4j_store.count().nodes == {"Query": 1, "Utterance": 4}
        assert neo4j_store.count().edges == {"HAS_TRACE": 4, "NEXT": 3}
    finally:
        store.close()


@pytest.mark.timeout(120)  # an outage past retry_s must end in an error, not a hang
def test_server_down_longer_than_the_retry_budget_fails_cleanly(
    neo4j_store: Neo4jStore,
    neo4j_settings: Neo4jSettings,
    relay: Relay,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _through(relay, neo4j_settings, retry_s=2.0, connect_timeout_s=1.0)
    try:
        real_drive = programs_module.drive

        def restart_for_long(tx: Any, program: Any) -> Any:
            result = real_drive(tx, program)
            relay.restart(down_s=30.0)
            return result

        q, utts, edges = a_task("lost to an outage", n=4)
        monkeypatch.setattr(programs_module, "drive", restart_for_long)
        with pytest.raises(StoreUnavailableError) as info:
            store.batch([PutNodes([q, *utts]), PutEdges(edges)])
        assert "\n" not in str(info.value)
        assert raw_count(neo4j_store) == 0
    finally:
        monkeypatch.undo()
        store.close()


def test_reindex_vectors_keeps_search_results(neo4j_store: Neo4jStore) -> None:
    rng = np.random.default_rng(3)
    nodes = [
        QueryNode(text=f"t{i}", embedding=rng.normal(size=8).astype(np.float32)) for i in range(50)
    ]
    insight = Insight(text="i", graph_embedding=np.ones(3, dtype=np.float32))
    for start in range(0, 50, 5):  # many small commits, as a running team writes
        neo4j_store.put_nodes(nodes[start : start + 5])
    neo4j_store.put_nodes([insight])
    probe = rng.normal(size=8).astype(np.float32)
    before = neo4j_store.vector_search(NodeKind.QUERY, probe, k=5)
    neo4j_store.reindex_vectors()
    assert neo4j_store.vector_search(NodeKind.QUERY, probe, k=5) == before
    hits = neo4j_store.vector_search(
        NodeKind.INSIGHT, np.ones(3, np.float32), k=1, field="graph_embedding"
    )
    assert [h.id for h in hits] == [insight.id]


def test_search_after_many_small_commits_is_exact_without_reindex(
    neo4j_store: Neo4jStore,
) -> None:
    """A running team commits one task at a time; the index must serve each right after
    its commit, exactly, with no ``reindex_vectors()`` in between."""
    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(240, 12)).astype(np.float32)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    nodes = [QueryNode(text=f"job {i}", embedding=vectors[i]) for i in range(240)]
    for i, node in enumerate(nodes):
        neo4j_store.put_nodes([node])  # its own transaction, as finish() writes it
        if i % 40 == 39:
            (hit,) = neo4j_store.vector_search(NodeKind.QUERY, vectors[i], k=1)
            assert hit.id == node.id and hit.score == pytest.approx(1.0, abs=1e-5)
    for probe in rng.normal(size=(10, 12)).astype(np.float32):
        exact = unit @ (probe / np.linalg.norm(probe))
        want = np.argsort(-exact)[:5]
        hits = neo4j_store.vector_search(NodeKind.QUERY, probe, k=5)
        assert [h.id for h in hits] == [nodes[i].id for i in want]
        assert [h.score for h in hits] == pytest.approx([exact[i] for i in want], abs=1e-5)


def test_a_hit_on_a_node_being_deleted_is_dropped() -> None:
    """Under concurrent deletes the vector index once handed back a node whose id read
    as null; ranking it beside a hit of equal score raised a bare TypeError (seen twice
    in CI, on GmemStore's concurrent puts, deletes and searches)."""
    state = programs_module.BatchState(
        dims={(NodeKind.QUERY, "embedding"): 2}, oversample=1, next_seq=lambda n: 0
    )
    run = programs_module.program(
        VectorSearch(NodeKind.QUERY, np.array([1.0, 0.0], np.float32), 2, "default"), state
    )
    statement, _ = next(run)
    assert statement == cypher.VECTOR_QUERY
    live = {"id": "a" * 32, "score": 0.9}
    with pytest.raises(StopIteration) as done:
        run.send([{"fetched": 2, "hits": [{"id": None, "score": 0.9}, live]}])
    assert [hit.id for hit in done.value.value] == [live["id"]]


def recording_drive(sent: list[str]) -> Any:
    """``programs.drive`` that also notes each statement it sends, in ``sent``."""
    real_drive = programs_module.drive

    def drive(tx: Any, program: Any) -> Any:
        def noted() -> Any:
            try:
                statement = program.send(None)
                while True:
                    sent.append(statement[0])
                    statement = program.send((yield statement))
            except StopIteration as done:
                return done.value

        return real_drive(tx, noted())

    return drive


def test_a_read_batch_of_searches_asks_the_index_in_one_statement() -> None:
    """Bulk ingest looks up every task's neighbours in one batch: one statement for all
    of them, and a search that needs more candidates still asks again by itself."""
    state = programs_module.BatchState(
        dims={(NodeKind.QUERY, "embedding"): 2}, oversample=1, next_seq=lambda n: 0
    )
    ops = [VectorSearch(NodeKind.QUERY, np.array([1.0, i], np.float32), 1, "a") for i in range(3)]
    assert programs_module.prefetch_searches(ops[:1], state) is None
    ahead = programs_module.prefetch_searches(ops, state)
    assert ahead is not None
    statement, params = next(ahead)
    assert statement == cypher.VECTOR_QUERIES and len(params["searches"]) == 3
    hit = {"id": "b" * 32, "score": 0.75}
    rows = [{"at": 0, "fetched": 1, "hits": [hit]}, {"at": 1, "fetched": 1, "hits": [hit]}]
    rows.append({"at": 2, "fetched": 16, "hits": []})  # a full page with nothing in "a"
    with pytest.raises(StopIteration):
        ahead.send(rows)
    for op in ops[:2]:
        with pytest.raises(StopIteration) as done:
            next(programs_module.program(op, state))
        assert [h.id for h in done.value.value] == [hit["id"]]
    again = programs_module.program(ops[2], state)
    statement, params = next(again)
    assert statement == cypher.VECTOR_QUERY and params["fetch"] == 64


def test_searches_in_one_batch_match_searches_alone(
    neo4j_store: Neo4jStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(2)
    nodes = [
        QueryNode(text=f"t{i}", namespace="ab"[i % 2], embedding=rng.normal(size=8).astype("f4"))
        for i in range(80)
    ]
    neo4j_store.put_nodes(nodes)
    probes = rng.normal(size=(6, 8)).astype(np.float32)
    ops = [
        VectorSearch(NodeKind.QUERY, p, 4, "ab"[i % 2], exclude_ids=frozenset({nodes[i].id}))
        for i, p in enumerate(probes)
    ]
    alone = [neo4j_store.batch([op])[0] for op in ops]
    sent: list[str] = []

    monkeypatch.setattr(programs_module, "drive", recording_drive(sent))
    together = neo4j_store.batch(ops)
    assert together == alone
    assert sent == [cypher.VECTOR_QUERIES]


def test_an_index_still_being_built_is_not_searched_until_it_is_online(
    neo4j_store: Neo4jStore, neo4j_settings: Neo4jSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neo4j makes a search of a POPULATING index wait until it is built (about 27 s for
    a large reindex), or fail: a handle that finds one so answers by exact scan. The
    server is made to report every index as POPULATING by rewriting the one statement
    that reads index states."""
    rng = np.random.default_rng(8)
    nodes = [QueryNode(text=f"t{i}", embedding=rng.normal(size=6).astype("f4")) for i in range(30)]
    neo4j_store.put_nodes(nodes)
    probe = nodes[7].embedding
    assert probe is not None
    real_show = cypher.SHOW_VECTOR_INDEXES
    monkeypatch.setattr(
        cypher,
        "SHOW_VECTOR_INDEXES",
        real_show.replace("dims, state,", "dims, 'POPULATING' AS state,"),
    )
    sent: list[str] = []
    monkeypatch.setattr(programs_module, "drive", recording_drive(sent))
    other = neo4j_settings.open()
    try:
        (hit,) = other.vector_search(NodeKind.QUERY, probe, k=1)
        assert hit.id == nodes[7].id and sent == [cypher.VECTOR_SCAN[NodeKind.QUERY]]
        monkeypatch.setattr(cypher, "SHOW_VECTOR_INDEXES", real_show)  # now it is ONLINE
        sent.clear()
        (hit,) = other.vector_search(NodeKind.QUERY, probe, k=1)
        assert hit.id == nodes[7].id and sent == [cypher.VECTOR_QUERY]
    finally:
        other.close()


def test_a_failed_index_is_scanned_around_and_reported_once(
    neo4j_store: Neo4jStore,
    neo4j_settings: Neo4jSettings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An index Neo4j reports FAILED never comes ONLINE: searches still answer (exact
    scan), and the handle says once, naming the index and the way out."""
    rng = np.random.default_rng(9)
    nodes = [QueryNode(text=f"t{i}", embedding=rng.normal(size=6).astype("f4")) for i in range(30)]
    neo4j_store.put_nodes(nodes)
    probe = nodes[3].embedding
    assert probe is not None
    monkeypatch.setattr(
        cypher,
        "SHOW_VECTOR_INDEXES",
        cypher.SHOW_VECTOR_INDEXES.replace("dims, state,", "dims, 'FAILED' AS state,"),
    )
    other = neo4j_settings.open()
    try:
        with caplog.at_level(logging.WARNING, logger="gmem.neo4j"):
            for _ in range(3):
                (hit,) = other.vector_search(NodeKind.QUERY, probe, k=1)
                assert hit.id == nodes[3].id
        told = [r.getMessage() for r in caplog.records if "failed to build" in r.getMessage()]
        assert len(told) == 1 and "reindex_vectors" in told[0], told
        assert "gmem_query_vector_embedding" in told[0]
    finally:
        other.close()
