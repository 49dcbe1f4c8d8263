"""Every Cypher statement gmem runs against Neo4j, in one place.

Values always travel as parameters. Cypher cannot take a label, a relationship type, an
index name or a property key as a parameter, so those parts are filled in here, at import
time, from gmem's closed enums (:class:`NodeKind`, :class:`EdgeKind`) and fixed names;
no text a user supplies is ever spliced into a statement. Writes take lists of rows and
``UNWIND`` them, so one statement carries a whole task.

The graph as it reads in Neo4j Browser: nodes labelled ``Query``, ``Utterance`` and
``Insight`` (the three tiers) and ``Item`` (adapters' key-value records); relationship
types named after :class:`EdgeKind`; every node has ``id``, ``namespace``, ``node_kind``
and ``seq`` (insertion order) properties. A node's vectors are not among them: they sit
on a node of their own, ``(:Query)-[:HAS_VECTOR]->(:QueryVector {embedding,
graph_embedding})``, one vector label per kind, which holds the vector indexes. A person
clicking a task in the Browser reads its properties, not 384 floats; node reads that do
not ask for vectors never touch those nodes; and each kind's index holds only its own
kind's vectors, so a search needs no filter by kind. Every per-label statement below is
generated for each :class:`NodeKind`, so a new kind gets its constraint, indexes, vector
label and vector indexes here without further code.
"""

from __future__ import annotations

import functools
import re

from graph_store.model import EdgeKind, NodeKind
from graph_store.neo4j.codec import TIME_KEYS
from graph_store.neo4j.titles import TITLE_KEY
from graph_store.ops import VERSIONED_KINDS

#: The columns of each read statement that can run inside :func:`together`, by text.
_COLUMNS: dict[str, tuple[str, ...]] = {}


def _reads(text: str, *columns: str) -> str:
    """``text``, noted as a read statement returning ``columns``, in this order."""
    _COLUMNS[text] = columns
    return text


#: Label disjunction matching any gmem node; Neo4j plans it as one unique-index seek per label.
ANY = "|".join(kind.value for kind in NodeKind)
#: Vector properties of a vector node, each searched through its own index per label.
FIELDS = ("embedding", "graph_embedding")
#: The relationship from a node to the node holding its vectors (at most one).
HAS_VECTOR = "HAS_VECTOR"
#: Relationship-type disjunction of gmem's edges: every type but ``HAS_VECTOR``.
EDGE_TYPES = "|".join(kind.value for kind in EdgeKind)
#: Similarity of two vectors, as Neo4j scales cosine into [0, 1]; the store maps it back.
#: Zero vectors (which Neo4j rejects) score as orthogonal, as the embedded store does.
_SIMILARITY = (
    "CASE WHEN $zero OR NOT any(x IN v[$field] WHERE x <> 0.0) THEN 0.5 "
    "ELSE vector.similarity.cosine(v[$field], $vector) END"
)


def _snake(kind: NodeKind) -> str:
    return kind.value.lower()


def vector_label(kind: NodeKind) -> str:
    """The label of the nodes holding ``kind``'s vectors: ``QueryVector``, ..."""
    return f"{kind.value}Vector"


#: Label disjunction matching any vector node.
ANY_VECTOR = "|".join(vector_label(kind) for kind in NodeKind)


def vector_index_name(kind: NodeKind, field: str) -> str:
    if field not in FIELDS:
        raise ValueError(f"unknown vector field {field!r}")
    return f"gmem_{_snake(kind)}_vector_{field}"


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
        f"FOR (v:{vector_label(k)}) ON (v.{f}) "
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
    "SHOW VECTOR INDEXES YIELD name, options, state, populationPercent "
    "WHERE name STARTS WITH 'gmem_' "
    "RETURN name, options.indexConfig['vector.dimensions'] AS dims, state, "
    "populationPercent AS percent"
)

