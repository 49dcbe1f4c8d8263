"""Every Cypher statement gmem runs against Neo4j, in one place.

Values always travel as parameters. Cypher cannot take a label, a relationship type, an
index name or a property key as a parameter, so those parts are filled in here, at import
time, from gmem's closed enums (:class:`NodeKind`, :class:`EdgeKind`) and fixed names;
no text a user supplies is ever spliced into a statement. Writes take lists of rows and
``UNWIND`` them, so one statement carries a whole task.

The graph as it reads in Neo4j Browser: nodes labelled ``Query``, ``Utterance`` and
``Insight`` (the three tiers) and ``Item`` (adapters' key-value records); relationship
types named after :class:`EdgeKind`; every node has ``id``, ``namespace``, ``node_kind``
and ``seq`` (insertion order) properties. Every per-label statement below is generated
for each :class:`NodeKind`, so a new kind gets its constraint, indexes and vector indexes
here without further code.
"""

from __future__ import annotations

from graph_store.model import EdgeKind, NodeKind
from graph_store.neo4j.codec import TIME_KEYS
from graph_store.neo4j.titles import TITLE_KEY
from graph_store.ops import VERSIONED_KINDS

#: Label disjunction matching any gmem node; Neo4j plans it as one unique-index seek per label.
ANY = "|".join(kind.value for kind in NodeKind)
#: Vector properties, each searched through its own index per label.
FIELDS = ("embedding", "graph_embedding")
#: Similarity of two vectors, as Neo4j scales cosine into [0, 1]; the store maps it back.
#: Zero vectors (which Neo4j rejects) score as orthogonal, as the embedded store does.
_SIMILARITY = (
    "CASE WHEN $zero OR NOT any(x IN n[$field] WHERE x <> 0.0) THEN 0.5 "
    "ELSE vector.similarity.cosine(n[$field], $vector) END"
)


def _snake(kind: NodeKind) -> str:
    return kind.value.lower()


def vector_index_name(kind: NodeKind, field: str) -> str:
    if field not in FIELDS:
        raise ValueError(f"unknown vector field {field!r}")
    return f"gmem_{_snake(kind)}_{field}"


# ---- schema: applied at connect, every statement idempotent ----------------------------
SCHEMA: tuple[str, ...] = (
    *(
        f"CREATE CONSTRAINT gmem_{_snake(k)}_id IF NOT EXISTS "
        f"FOR (n:{k.value}) REQUIRE n.id IS UNIQUE"
        for k in NodeKind
    ),
    *(
        f"CREATE INDEX gmem_{_snake(k)}_namespace IF NOT EXISTS FOR (n:{k.value}) ON (n.namespace)"
        for k in NodeKind
    ),
    *(
        f"CREATE INDEX gmem_{_snake(k)}_seq IF NOT EXISTS FOR (n:{k.value}) ON (n.seq)"
        for k in NodeKind
    ),
    # Eventually consistent: updated after commit, off the write path (only people
    # search text, in the Browser); a synchronous update would lengthen every commit.
    *(
        f"CREATE FULLTEXT INDEX gmem_{_snake(k)}_text IF NOT EXISTS FOR (n:{k.value}) "
        "ON EACH [n.text] OPTIONS {indexConfig: {`fulltext.eventually_consistent`: true}}"
        for k in (NodeKind.QUERY, NodeKind.INSIGHT)
    ),
)

CREATE_VECTOR_INDEX: dict[tuple[NodeKind, str], str] = {
    (k, f): (
        f"CREATE VECTOR INDEX {vector_index_name(k, f)} IF NOT EXISTS "
        f"FOR (n:{k.value}) ON (n.{f}) "
        "OPTIONS {indexConfig: {`vector.dimensions`: $dims, "
        "`vector.similarity_function`: 'cosine', `vector.quantization.enabled`: false}}"
    )
    for k in NodeKind
    for f in FIELDS
}

DROP_VECTOR_INDEX: dict[tuple[NodeKind, str], str] = {
    key: f"DROP INDEX {vector_index_name(*key)} IF EXISTS" for key in CREATE_VECTOR_INDEX
}

AWAIT_INDEX = "CALL db.awaitIndex($name, $timeout)"

