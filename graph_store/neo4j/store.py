"""``Neo4jStore``: the three-tier graph in a Neo4j 5 server, one transaction per batch.

Each operation compiles to a short program of Cypher statements (a generator that yields
a statement and receives its rows), so the same program runs in a sync or an async
transaction, and a batch is simply its programs run in order inside one managed
transaction: the driver retries it whole on transient errors (deadlock, leader switch,
server restarting) for at most ``retry_s`` seconds, and any error rolls every write back.

What needs schema changes happens before that transaction, because Neo4j forbids schema
and data writes in one transaction: the first vector written for a (kind, field) creates
its native vector index with that vector's dimension, which from then on is checked
client-side before anything is sent (Neo4j itself would silently leave a vector of
another length out of the index).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncGenerator, Generator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from graph_store.base import GraphStore, check_op
from graph_store.errors import (
    ConfigError,
    EmbeddingDimensionError,
    GmemError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
    UnknownNamespaceError,
    UserInputError,
)
from graph_store.model import Edge, EdgeKind, Node, NodeKind
from graph_store.neo4j import codec, cypher
from graph_store.ops import (
    Count,
    Counts,
    DeleteEdges,
    DeleteNamespace,
    DeleteNodes,
    DeleteTask,
    GetEdges,
    GetNodes,
    Hit,
    ListNamespaces,
    ListNodes,
    Neighbors,
    Op,
    PutEdges,
    PutNodes,
    Reached,
    Removed,
    VectorSearch,
)
from graph_store.redact import redact, redact_url

if TYPE_CHECKING:
    import neo4j

Rows = list[dict[str, Any]]
Statement = tuple[str, dict[str, Any]]
Program = Generator[Statement, Rows, Any]
VectorKey = tuple[NodeKind, str]

_WRITE_OPS = (PutNodes, PutEdges, DeleteEdges, DeleteTask, DeleteNodes, DeleteNamespace)
_FIELDS = codec.VECTOR_FIELDS


class _BatchState:
    """What one batch's programs share: whether the index may be stale, the dimensions."""

    def __init__(self, dims: dict[VectorKey, int], oversample: int) -> None:
        self.dims = dims
        self.oversample = oversample
        self.wrote = False