# ---- node writes -----------------------------------------------------------------------
#: Insert or replace by id, in one statement per label. ``SET n = ...`` drops properties
#: the new version lacks while ``seq`` keeps the first insert's place; the row's
#: ``vectors`` (a map, or null for none) replace those of the node's vector node, which
#: is created with the first vector and deleted when a version has none (``SET v = ...``
#: likewise drops a field set to None). ``clashes`` lists ids held by a node of another
#: label, ``stale`` those (of a versioned kind) whose stored ``updated_at`` is later than
#: the one written, read after the first SET took the node's write lock, so no commit can
#: slip in between. Either way the caller raises and the transaction rolls back: a
#: node's kind never changes and a stale copy never lands.
PUT_NODES: dict[NodeKind, str] = {
    k: (
        f"UNWIND $rows AS row "
        f"OPTIONAL MATCH (o:{ANY} {{id: row.id}}) WHERE NOT o:{k.value} "
        f"MERGE (n:{k.value} {{id: row.id}}) "
        # coalesce: a node claimed earlier in the batch (EXPECT_ABSENT) has no seq yet.
        "SET n.seq = coalesce(n.seq, row.seq) "
        "WITH n, o, row, row.props AS props, n.seq AS seq, n.updated_at AS stored "
        "SET n = props {.*, seq: seq} "
        "FOREACH (vectors IN CASE WHEN row.vectors IS NULL THEN [] ELSE [row.vectors] END | "
        f"MERGE (n)-[:{HAS_VECTOR}]->(v:{vector_label(k)}) SET v = vectors) "
        "WITH n, o, row, props, stored "
        f"OPTIONAL MATCH (n)-[:{HAS_VECTOR}]->(gone) WHERE row.vectors IS NULL "
        "FOREACH (v IN CASE WHEN gone IS NULL THEN [] ELSE [gone] END | DETACH DELETE v) "
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


#: The properties of node ``n`` as the codec decodes them.
_PROPS_MAP = f"n {{.*, {TITLE_KEY}: null, {_TIMES}}}"
_PROPS = f"{_PROPS_MAP} AS props"
#: The vectors of ``n``, read only when asked for: a map of the fields it has, or null.
_VECTORS = (
    f"OPTIONAL MATCH (n)-[:{HAS_VECTOR}]->(v) "
    "WITH n, CASE WHEN v IS NULL THEN null ELSE v {.embedding, .graph_embedding} END AS vectors "
)


def _returned(with_vectors: bool) -> str:
    return (_VECTORS + f"RETURN {_PROPS}, vectors") if with_vectors else f"RETURN {_PROPS}"


GET_NODES: dict[bool, str] = {
    wv: _reads(
        f"UNWIND $ids AS id MATCH (n:{ANY} {{id: id}}) {_returned(wv)}",
        *(("props", "vectors") if wv else ("props",)),
    )
    for wv in (False, True)
}

#: Keyed by (kind, filtered by namespace, with vectors, limited). A limited listing picks
#: its nodes before their vectors are read.
LIST_NODES: dict[tuple[NodeKind, bool, bool, bool], str] = {
    (k, by_ns, wv, limited): (
        f"MATCH (n:{k.value}) "
        + ("WHERE n.namespace = $namespace " if by_ns else "")
        + ("WITH n ORDER BY n.seq, n.id LIMIT $limit " if limited else "")
        + f"{_returned(wv)} ORDER BY n.seq, n.id"
    )
    for k in NodeKind
    for by_ns in (False, True)
    for wv in (False, True)
    for limited in (False, True)
}

# ---- edge reads and traversal ----------------------------------------------------------
_EDGE_ROW = (
    "id AS origin, startNode(r) = n AS outgoing, type(r) AS kind, startNode(r).id AS src, "
    "endNode(r).id AS dst, properties(r) AS props"
)
_EDGE_COLUMNS = ("origin", "outgoing", "kind", "src", "dst", "props")


def _arrow(direction: str, kinds: tuple[str, ...] | None) -> str:
    """The relationship pattern of ``direction`` over ``kinds`` (None: every gmem edge).

    The types are written into the pattern, from :class:`EdgeKind` only, so that Neo4j
    follows just those relationships; a ``type(r) IN $kinds`` filter would have it read
    every relationship of the node, and the node at its other end, first (a query's
    two dozen ``HAS_TRACE`` links on every hop over ``SIMILAR_TO``).
    """
    types = EDGE_TYPES if kinds is None else "|".join(EdgeKind(k).value for k in kinds)
    return {"out": f"-[r:{types}]->", "in": f"<-[r:{types}]-", "both": f"-[r:{types}]-"}[direction]


@functools.cache
def edges(direction: str, kinds: tuple[str, ...] | None) -> str:
    """Edges leaving ("out"), entering ("in") or touching ("both") the given nodes, with
    the given node as ``origin``; a self-loop comes twice under "both"."""
    return _reads(
        f"UNWIND $ids AS id MATCH (n:{ANY} {{id: id}}){_arrow(direction, kinds)}(m) "
        f"RETURN {_EDGE_ROW}",
        *_EDGE_COLUMNS,
    )


@functools.cache
def expand(direction: str, kinds: tuple[str, ...] | None) -> str:
    """One hop of breadth-first expansion: edges from the frontier to nodes not yet
    visited."""
    return _reads(
        f"UNWIND $ids AS id MATCH (n:{ANY} {{id: id}}){_arrow(direction, kinds)}(m:{ANY}) "
        "WHERE NOT m.id IN $visited "
        f"RETURN m.id AS other, m.node_kind AS other_kind, {_EDGE_ROW}",
        "other",
        "other_kind",
        *_EDGE_COLUMNS,
    )


@functools.cache
def expand_nodes(direction: str, kinds: tuple[str, ...] | None) -> str:
    """The same hop with the far ends' nodes (without vectors), read by the same
    statement: a traversal's next question, answered in the round trip of its links."""
    return _reads(
        f"UNWIND $ids AS id MATCH (o:{ANY} {{id: id}}){_arrow(direction, kinds)}(n:{ANY}) "
        "WHERE NOT n.id IN $visited "
        "RETURN n.id AS other, n.node_kind AS other_kind, id AS origin, "
        "startNode(r) = o AS outgoing, type(r) AS kind, startNode(r).id AS src, "
        f"endNode(r).id AS dst, properties(r) AS edge_props, {_PROPS}",
        *("other", "other_kind", "origin", "outgoing", "kind", "src", "dst", "edge_props"),
        "props",
    )


@functools.cache
def expand_nodes_vectors(direction: str, kinds: tuple[str, ...] | None) -> str:
    """The same hop with the far ends' nodes and their vectors: one row per node
    reached, with every link that reached it (``links``), so that a node reached from
    several origins sends its vectors once."""
    return _reads(
        f"UNWIND $ids AS id MATCH (o:{ANY} {{id: id}}){_arrow(direction, kinds)}(n:{ANY}) "
        "WHERE NOT n.id IN $visited "
        "WITH n, collect({origin: id, outgoing: startNode(r) = o, kind: type(r), "
        "src: startNode(r).id, dst: endNode(r).id, props: properties(r)}) AS links "
        f"OPTIONAL MATCH (n)-[:{HAS_VECTOR}]->(v) "
        f"RETURN n.id AS other, n.node_kind AS other_kind, links, {_PROPS}, "
        "CASE WHEN v IS NULL THEN null ELSE v {.embedding, .graph_embedding} END AS vectors",
        *("other", "other_kind", "links", "props", "vectors"),
    )


# ---- vector search ---------------------------------------------------------------------
#: Candidates from the HNSW index (vector nodes), each taken back to the node it belongs
#: to, then the namespace and exclusion filter; ``fetched`` tells the caller whether the
#: index had more to give when too few passed the filter. A candidate whose owner a
#: concurrent transaction is deleting reads with a null id, and the caller drops it.
#: The index is created unquantized, so its score is the exact float32 cosine (scaled).
VECTOR_QUERY = _reads(
    "CALL db.index.vector.queryNodes($index, $fetch, $vector) YIELD node, score "
    f"OPTIONAL MATCH (n)-[:{HAS_VECTOR}]->(node) "
    "WITH collect({n: n, score: score}) AS found "
    "RETURN size(found) AS fetched, "
    "[f IN found WHERE f.n IS NOT NULL "
    "AND ($namespace IS NULL OR f.n.namespace = $namespace) "
    "AND NOT f.n.id IN $exclude | {id: f.n.id, score: f.score}] AS hits",
    "fetched",
    "hits",
)

#: :data:`VECTOR_QUERY` with the nodes found (keyed by whether their vectors come too):
#: the best ``$k`` that pass the filter, each with its node's properties; the vectors
#: are those of the index's own candidate, the node's vector node.
VECTOR_QUERY_NODES: dict[bool, str] = {
    wv: _reads(
        "CALL db.index.vector.queryNodes($index, $fetch, $vector) YIELD node, score "
        f"OPTIONAL MATCH (n)-[:{HAS_VECTOR}]->(node) "
        "WITH collect({n: n, v: node, score: score}) AS found "
        "CALL (found) { UNWIND found AS f "
        "WITH f WHERE f.n IS NOT NULL AND f.n.id IS NOT NULL "
        "AND ($namespace IS NULL OR f.n.namespace = $namespace) AND NOT f.n.id IN $exclude "
        "WITH f.n AS n, f.v AS v, f.score AS score ORDER BY score DESC, n.id LIMIT $k "
        f"RETURN collect({{id: n.id, score: score, props: {_PROPS_MAP}"
        + (", vectors: v {.embedding, .graph_embedding}" if wv else "")
        + "}) AS hits } "
        "RETURN size(found) AS fetched, hits",
        "fetched",
        "hits",
    )
    for wv in (False, True)
}


@functools.cache
def together(texts: tuple[str, ...]) -> str | None:
    """Read statements as one statement, one row per statement: its place ``at`` and its
    rows as lists of its columns (:func:`columns`); None when one of them is not a read
    statement noted for this. Each statement's parameters are renamed ``$s<place>_<name>``
    and each runs in a subquery of its own, so they cannot see each other.

    Every statement is a round trip and a transaction on the server, which cost more
    than a small read itself: the independent reads of one batch share one.
    """
    parts = []
    for at, text in enumerate(texts):
        names = _COLUMNS.get(text)
        if names is None:
            return None
        body = re.sub(r"\$(\w+)", rf"$s{at}_\1", text)
        parts.append(
            f"CALL () {{ {body} }} WITH collect([{', '.join(names)}]) AS rows "
            f"RETURN {at} AS at, rows"
        )
    return " UNION ALL ".join(parts)


def columns(text: str) -> tuple[str, ...]:
    """The columns of a read statement :func:`together` can take."""
    return _COLUMNS[text]


#: :data:`VECTOR_QUERY` for several searches at once, one row each (``at``: its place).
VECTOR_QUERIES = (
    "UNWIND $searches AS s CALL (s) { "
    "CALL db.index.vector.queryNodes(s.index, s.fetch, s.vector) YIELD node, score "
    f"OPTIONAL MATCH (n)-[:{HAS_VECTOR}]->(node) "
    "WITH collect({n: n, score: score}) AS found "
    "RETURN size(found) AS fetched, "
    "[f IN found WHERE f.n IS NOT NULL "
    "AND (s.namespace IS NULL OR f.n.namespace = s.namespace) "
    "AND NOT f.n.id IN s.exclude | {id: f.n.id, score: f.score}] AS hits } "
    "RETURN s.at AS at, fetched, hits"
)

#: Exact scan, for reads that must see vectors written earlier in the same transaction
#: (Neo4j's vector index does not see uncommitted changes), for zero query vectors, and
#: while an index is still being built (a search then would wait for it, or fail).
VECTOR_SCAN: dict[NodeKind, str] = {
    k: (
        f"MATCH (n:{k.value})-[:{HAS_VECTOR}]->(v:{vector_label(k)}) "
        "WHERE ($namespace IS NULL OR n.namespace = $namespace) "
        "AND v[$field] IS NOT NULL AND NOT n.id IN $exclude "
        f"WITH n.id AS id, {_SIMILARITY} AS score "
        "RETURN id, score ORDER BY score DESC, id LIMIT $k"
    )
    for k in NodeKind
}

# ---- deletes ---------------------------------------------------------------------------
#: A node's vector node goes with it, before the counted delete (which then sees only
#: gmem's own edges).
DELETE_VECTORS_OF_NODES = (
    f"UNWIND $ids AS id MATCH (:{ANY} {{id: id}})-[:{HAS_VECTOR}]->(v) DETACH DELETE v"
)
DELETE_VECTORS_OF_NAMESPACE = (
    f"MATCH (n:{ANY})-[:{HAS_VECTOR}]->(v) WHERE n.namespace = $namespace DETACH DELETE v"
)

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
DELETE_ALL = (
    f"MATCH (n:{ANY}|{ANY_VECTOR}) CALL (n) {{ DETACH DELETE n }} IN TRANSACTIONS OF 5000 ROWS"
)

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
    f"MATCH (n:{ANY})-[r:{EDGE_TYPES}]->() WHERE n.namespace = $namespace "
    "RETURN type(r) AS kind, count(r) AS n"
)

LIST_NAMESPACES = (
    f"MATCH (n:{ANY}) WHERE n.namespace IS NOT NULL "
    "RETURN DISTINCT n.namespace AS namespace ORDER BY namespace"
)

# ---- the layout before vector nodes, and its upgrade (graph_store.neo4j.upgrade) -------
#: The vector indexes of the old layout, on the nodes' own ``embedding`` and
#: ``graph_embedding`` properties.
OLD_VECTOR_INDEXES: dict[tuple[NodeKind, str], str] = {
    (k, f): f"gmem_{_snake(k)}_{f}" for k in NodeKind for f in FIELDS
}
DROP_OLD_VECTOR_INDEX: dict[tuple[NodeKind, str], str] = {
    key: f"DROP INDEX {name} IF EXISTS" for key, name in OLD_VECTOR_INDEXES.items()
}
#: A node that exists from the start of an upgrade to its end: the old indexes go first
#: (kept, every batch that moves vectors would rewrite them), so this is what says that
#: a database is still being upgraded.
UPGRADE_MARK = "GmemUpgradeInProgress"
START_UPGRADE = f"MERGE (m:{UPGRADE_MARK}) ON CREATE SET m.started = datetime()"
FINISH_UPGRADE = f"MATCH (m:{UPGRADE_MARK}) DELETE m"
UPGRADE_UNDER_WAY = f"MATCH (m:{UPGRADE_MARK}) RETURN m.started AS started LIMIT 1"
_OLD_VECTORS = "(n.embedding IS NOT NULL OR n.graph_embedding IS NOT NULL)"
#: A row per kind whose newest nodes (by the ``seq`` index) hold vectors themselves.
OLD_LAYOUT_PROBE = " UNION ALL ".join(
    f"MATCH (n:{k.value}) WHERE n.seq IS NOT NULL WITH n ORDER BY n.seq DESC LIMIT 16 "
    f"WITH n WHERE {_OLD_VECTORS} RETURN '{k.value}' AS kind LIMIT 1"
    for k in NodeKind
)
#: One batch of the upgrade: the next ``$batch`` nodes of a kind in id order (the unique
#: constraint's index gives that order, so each batch seeks where the last one ended),
#: each one's vectors moved onto its vector node. A vector the vector node already has is
#: only replaced by one the node itself still holds, so a rerun never loses one.
UPGRADE_BATCH: dict[NodeKind, str] = {
    k: (
        f"MATCH (n:{k.value}) WHERE n.id > $after "
        "WITH n ORDER BY n.id LIMIT $batch "
        "WITH collect(n) AS nodes "
        "CALL (nodes) { "
        f"UNWIND nodes AS n WITH n WHERE {_OLD_VECTORS} "
        f"MERGE (n)-[:{HAS_VECTOR}]->(v:{vector_label(k)}) "
        "SET v.embedding = coalesce(n.embedding, v.embedding), "
        "v.graph_embedding = coalesce(n.graph_embedding, v.graph_embedding) "
        "REMOVE n.embedding, n.graph_embedding "
        "RETURN count(n) AS moved } "
        "RETURN size(nodes) AS seen, nodes[-1].id AS last, moved"
    )
    for k in NodeKind
}
#: The dimension of a field's vectors, from one vector node holding it.
VECTOR_DIMS: dict[tuple[NodeKind, str], str] = {
    (
        k,
        f,
    ): f"MATCH (v:{vector_label(k)}) WHERE v.{f} IS NOT NULL RETURN size(v.{f}) AS dims LIMIT 1"
    for k in NodeKind
    for f in FIELDS
}

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