SHOW_VECTOR_INDEXES = (
    "SHOW VECTOR INDEXES YIELD name, options, state "
    "WHERE name STARTS WITH 'gmem_' "
    "RETURN name, options.indexConfig['vector.dimensions'] AS dims, state"
)

# ---- node writes -----------------------------------------------------------------------
#: Insert or replace by id, in one statement per label. ``SET n = ...`` drops properties
#: the new version lacks (a vector set to None) while ``seq`` keeps the first insert's
#: place. ``clashes`` lists ids held by a node of another label, ``stale`` those (of a
#: versioned kind) whose stored ``updated_at`` is later than the one written, read after
#: the first SET took the node's write lock, so no commit can slip in between. Either
#: way the caller raises and the transaction rolls back: a node's kind never changes and
#: a stale copy never lands.
PUT_NODES: dict[NodeKind, str] = {
    k: (
        f"UNWIND $rows AS row "
        f"OPTIONAL MATCH (o:{ANY} {{id: row.id}}) WHERE NOT o:{k.value} "
        f"MERGE (n:{k.value} {{id: row.id}}) "
        # coalesce: a node claimed earlier in the batch (EXPECT_ABSENT) has no seq yet.
        "SET n.seq = coalesce(n.seq, row.seq) "
        "WITH n, o, row.props AS props, n.seq AS seq, n.updated_at AS stored "
        "SET n = props {.*, seq: seq} "
        "RETURN collect(o {.id, .node_kind}) AS clashes, "
        + (
            "collect(CASE WHEN stored > props.updated_at THEN n.id END) AS stale"
            if k in VERSIONED_KINDS
            else "[] AS stale"
        )
    )
    for k in NodeKind
}

# ---- optimistic concurrency (ExpectNodes) ----------------------------------------------
#: Takes the write lock of every listed node that exists: setting a property, even to its
#: own value, locks the node until the transaction ends, so the versions EXPECT_VERSIONS
#: then reads cannot change before this batch's writes commit. Ids come sorted, so two
#: batches lock shared nodes in one order (Neo4j would detect the deadlock and the driver
#: retry the batch, but there is no need to pay for it).
EXPECT_LOCK = f"UNWIND $ids AS id MATCH (n:{ANY} {{id: id}}) SET n.seq = n.seq RETURN count(n) AS n"
EXPECT_VERSIONS = (
    f"UNWIND $ids AS id MATCH (n:{ANY} {{id: id}}) RETURN n.id AS id, n.updated_at AS at"
)
#: A node expected absent is claimed: MERGE on the label's unique id constraint creates a
#: placeholder (filled by the PutNodes that follows in the same batch), and a concurrent
#: claimer blocks on the same index entry until this batch ends, then finds the node and
#: reports it as not claimed, which is its conflict.
EXPECT_ABSENT: dict[NodeKind, str] = {
    k: (
        f"UNWIND $ids AS id MERGE (n:{k.value} {{id: id}}) "
        "ON CREATE SET n.gmem_claim = true "
        "WITH n, coalesce(n.gmem_claim, false) AS claimed REMOVE n.gmem_claim "
        "RETURN n.id AS id, claimed"
    )
    for k in NodeKind
}

# ---- edge writes -----------------------------------------------------------------------
#: Every kind in one statement: a relationship type cannot be a parameter, so each row
#: goes through the one ``FOREACH`` whose type matches its ``kind``.
PUT_EDGES = (
    "UNWIND $rows AS row "
    f"MATCH (s:{ANY} {{id: row.src}}) MATCH (d:{ANY} {{id: row.dst}}) "
    + " ".join(
        f"FOREACH (_ IN CASE WHEN row.kind = '{k.value}' THEN [1] ELSE [] END | "
        f"MERGE (s)-[r:{k.value}]->(d) SET r = row.props)"
        for k in EdgeKind
    )
    + " RETURN count(*) AS written"
)

MISSING_NODES = (
    f"UNWIND $ids AS id OPTIONAL MATCH (n:{ANY} {{id: id}}) WITH id, n WHERE n IS NULL RETURN id"
)

DELETE_EDGES = (
    "UNWIND $rows AS row "
    f"MATCH (s:{ANY} {{id: row.src}})-[r]->(d:{ANY} {{id: row.dst}}) "
    "WHERE type(r) = row.kind DELETE r RETURN count(r) AS deleted"
)