class Neo4jStore(GraphStore):
    """gmem memory in a Neo4j 5.x server (Community, Enterprise or Aura).

    ``user`` and ``password`` default to ``GMEM_NEO4J_USER`` (else ``neo4j``) and
    ``GMEM_NEO4J_PASSWORD``. Connecting checks the server and the credentials and
    applies the schema (idempotent), so a wrong password or a stopped server fails here,
    with :class:`StoreUnavailableError`, not at the first write. ``oversample`` is how
    many index candidates are fetched per wanted hit before the namespace filter.
    """

    def __init__(
        self,
        uri: str,
        user: str | None = None,
        password: str | None = None,
        database: str = "neo4j",
        *,
        retry_s: float = 15.0,
        connect_timeout_s: float = 5.0,
        oversample: int = 4,
    ) -> None:
        try:
            import neo4j
        except ImportError:  # pragma: no cover - depends on the environment
            raise ConfigError(
                "the Neo4j backend needs the neo4j driver: pip install 'gmem-agents[neo4j]'"
            ) from None
        self._neo4j = neo4j
        self.uri = uri
        self.database = database
        # What messages and the CLI show: never the password a URI may carry.
        self.url = redact_url(f"{uri.rstrip('/')}/{database}")
        self.user = user if user is not None else os.environ.get("GMEM_NEO4J_USER", "neo4j")
        secret = password if password is not None else os.environ.get("GMEM_NEO4J_PASSWORD", "")
        self._oversample = max(1, oversample)
        self._closed = False
        self._lock = threading.Lock()
        self._seq = 0
        self._dims: dict[VectorKey, int] = {}
        self._async_drivers: dict[asyncio.AbstractEventLoop, _LoopDriver] = {}
        self._driver_options: dict[str, Any] = {
            "auth": (self.user, secret),
            "connection_timeout": connect_timeout_s,
            "connection_acquisition_timeout": connect_timeout_s * 2,
            "max_transaction_retry_time": retry_s,
            "notifications_min_severity": "OFF",
            "user_agent": "gmem",
        }
        try:
            self._driver = neo4j.GraphDatabase.driver(uri, **self._driver_options)
        except (neo4j.exceptions.ConfigurationError, ValueError) as exc:
            shown = redact_url(uri)
            raise ConfigError(
                f"invalid Neo4j URI {shown!r}: {redact(str(exc), [secret])}"
            ) from None
        try:
            self._call(self._connect)
        except BaseException:
            self._driver.close()
            self._closed = True
            raise

    # ---- lifecycle -------------------------------------------------------------------
    def _connect(self) -> None:
        self._driver.verify_connectivity()
        with self._driver.session(database=self.database) as session:
            for statement in cypher.SCHEMA:
                self._schema_statement(session, statement)
            self._dims = self._read_dims(session)

    def _schema_statement(self, session: neo4j.Session, statement: str, **params: Any) -> None:
        try:
            session.run(statement, params).consume()
        except self._neo4j.exceptions.ClientError as exc:
            # An equivalent index under another name (made by hand) serves just as well.
            if "EquivalentSchemaRuleAlreadyExists" not in (exc.code or ""):
                raise

    def _read_dims(self, session: neo4j.Session) -> dict[VectorKey, int]:
        names = {cypher.vector_index_name(*key): key for key in cypher.CREATE_VECTOR_INDEX}
        dims: dict[VectorKey, int] = {}
        for record in session.run(cypher.SHOW_VECTOR_INDEXES):
            key = names.get(record["name"])
            if key is not None and record["dims"] is not None:
                dims[key] = int(record["dims"])
        return dims

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            drivers, self._async_drivers = self._async_drivers, {}
        self._driver.close()
        for loop, held in drivers.items():
            if loop.is_running() and not loop.is_closed():
                asyncio.run_coroutine_threadsafe(held.keeper.aclose(), loop)

    def delete_all(self) -> None:
        """Remove every gmem node, edge and vector index in the database (a test helper).

        Tests call it between cases so that each starts from an empty store whose vector
        dimensions are not yet fixed. Other handles on the same database keep their own
        cached dimensions; reopen them after calling this.
        """
        self._ensure_open()

        def work() -> None:
            with self._driver.session(database=self.database) as session:
                session.run(cypher.DELETE_ALL).consume()
                for statement in cypher.DROP_VECTOR_INDEX.values():
                    session.run(statement).consume()
            self._dims = {}

        self._call(work)

    def reindex_vectors(self) -> None:
        """Rebuild every vector index from the stored vectors, after a bulk import.

        Neo4j's HNSW indexes are Lucene segments, one more per committed batch until
        Lucene merges them, and a search visits every segment: 10,000 tasks written in
        200 batches searched in about 15 ms, the same index rebuilt in one pass in 1.5 ms
        (rebuilding takes about a second per 10,000 vectors). Searches that run while an
        index is rebuilt recreate it themselves, so the store stays usable.
        """
        self._ensure_open()

        def work() -> None:
            with self._driver.session(database=self.database) as session:
                for key in self._dims:
                    session.run(cypher.DROP_VECTOR_INDEX[key]).consume()
            self._create_vector_indexes(dict(self._dims))

        self._call(work)

    # ---- the one entry point ---------------------------------------------------------
    def _batch(self, ops: list[Op]) -> list[Any]:
        self._ensure_open()
        state = self._prepare(ops)

        def work(tx: neo4j.ManagedTransaction) -> list[Any]:
            state.wrote = False
            return [_drive(tx, self._program(op, state)) for op in ops]

        def run() -> list[Any]:
            with self._driver.session(database=self.database) as session:
                if any(isinstance(op, _WRITE_OPS) for op in ops):
                    return session.execute_write(work)
                return session.execute_read(work)

        try:
            result: list[Any] = self._call(run)
        except StoreError as exc:
            if not _lost_vector_index(exc):
                raise
            self._call(self._restore_vector_indexes)
            result = self._call(run)
        return result

    async def abatch(self, ops: Sequence[Op]) -> list[Any]:
        """The batch on the driver's native asyncio API, one driver per event loop."""
        self._ensure_open()
        ops = list(ops)
        for op in ops:
            check_op(op)
        # Schema work (rare: first vector of a kind) stays on the sync driver, off-loop.
        state = await asyncio.to_thread(self._prepare, ops)
        driver = await self._async_driver()

        async def work(tx: neo4j.AsyncManagedTransaction) -> list[Any]:
            state.wrote = False
            return [await _adrive(tx, self._program(op, state)) for op in ops]

        async def run() -> list[Any]:
            async with driver.session(database=self.database) as session:
                if any(isinstance(op, _WRITE_OPS) for op in ops):
                    return await session.execute_write(work)
                return await session.execute_read(work)

        for attempt in (1, 2):
            try:
                return await run()
            except Exception as exc:
                error = self._translate(exc)
                if attempt == 2 or not _lost_vector_index(error):
                    raise error from exc
            await asyncio.to_thread(self._call, self._restore_vector_indexes)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        """Close the running loop's async driver now, then the store."""
        held = self._async_drivers.pop(asyncio.get_running_loop(), None)
        if held is not None:
            await held.keeper.aclose()
        self.close()

    async def _async_driver(self) -> neo4j.AsyncDriver:
        """The running loop's driver, created on first use.

        An async driver's connections belong to one event loop. A parked async generator
        per loop closes the driver when that loop shuts down (``asyncio.run`` and
        pytest-asyncio finalize async generators), so short-lived loops leak nothing.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            for old in [lp for lp in self._async_drivers if lp.is_closed()]:
                del self._async_drivers[old]
            held = self._async_drivers.get(loop)
            if held is None:
                driver = self._neo4j.AsyncGraphDatabase.driver(self.uri, **self._driver_options)
                held = self._async_drivers[loop] = _LoopDriver(driver, _close_at_shutdown(driver))
                fresh = True
            else:
                fresh = False
        if fresh:
            await held.keeper.asend(None)
        return held.driver

    def _ensure_open(self) -> None:
        if self._closed:
            raise StoreUnavailableError("the Neo4j store is closed; open it again")

    def _call(self, fn: Any) -> Any:
        try:
            return fn()
        except Exception as exc:
            raise self._translate(exc) from exc

    def _translate(self, exc: Exception) -> Exception:
        """Driver errors as gmem's one-line errors; gmem's own errors pass through."""
        if isinstance(exc, GmemError):
            return exc
        errors = self._neo4j.exceptions
        where = f"Neo4j at {redact_url(self.uri)}"
        if isinstance(exc, errors.AuthError):
            return StoreUnavailableError(
                f"{where} rejected user {self.user!r}: check the password "
                "(GMEM_NEO4J_USER / GMEM_NEO4J_PASSWORD)"
            )
        if isinstance(exc, errors.ServiceUnavailable | errors.SessionExpired | OSError):
            return StoreUnavailableError(
                f"cannot reach {where}: start it (graph_store/neo4j/server.sh start) "
                "or check the URI"
            )
        if isinstance(exc, errors.Neo4jError) and "DatabaseNotFound" in (exc.code or ""):
            return StoreUnavailableError(
                f"{where} has no database {self.database!r}: create it or pass database="
            )
        if isinstance(exc, errors.TransientError | errors.DatabaseUnavailable):
            return StoreUnavailableError(f"{where} stayed unavailable: {_one_line(exc)}")
        if isinstance(exc, errors.Neo4jError | errors.DriverError):
            return StoreError(f"{where} failed; the batch was rolled back: {_one_line(exc)}")
        return exc

    # ---- before the transaction: validation and vector indexes -----------------------
    def _prepare(self, ops: Sequence[Op]) -> _BatchState:
        """Check ids and vector dimensions, and create the vector indexes a batch needs."""
        pending: dict[VectorKey, int] = {}

        def expected(key: VectorKey) -> int | None:
            return self._dims.get(key, pending.get(key))

        for op in ops:
            if isinstance(op, PutNodes):
                for node in op.nodes:
                    for field in _FIELDS:
                        vec = getattr(node, field)
                        if vec is None:
                            continue
                        key = (node.kind, field)
                        dim = expected(key)
                        if dim is None:
                            pending[key] = int(vec.shape[0])
                        elif vec.shape != (dim,):
                            raise _dimension_error(f"vector of node {node.id}", vec, dim)
            elif isinstance(op, VectorSearch):
                dim = expected((NodeKind(op.kind), op.field))
                vector = np.asarray(op.vector, dtype=np.float32)
                if dim is not None and vector.shape != (dim,):
                    raise _dimension_error("query vector", vector, dim)
        if pending:
            self._call(lambda: self._create_vector_indexes(pending))
        return _BatchState(dict(self._dims), self._oversample)

    def _create_vector_indexes(self, wanted: dict[VectorKey, int]) -> None:
        with self._driver.session(database=self.database) as session:
            for key, dims in wanted.items():
                self._schema_statement(session, cypher.CREATE_VECTOR_INDEX[key], dims=dims)
                name = cypher.vector_index_name(*key)
                session.run(cypher.AWAIT_INDEX, {"name": name, "timeout": 300}).consume()
            self._dims = self._read_dims(session)
        for key, dims in wanted.items():
            # Another client may have created the index first, with its own dimension.
            if self._dims.get(key, dims) != dims:
                raise EmbeddingDimensionError(
                    f"{key[0].value}.{key[1]} vectors have dimension {self._dims[key]} in "
                    f"this store, not {dims}; use the embedder that wrote it, or a new database"
                )

    def _restore_vector_indexes(self) -> None:
        """Recreate vector indexes this handle knew but the server lost (another handle's
        ``delete_all``, an index dropped by hand), with the dimensions they had."""
        known = dict(self._dims)
        with self._driver.session(database=self.database) as session:
            self._dims = self._read_dims(session)
        missing = {key: dim for key, dim in known.items() if key not in self._dims}
        if missing:
            self._create_vector_indexes(missing)

    def _next_seq(self, count: int) -> int:
        """Start of a block of insertion numbers: increasing in this process, time-based."""
        with self._lock:
            start = max(self._seq + 1, time.time_ns())
            self._seq = start + count
            return start

    # ---- operations as Cypher programs -----------------------------------------------
    def _program(self, op: Op, state: _BatchState) -> Program:
        if isinstance(op, _WRITE_OPS):
            program = self._write_program(op)
            state.wrote = True
            return program
        match op:
            case GetNodes(ids, with_vectors):
                return _get_nodes(ids, with_vectors)
            case ListNodes(kind, namespace, with_vectors, limit):
                return _list_nodes(NodeKind(kind), namespace, with_vectors, limit)
            case GetEdges(ids, kinds, direction):
                return _get_edges(ids, kinds, direction)
            case Neighbors(ids, hops, kinds, direction, node_kind):
                return _neighbors(ids, hops, kinds, direction, node_kind)
            case VectorSearch():
                return _vector_search(op, state, stale_index=state.wrote)
            case Count(namespace):
                return _count(namespace)
            case ListNamespaces():
                return _list_namespaces()
        raise UserInputError(f"unknown store operation {type(op).__name__}")

    def _write_program(self, op: Op) -> Program:
        match op:
            case PutNodes(nodes):
                return _put_nodes(nodes, self._next_seq(len(nodes)))
            case PutEdges(edges):
                return _put_edges(edges)
            case DeleteEdges(keys):
                return _delete_edges(keys)
            case DeleteTask(query_id):
                return _delete_task(query_id)
            case DeleteNodes(ids):
                return _delete_nodes(ids)
            case DeleteNamespace(namespace):
                return _delete_namespace(namespace)
        raise UserInputError(f"unknown store operation {type(op).__name__}")


class _LoopDriver(NamedTuple):
    driver: neo4j.AsyncDriver
    keeper: AsyncGenerator[None, None]


async def _close_at_shutdown(driver: neo4j.AsyncDriver) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await driver.close()


def _drive(tx: neo4j.ManagedTransaction, program: Program) -> Any:
    try:
        text, params = next(program)
        while True:
            result = tx.run(text, params)
            keys = result.keys()
            # Plain dicts of the values: Result.data() would re-walk every vector element.
            text, params = program.send([dict(zip(keys, record, strict=True)) for record in result])
    except StopIteration as done:
        return done.value


async def _adrive(tx: neo4j.AsyncManagedTransaction, program: Program) -> Any:
    try:
        text, params = next(program)
        while True:
            result = await tx.run(text, params)
            keys = result.keys()
            rows = [dict(zip(keys, record, strict=True)) async for record in result]
            text, params = program.send(rows)
    except StopIteration as done:
        return done.value


def _lost_vector_index(error: Exception) -> bool:
    return isinstance(error, StoreError) and "no such vector schema index" in str(error)


def _one_line(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return " ".join(redact(str(message)).split())[:300]


def _dimension_error(what: str, vec: npt.NDArray[np.float32], dim: int) -> EmbeddingDimensionError:
    return EmbeddingDimensionError(
        f"{what} has dimension {vec.shape[0]}, but this store holds {dim}-d vectors"
        "; it was written with another embedder: use that one, or a new database"
    )


# ---- writes ------------------------------------------------------------------------------
def _put_nodes(nodes: Sequence[Node], seq: int) -> Program:
    by_kind: dict[NodeKind, list[dict[str, Any]]] = {}
    for i, node in enumerate(nodes):
        row = {"id": node.id, "props": codec.node_props(node), "seq": seq + i}
        by_kind.setdefault(node.kind, []).append(row)
    for kind, rows in by_kind.items():
        (result,) = yield cypher.PUT_NODES[kind], {"rows": rows}
        if result["clashes"]:
            clash = result["clashes"][0]
            raise UserInputError(
                f"node {clash['id']} exists as a {clash['node_kind']}, not a {kind.value}"
            )


def _put_edges(edges: Sequence[Edge]) -> Program:
    rows = [
        {
            "kind": EdgeKind(edge.kind).value,
            "src": edge.src,
            "dst": edge.dst,
            "props": codec.edge_props(dict(edge.props)),
        }
        for edge in edges
    ]
    if not rows:
        return
    (written,) = yield cypher.PUT_EDGES, {"rows": rows}
    if written["written"] != len(rows):
        ends = list(dict.fromkeys(i for row in rows for i in (row["src"], row["dst"])))
        missing = yield cypher.MISSING_NODES, {"ids": ends}
        node_id = missing[0]["id"] if missing else "?"
        kind = next((r["kind"] for r in rows if node_id in (r["src"], r["dst"])), "an")
        raise NotFoundError(f"cannot add {kind} edge: node {node_id} not found")


def _delete_edges(keys: Sequence[tuple[EdgeKind, str, str]]) -> Program:
    unique = dict.fromkeys((EdgeKind(k).value, s, d) for k, s, d in keys)
    rows = [{"kind": k, "src": s, "dst": d} for k, s, d in unique]
    if not rows:
        return 0
    (deleted,) = yield cypher.DELETE_EDGES, {"rows": rows}
    return int(deleted["deleted"])


def _removed(rows: Rows) -> Removed:
    return Removed(nodes=int(rows[0]["nodes"]), edges=int(rows[0]["edges"]))


def _delete_task(query_id: str) -> Program:
    task = yield cypher.TASK_NODES, {"id": query_id}
    if not task:
        raise NotFoundError(f"no task with id {query_id}")
    rows = yield cypher.DELETE_NODES, {"ids": [query_id, *task[0]["trace"]]}
    return _removed(rows)


def _delete_nodes(ids: Sequence[str]) -> Program:
    unique = list(dict.fromkeys(ids))
    if not unique:
        return Removed(nodes=0, edges=0)
    rows = yield cypher.DELETE_NODES, {"ids": unique}
    return _removed(rows)


def _delete_namespace(namespace: str) -> Program:
    rows = yield cypher.DELETE_NAMESPACE, {"namespace": namespace}
    if not rows or rows[0]["nodes"] == 0:
        raise UnknownNamespaceError(f"namespace {namespace!r} holds no memory")
    return _removed(rows)


# ---- reads -------------------------------------------------------------------------------
def _get_nodes(ids: Sequence[str], with_vectors: bool) -> Program:
    unique = list(dict.fromkeys(ids))
    rows = yield cypher.GET_NODES[with_vectors], {"ids": unique}
    found = {row["props"]["id"]: codec.node_from_record(row["props"], with_vectors) for row in rows}
    return [found.get(i) for i in ids]


def _list_nodes(
    kind: NodeKind, namespace: str | None, with_vectors: bool, limit: int | None
) -> Program:
    key = (kind, namespace is not None, with_vectors, limit is not None)
    params = {"namespace": namespace, "limit": None if limit is None else max(0, int(limit))}
    rows = yield cypher.LIST_NODES[key], params
    return [codec.node_from_record(row["props"], with_vectors) for row in rows]


def _kind_names(kinds: Sequence[EdgeKind] | None) -> list[str] | None:
    return None if kinds is None else [EdgeKind(k).value for k in kinds]


def _edge_order(row: dict[str, Any]) -> tuple[str, str, str]:
    return (row["kind"], row["src"], row["dst"])


def _by_origin(rows: Rows) -> dict[str, Rows]:
    """Rows per origin node, out-edges before in-edges as the embedded store walks them,
    then by kind and ends so that the order does not depend on Neo4j's storage layout."""
    grouped: dict[str, Rows] = {}
    for row in sorted(rows, key=lambda r: (not r["outgoing"], *_edge_order(r))):
        grouped.setdefault(row["origin"], []).append(row)
    return grouped


