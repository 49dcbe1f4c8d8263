"""``Neo4jStore``: the three-tier graph in a Neo4j 5 server, one transaction per batch.

Each primitive operation compiles to a short program of Cypher statements
(:mod:`graph_store.neo4j.programs`), and a batch is its programs run in order inside one
managed transaction: the driver retries it whole on transient errors (deadlock, leader
switch, server restarting) for at most ``retry_s`` seconds, and any error rolls every
write back. This module holds what is not an operation: connecting, the schema and the
vector indexes, and turning driver errors into gmem's one-line errors.

What needs schema changes happens before that transaction, because Neo4j forbids schema
and data writes in one transaction: the first vector written for a (kind, field) creates
its native vector index with that vector's dimension, which from then on is checked
client-side before anything is sent (Neo4j itself would silently leave a vector of
another length out of the index). An index another client created that is still being
built is not searched until it is ONLINE: the exact scan answers meanwhile.

Vectors live on nodes of their own (see :mod:`graph_store.neo4j.cypher`). A database
written before that, with vectors on the nodes' properties, is refused at open with the
command that upgrades it (:mod:`graph_store.neo4j.upgrade`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

import numpy as np

from graph_store import refusals
from graph_store.base import GraphStore
from graph_store.errors import (
    ConfigError,
    EmbeddingDimensionError,
    GmemError,
    StoreError,
    StoreUnavailableError,
    StoreUpgradeNeededError,
)
from graph_store.model import NodeKind
from graph_store.neo4j import codec, cypher, programs
from graph_store.neo4j.programs import BatchState, VectorKey
from graph_store.ops import WRITE_OPS, Op, PutNodes, VectorSearch
from graph_store.programs import Runner
from graph_store.redact import redact, redact_url

_LOG = logging.getLogger("gmem.neo4j")

if TYPE_CHECKING:
    import neo4j

_FIELDS = codec.VECTOR_FIELDS


def split_credentials(uri: str) -> tuple[str, str | None, str | None]:
    """``neo4j://user:pass@host:7687`` as (``neo4j://host:7687``, user, password).

    The driver takes credentials only as ``auth``; left in the URI they make it fail, and
    they would be echoed in every message that names the server. Percent-escapes in the
    user and password are decoded, so a password may hold ``@`` or ``:``.
    """
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    name, colon, secret = userinfo.partition(":")
    bare = urlunsplit(parts._replace(netloc=host))
    return bare, unquote(name) or None, unquote(secret) if colon else None


class Neo4jStore(GraphStore):
    """gmem memory in a Neo4j 5.x server (Community, Enterprise or Aura).

    ``user`` and ``password`` default to ``GMEM_NEO4J_USER`` (else ``neo4j``) and
    ``GMEM_NEO4J_PASSWORD``. Connecting checks the server and the credentials and
    applies the schema (idempotent), so a wrong password or a stopped server fails here,
    with :class:`StoreUnavailableError`, not at the first write. ``oversample`` is how
    many index candidates are fetched per wanted hit before the namespace filter.
    A database in the layout of older gmem versions raises
    :class:`StoreUpgradeNeededError`; only the upgrade itself opens one with
    ``refuse_old_layout=False``.
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
        refuse_old_layout: bool = True,
    ) -> None:
        try:
            import neo4j
        except ImportError:  # pragma: no cover - depends on the environment
            raise ConfigError(
                "the Neo4j backend needs the neo4j driver: pip install 'gmem-agents[neo4j]'"
            ) from None
        self._neo4j = neo4j
        uri, uri_user, uri_password = split_credentials(uri)
        self.uri = uri  # never holds the password: it is shown in messages
        self.database = database
        # What messages and the CLI show: never the password a URI may carry.
        self.url = redact_url(f"{uri.rstrip('/')}/{database}")
        if user is None:
            user = uri_user or os.environ.get("GMEM_NEO4J_USER", "neo4j")
        if password is None:
            password = uri_password
        if password is None:
            password = os.environ.get("GMEM_NEO4J_PASSWORD")
        self.user = user
        self._no_password = not password
        secret = password or ""
        self._oversample = max(1, oversample)
        self._retry_s = retry_s
        self._closed = False
        self._lock = threading.Lock()
        self._seq = 0
        self._dims: dict[VectorKey, int] = {}
        self._populating: frozenset[VectorKey] = frozenset()
        self._failed_told: set[str] = set()
        self._refuse_old_layout = refuse_old_layout
        self._driver_options: dict[str, Any] = {
            "auth": (self.user, secret),
            "connection_timeout": connect_timeout_s,
            "connection_acquisition_timeout": connect_timeout_s * 2,
            "max_transaction_retry_time": retry_s,
            "notifications_min_severity": "OFF",
            "user_agent": "gmem",
        }
        # One bookmark chain for every session of this handle: on a cluster a read may go
        # to a secondary, and the bookmark makes it wait until that secondary has applied
        # this handle's last write (causal consistency); a single server ignores it.
        self._bookmarks = neo4j.GraphDatabase.bookmark_manager()
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
    def _session(self, read: bool = False) -> neo4j.Session:
        mode = self._neo4j.READ_ACCESS if read else self._neo4j.WRITE_ACCESS
        return self._driver.session(
            database=self.database, bookmark_manager=self._bookmarks, default_access_mode=mode
        )

    def _connect(self) -> None:
        self._driver.verify_connectivity()
        with self._session() as session:
            for statement in cypher.SCHEMA:
                self._schema_statement(session, statement)
            self._read_indexes(session)
            if self._refuse_old_layout and self._holds_old_layout(session):
                raise StoreUpgradeNeededError(
                    f"Neo4j at {self.url} keeps vectors on its nodes, as gmem wrote them "
                    "before vector nodes; stop every process using it and upgrade it in "
                    f"place with: gmem upgrade --store {redact_url(self.uri)}"
                )

    def _holds_old_layout(self, session: neo4j.Session) -> bool:
        """Vector indexes of the old layout, an upgrade under way, or vectors on the
        newest nodes of a kind: all cheap (the index list, one label lookup, and a few
        nodes per label by the ``seq`` index)."""
        indexes = {record["name"] for record in session.run(cypher.SHOW_VECTOR_INDEXES)}
        if indexes & set(cypher.OLD_VECTOR_INDEXES.values()):
            return True
        if list(session.run(cypher.UPGRADE_UNDER_WAY)):
            return True
        return bool(list(session.run(cypher.OLD_LAYOUT_PROBE)))

    def _schema_statement(self, session: neo4j.Session, statement: str, **params: Any) -> None:
        try:
            session.run(statement, params).consume()
        except self._neo4j.exceptions.ClientError as exc:
            # An equivalent index under another name (made by hand) serves just as well.
            if "EquivalentSchemaRuleAlreadyExists" not in (exc.code or ""):
                raise

    def _read_indexes(self, session: neo4j.Session) -> None:
        """Learn the dimension of every vector index on the server, and which of them
        are still being built (a search then blocks until the index is ONLINE, for as
        long as the build takes, or fails)."""
        names = {cypher.vector_index_name(*key): key for key in cypher.CREATE_VECTOR_INDEX}
        dims: dict[VectorKey, int] = {}
        populating: set[VectorKey] = set()
        for record in session.run(cypher.SHOW_VECTOR_INDEXES):
            key = names.get(record["name"])
            if key is not None and record["dims"] is not None:
                dims[key] = int(record["dims"])
                if record["state"] != "ONLINE":
                    populating.add(key)
                if record["state"] == "FAILED" and record["name"] not in self._failed_told:
                    # Never ONLINE: every search would scan all vectors, silently slower.
                    self._failed_told.add(record["name"])
                    _LOG.warning(
                        "Neo4j vector index %s failed to build; searches scan every vector "
                        "until it is rebuilt: call Neo4jStore.reindex_vectors()",
                        record["name"],
                    )
        self._dims = dims
        self._populating = frozenset(populating)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._driver.close()

    def delete_all(self) -> None:
        """Remove every gmem node, edge and vector index in the database (a test helper).

        Tests call it between cases so that each starts from an empty store whose vector
        dimensions are not yet fixed; old-layout indexes go too, so that a test database
        an older version left is emptied rather than refused. Other handles on the same
        database keep their own cached dimensions; reopen them after calling this.
        """
        self._ensure_open()

        def work() -> None:
            with self._session() as session:
                session.run(cypher.DELETE_ALL).consume()
                for statement in (
                    *cypher.DROP_VECTOR_INDEX.values(),
                    *cypher.DROP_OLD_VECTOR_INDEX.values(),
                    cypher.FINISH_UPGRADE,
                ):
                    session.run(statement).consume()
            self._dims = {}
            self._populating = frozenset()

        self._call(work)

    def reindex_vectors(self) -> None:
        """Rebuild every vector index from the stored vectors, after a bulk import.

        Neo4j's HNSW indexes are Lucene segments, one more per committed batch until
        Lucene merges them, and a search visits every segment, so an index written in many
        small commits searches much slower than the same index rebuilt in one pass
        (docs/benchmarks.md, "Neo4j vs the embedded store", has the figures). Searches that
        run while an index is rebuilt recreate it themselves, so the store stays usable.
        """
        self._ensure_open()

        def work() -> None:
            with self._session() as session:
                for key in self._dims:
                    session.run(cypher.DROP_VECTOR_INDEX[key]).consume()
            self._create_vector_indexes(dict(self._dims))

        self._call(work)

    # ---- the one entry point ---------------------------------------------------------
    def _transact(self, ops: list[Op], work: Callable[[Runner], list[Any]]) -> list[Any]:
        self._ensure_open()
        state = self._prepare(ops)
        writes = any(isinstance(op, WRITE_OPS) for op in ops)

        def in_transaction(tx: neo4j.ManagedTransaction) -> list[Any]:
            state.wrote = False  # the driver may run this again after a transient error
            return work(lambda op: programs.drive(tx, programs.program(op, state)))

        def read(session: neo4j.Session) -> list[Any]:
            state.prefetched.clear()  # a retry asks again
            state.begun.clear()
            if (ahead := programs.prefetch_reads(ops, state)) is not None:
                programs.drive(session, ahead)
            begun = state.begun
            return work(
                lambda op: programs.drive(
                    session, begun.pop(id(op)) if id(op) in begun else programs.program(op, state)
                )
            )

        def run() -> list[Any]:
            if not writes:
                return self._read(read)
            with self._session() as session:
                return session.execute_write(in_transaction)

        try:
            result: list[Any] = self._call(run)
        except StoreError as exc:
            if not _lost_vector_index(exc):
                raise
            self._call(self._restore_vector_indexes)
            result = self._call(run)
        return result

    def _read(self, work: Callable[[neo4j.Session], list[Any]]) -> list[Any]:
        """``work`` with each statement in its own auto-commit read transaction.

        An explicit transaction costs two round trips more than its statements (the
        driver waits for BEGIN's answer before the first RUN, then for COMMIT's), and a
        recall is six read batches of one or two statements each, so on a loaded machine
        those waits were most of it. Nothing is lost for reads: Neo4j reads are
        read-committed inside a transaction too, so separate statements see no less
        consistent a graph; the session's bookmarks still order them after this handle's
        writes, and its read access mode still sends them to secondaries on a cluster.
        Transient errors are retried as the driver retries a managed transaction: the
        whole batch again, with backoff, for at most ``retry_s`` seconds.
        """
        errors = self._neo4j.exceptions
        deadline = time.monotonic() + self._retry_s
        delay = 0.05
        while True:
            try:
                with self._session(read=True) as session:
                    return work(session)
            except (errors.Neo4jError, errors.DriverError) as exc:
                if not exc.is_retryable() or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

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
        if isinstance(exc, errors.AuthError) and self._no_password:
            return StoreUnavailableError(
                f"{where} needs a password for user {self.user!r}: set GMEM_NEO4J_PASSWORD "
                "or put it in the URL (neo4j://user:password@host)"
            )
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
    def _prepare(self, ops: Sequence[Op]) -> BatchState:
        """Check ids and vector dimensions, and create the vector indexes a batch needs."""
        pending: dict[VectorKey, int] = {}
        self._learn_searched_indexes(ops)

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
                            raise refusals.wrong_dimension(f"vector of node {node.id}", vec, dim)
            elif isinstance(op, VectorSearch):
                dim = expected((NodeKind(op.kind), op.field))
                vector = np.asarray(op.vector, dtype=np.float32)
                if dim is not None and vector.shape != (dim,):
                    raise refusals.wrong_dimension("query vector", vector, dim)
        if pending:
            self._call(lambda: self._create_vector_indexes(pending))
        return BatchState(
            dict(self._dims), self._oversample, self._next_seq, populating=self._populating
        )

    def _create_vector_indexes(self, wanted: dict[VectorKey, int]) -> None:
        with self._session() as session:
            for key, dims in wanted.items():
                self._schema_statement(session, cypher.CREATE_VECTOR_INDEX[key], dims=dims)
                name = cypher.vector_index_name(*key)
                session.run(cypher.AWAIT_INDEX, {"name": name, "timeout": 300}).consume()
            self._read_indexes(session)
        for key, dims in wanted.items():
            # Another client may have created the index first, with its own dimension.
            if self._dims.get(key, dims) != dims:
                raise EmbeddingDimensionError(
                    f"{key[0].value}.{key[1]} vectors have dimension {self._dims[key]} in "
                    f"this store, not {dims}; use the embedder that wrote it, or a new database"
                )

    def _learn_searched_indexes(self, ops: Sequence[Op]) -> None:
        """Look for vector indexes a search needs that this handle has not seen yet, or
        has seen still being built.

        Another process may have written the first vectors of a label since this one
        connected: trusting what it saw at connect, this handle would go on finding
        nothing. One look at the server per batch, only while such an index is unknown
        or not yet ONLINE.
        """
        searched = {(NodeKind(op.kind), op.field) for op in ops if isinstance(op, VectorSearch)}
        if searched <= self._dims.keys() and not searched & self._populating:
            return

        def refresh() -> None:
            with self._session() as session:
                self._read_indexes(session)

        self._call(refresh)

    def _restore_vector_indexes(self) -> None:
        """Recreate vector indexes this handle knew but the server lost (another handle's
        ``delete_all``, an index dropped by hand), with the dimensions they had."""
        known = dict(self._dims)
        with self._session() as session:
            self._read_indexes(session)
        missing = {key: dim for key, dim in known.items() if key not in self._dims}
        if missing:
            self._create_vector_indexes(missing)

    def _next_seq(self, count: int) -> int:
        """Start of a block of insertion numbers: increasing in this process, time-based."""
        with self._lock:
            start = max(self._seq + 1, time.time_ns())
            self._seq = start + count
            return start


def _lost_vector_index(error: Exception) -> bool:
    return isinstance(error, StoreError) and "no such vector schema index" in str(error)


def _one_line(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return " ".join(redact(str(message)).split())[:300]