# ---- node reads ------------------------------------------------------------------------
#: Time properties are read as their parts ``[year, month, day, hour, minute, second,
#: nanosecond, offset seconds]`` (:func:`graph_store.neo4j.codec.node_from_record` builds
#: the datetime): the driver turns each DATETIME value into a ``neo4j.time.DateTime`` in
#: Python, which cost more client CPU than all the other properties of an utterance
#: together. The Browser's ``title`` is left out too.
_TIMES = ", ".join(
    f"{key}: CASE WHEN n.{key} IS :: ZONED DATETIME NOT NULL THEN ["
    + ", ".join(
        f"n.{key}.{part}"
        for part in ("year", "month", "day", "hour", "minute", "second", "nanosecond")
    )
    + f", n.{key}.offsetSeconds] ELSE n.{key} END"
    for key in TIME_KEYS
)


def _projection(with_vectors: bool) -> str:
    vectors = "" if with_vectors else "embedding: null, graph_embedding: null, "
    return f"n {{.*, {vectors}{TITLE_KEY}: null, {_TIMES}}} AS props"


GET_NODES: dict[bool, str] = {
    wv: f"UNWIND $ids AS id MATCH (n:{ANY} {{id: id}}) RETURN {_projection(wv)}"
    for wv in (False, True)
}

#: Keyed by (kind, filtered by namespace, with vectors, limited).
LIST_NODES: dict[tuple[NodeKind, bool, bool, bool], str] = {
    (k, by_ns, wv, limited): (
        f"MATCH (n:{k.value}) "
        + ("WHERE n.namespace = $namespace " if by_ns else "")
        + f"RETURN {_projection(wv)} ORDER BY n.seq, n.id"
        + (" LIMIT $limit" if limited else "")
    )
    for k in NodeKind
    for by_ns in (False, True)
    for wv in (False, True)
    for limited in (False, True)
}

# ---- edge reads and traversal ----------------------------------------------------------
_EDGE_FILTER = "WHERE ($kinds IS NULL OR type(r) IN $kinds) "
_EDGE_ROW = (
    "id AS origin, startNode(r) = n AS outgoing, type(r) AS kind, startNode(r).id AS src, "
    "endNode(r).id AS dst, properties(r) AS props"
)
_ARROWS = (("out", "-[r]->"), ("in", "<-[r]-"), ("both", "-[r]-"))

#: Edges leaving ("out"), entering ("in") or touching ("both") the given nodes, with the
#: given node as ``origin``; a self-loop comes twice under "both".
EDGES: dict[str, str] = {
    d: f"UNWIND $ids AS id MATCH (n:{ANY} {{id: id}}){arrow}(m) {_EDGE_FILTER}RETURN {_EDGE_ROW}"
    for d, arrow in _ARROWS
}

#: One hop of breadth-first expansion: edges from the frontier to nodes not yet visited.
EXPAND: dict[str, str] = {
    d: (
        f"UNWIND $ids AS id MATCH (n:{ANY} {{id: id}}){arrow}(m:{ANY}) {_EDGE_FILTER}"
        "AND NOT m.id IN $visited "
        f"RETURN m.id AS other, m.node_kind AS other_kind, {_EDGE_ROW}"
    )
    for d, arrow in _ARROWS
}

#: The same hop with the far ends' nodes (without vectors), read by the same statement:
#: a traversal's next question, answered in the round trip of its links.
EXPAND_NODES: dict[str, str] = {
    d: (
        f"UNWIND $ids AS id MATCH (o:{ANY} {{id: id}}){arrow}(n:{ANY}) "
        f"{_EDGE_FILTER}AND NOT n.id IN $visited "
        "RETURN n.id AS other, n.node_kind AS other_kind, id AS origin, "
        "startNode(r) = o AS outgoing, type(r) AS kind, startNode(r).id AS src, "
        f"endNode(r).id AS dst, properties(r) AS edge_props, {_projection(False)}"
    )
    for d, arrow in _ARROWS
}