def _check_direction(direction: str) -> str:
    if direction not in ("out", "in", "both"):
        raise UserInputError(f"direction must be 'out', 'in' or 'both', not {direction!r}")
    return direction


def _edge(row: dict[str, Any]) -> Edge:
    return codec.edge_from_record(row["kind"], row["src"], row["dst"], row["props"])


def _get_edges(ids: Sequence[str], kinds: Sequence[EdgeKind] | None, direction: str) -> Program:
    unique = list(dict.fromkeys(ids))
    params = {"ids": unique, "kinds": _kind_names(kinds)}
    grouped = _by_origin((yield cypher.EDGES[_check_direction(direction)], params))
    seen: set[tuple[str, str, str]] = set()
    out: list[Edge] = []
    for node_id in unique:
        for row in grouped.get(node_id, []):
            if _edge_order(row) not in seen:
                seen.add(_edge_order(row))
                out.append(_edge(row))
    return out


def _neighbors(
    ids: Sequence[str],
    hops: int,
    kinds: Sequence[EdgeKind] | None,
    direction: str,
    node_kind: NodeKind | None,
) -> Program:
    """Level-by-level BFS, one round trip per hop, as the embedded store walks it: the
    frontier in discovery order, each node's out-edges before its in-edges. Ids that name
    no node simply expand to nothing."""
    statement = cypher.EXPAND[_check_direction(direction)]
    want = None if node_kind is None else NodeKind(node_kind).value
    frontier = list(dict.fromkeys(ids))
    visited = set(frontier)
    reached: list[Reached] = []
    for hop in range(1, hops + 1):
        if not frontier:
            break
        params = {"ids": frontier, "kinds": _kind_names(kinds), "visited": list(visited)}
        grouped = _by_origin((yield statement, params))
        next_frontier: list[str] = []
        for origin in frontier:
            for row in grouped.get(origin, []):
                other = row["other"]
                if other in visited or (want is not None and row["other_kind"] != want):
                    continue
                visited.add(other)
                reached.append(Reached(other, hop, _edge(row)))
                next_frontier.append(other)
        frontier = next_frontier
    return reached