# ---- vector search ---------------------------------------------------------------------
#: Candidates from the HNSW index, then the namespace and exclusion filter; ``fetched``
#: tells the caller whether the index had more to give when too few passed the filter.
#: The index is created unquantized, so its score is the exact float32 cosine (scaled).
VECTOR_QUERY = (
    "CALL db.index.vector.queryNodes($index, $fetch, $vector) YIELD node, score "
    "WITH collect({n: node, score: score}) AS found "
    "RETURN size(found) AS fetched, "
    "[f IN found WHERE f.n.id IS NOT NULL "
    "AND ($namespace IS NULL OR f.n.namespace = $namespace) "
    "AND NOT f.n.id IN $exclude | {id: f.n.id, score: f.score}] AS hits"
)

#: Exact scan, for reads that must see vectors written earlier in the same transaction
#: (Neo4j's vector index does not see uncommitted changes) and for zero query vectors.
VECTOR_SCAN: dict[NodeKind, str] = {
    k: (
        f"MATCH (n:{k.value}) WHERE ($namespace IS NULL OR n.namespace = $namespace) "
        "AND n[$field] IS NOT NULL AND NOT n.id IN $exclude "
        f"WITH n.id AS id, {_SIMILARITY} AS score "
        "RETURN id, score ORDER BY score DESC, id LIMIT $k"
    )
    for k in NodeKind
}

# ---- deletes ---------------------------------------------------------------------------
_DETACH_COUNTED = (
    "OPTIONAL MATCH (n)-[r]-() "
    "WITH collect(DISTINCT n) AS nodes, collect(DISTINCT r) AS rels "
    "FOREACH (r IN rels | DELETE r) FOREACH (n IN nodes | DELETE n) "
    "RETURN size(nodes) AS nodes, size(rels) AS edges"
)

#: Used by ``DeleteTask`` and ``DeleteNodes``; ids that match nothing add no row.
DELETE_NODES = f"UNWIND $ids AS id MATCH (n:{ANY} {{id: id}}) {_DETACH_COUNTED}"

DELETE_NAMESPACE = f"MATCH (n:{ANY}) WHERE n.namespace = $namespace {_DETACH_COUNTED}"

#: Test helper: every gmem node, in chunks so that a large graph fits the heap.
DELETE_ALL = f"MATCH (n:{ANY}) CALL (n) {{ DETACH DELETE n }} IN TRANSACTIONS OF 5000 ROWS"

# ---- counts ----------------------------------------------------------------------------
#: Whole-store counts come from Neo4j's count store, one lookup per label and type.
COUNT_NODES = " UNION ALL ".join(
    f"MATCH (n:{k.value}) RETURN '{k.value}' AS kind, count(n) AS n" for k in NodeKind
)
COUNT_EDGES = " UNION ALL ".join(
    f"MATCH ()-[r:{k.value}]->() RETURN '{k.value}' AS kind, count(r) AS n" for k in EdgeKind
)
COUNT_NODES_IN = " UNION ALL ".join(
    f"MATCH (n:{k.value}) WHERE n.namespace = $namespace RETURN '{k.value}' AS kind, count(n) AS n"
    for k in NodeKind
)
#: Edges of a namespace are those leaving its nodes, as in the embedded store.
COUNT_EDGES_IN = (
    f"MATCH (n:{ANY})-[r]->() WHERE n.namespace = $namespace RETURN type(r) AS kind, count(r) AS n"
)

LIST_NAMESPACES = (
    f"MATCH (n:{ANY}) WHERE n.namespace IS NOT NULL "
    "RETURN DISTINCT n.namespace AS namespace ORDER BY namespace"
)

# ---- a dump: a script of literals that rebuilds a memory (graph_store.neo4j.dump) ------
#: The same upserts as the store's writes, with ``$rows`` replaced by a literal list when
#: the dump is written, so the file needs no driver and no parameters and a replay of it
#: converges to the same graph. Rows carry ``seq``, which ``list_nodes`` orders by.
DUMP_NODES: dict[NodeKind, str] = {
    k: f"UNWIND $rows AS row MERGE (n:{k.value} {{id: row.id}}) SET n = row.props" for k in NodeKind
}
DUMP_EDGES: dict[EdgeKind, str] = {
    k: (
        f"UNWIND $rows AS row MATCH (s:{ANY} {{id: row.src}}) MATCH (d:{ANY} {{id: row.dst}}) "
        f"MERGE (s)-[r:{k.value}]->(d) SET r = row.props"
    )
    for k in EdgeKind
}