def _vector_search(op: VectorSearch, state: _BatchState, stale_index: bool) -> Program:
    kind = NodeKind(op.kind)
    if op.field not in _FIELDS:
        raise UserInputError(f"unknown vector field {op.field!r}")
    if op.k <= 0 or (kind, op.field) not in state.dims:
        return []
    vector = np.asarray(op.vector, dtype=np.float32)
    zero = not bool(np.any(vector))
    params: dict[str, Any] = {
        "vector": vector.tolist(),
        "namespace": op.namespace,
        "field": op.field,
        "exclude": sorted(op.exclude_ids),
        "zero": zero,
    }
    if stale_index or zero:
        rows = yield cypher.VECTOR_SCAN[kind], {**params, "k": int(op.k)}
        return [Hit(row["id"], 2.0 * float(row["score"]) - 1.0) for row in rows]
    fetch = max(op.k * state.oversample, 16) + len(op.exclude_ids)
    while True:
        params.update(index=cypher.vector_index_name(kind, op.field), fetch=fetch)
        (row,) = yield cypher.VECTOR_QUERY, params
        hits = row["hits"]
        if len(hits) >= op.k or row["fetched"] < fetch:
            break
        fetch *= 4
    ranked = sorted(hits, key=lambda h: (-float(h["score"]), h["id"]))[: op.k]
    return [Hit(h["id"], 2.0 * float(h["score"]) - 1.0) for h in ranked]


def _count(namespace: str | None) -> Program:
    if namespace is None:
        nodes = yield cypher.COUNT_NODES, {}
        edges = yield cypher.COUNT_EDGES, {}
    else:
        nodes = yield cypher.COUNT_NODES_IN, {"namespace": namespace}
        edges = yield cypher.COUNT_EDGES_IN, {"namespace": namespace}
    return Counts(
        nodes={r["kind"]: int(r["n"]) for r in nodes if r["n"]},
        edges={r["kind"]: int(r["n"]) for r in edges if r["n"]},
    )


def _list_namespaces() -> Program:
    rows = yield cypher.LIST_NAMESPACES, {}
    return [row["namespace"] for row in rows]
