"""The default backend: networkx in memory for traversal, SQLite (WAL) on disk.

SQLite is the source of truth; the networkx graph and the vector matrices are mirrors
rebuilt on open. A batch writes SQLite inside one ``BEGIN IMMEDIATE`` transaction and
updates the mirrors as it goes, recording an undo step for each change, so a failure
anywhere rolls back both. Another process committing to the same file is noticed through
``PRAGMA data_version`` and the mirrors are reloaded before the next batch.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import networkx as nx
import numpy as np
import numpy.typing as npt

from graph_store import ops, refusals
from graph_store.base import GraphStore
from graph_store.errors import (
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from graph_store.model import (
    Edge,
    EdgeKind,
    Node,
    NodeKind,
    node_from_props,
)
from graph_store.programs import Runner
from graph_store.vectors import VectorIndex

APPLICATION_ID = 0x474D454D  # "GMEM": marks the file as a gmem store
SCHEMA_VERSION = 1
_FIELDS: tuple[ops.VectorField, ...] = ("embedding", "graph_embedding")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    props TEXT NOT NULL,
    embedding BLOB,
    graph_embedding BLOB
);
CREATE INDEX IF NOT EXISTS nodes_ns_kind ON nodes (namespace, kind);
CREATE INDEX IF NOT EXISTS nodes_kind ON nodes (kind);
CREATE TABLE IF NOT EXISTS edges (
    kind TEXT NOT NULL,
    src TEXT NOT NULL,
    dst TEXT NOT NULL,
    props TEXT NOT NULL,
    PRIMARY KEY (kind, src, dst)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edges_src ON edges (src);
CREATE INDEX IF NOT EXISTS edges_dst ON edges (dst);
"""

Undo = Callable[[], None]

# Edges inside one trace (NEXT, REPLIES_TO) are most of a store's edges and are only read
# one task at a time, never traversed across tasks: they stay in SQLite and are read from
# there, which keeps reopening fast and the in-memory graph small.
_TRACE_ONLY = (EdgeKind.NEXT.value, EdgeKind.REPLIES_TO.value)
_TRACE_ONLY_SQL = ",".join(f"'{k}'" for k in _TRACE_ONLY)


def _blob(vec: npt.NDArray[np.float32] | None) -> bytes | None:
    return None if vec is None else np.ascontiguousarray(vec, dtype=np.float32).tobytes()


def _vec(blob: bytes | None) -> npt.NDArray[np.float32] | None:
    return None if blob is None else np.frombuffer(blob, dtype=np.float32).copy()


class EmbeddedStore(GraphStore):
    """A single-file store (or ``":memory:"``) for one process at a time to write.

    ``durability="full"`` fsyncs every commit (survives power loss); ``"normal"`` is
    faster and still survives a killed process, which is what WAL guarantees.
    """

    def __init__(
        self,
        path: str | Path = ":memory:",
        durability: Literal["full", "normal"] = "full",
    ) -> None:
        self.path = str(path)
        self.url = "sqlite://:memory:" if self.path == ":memory:" else f"sqlite:///{self.path}"
        self._lock = threading.RLock()
        self._closed = False
        if self.path != ":memory:":
            parent = Path(self.path).expanduser().resolve().parent
            if not parent.is_dir():
                raise StoreUnavailableError(f"cannot create store {self.path}: no such directory")
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._open(durability)
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise StoreCorruptError(
                f"{self.path} is not a readable gmem store ({exc}); restore a backup or "
                "choose another path"
            ) from None
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._load()  # one snapshot: nodes and edges from the same commit
            finally:
                self._db.execute("COMMIT")

    # ---- lifecycle -------------------------------------------------------------------
    def _open(self, durability: str) -> None:
        db = self._db
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables):
            raise StoreCorruptError(
                f"{self.path} is an SQLite file of another application, not a gmem store"
            )
        if self.path != ":memory:":
            db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
        db.execute("PRAGMA busy_timeout=10000")
        # Forgetting is erasure: deleted rows are overwritten, not left in free pages.
        db.execute("PRAGMA secure_delete=ON")
        if app_id == 0:
            # One script, one transaction: a crash leaves either no schema or all of it.
            db.executescript(
                f"BEGIN IMMEDIATE;{_SCHEMA}"
                f"PRAGMA application_id={APPLICATION_ID};"
                f"INSERT OR REPLACE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');"
                "COMMIT;"
            )
        else:
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {check}")
            version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if version is None or int(version[0]) > SCHEMA_VERSION:
                raise StoreCorruptError(
                    f"{self.path} has an unknown schema version; upgrade gmem to open it"
                )

    def _load(self) -> None:
        """Rebuild the in-memory mirrors from SQLite."""
        graph = nx.MultiDiGraph()
        indexes: dict[tuple[str, str], VectorIndex] = {}
        dims = dict(self._db.execute("SELECT key, value FROM meta WHERE key LIKE 'dim:%'"))
        for key, value in dims.items():
            _, kind, field = key.split(":")
            indexes[(kind, field)] = VectorIndex(int(value))
        rows = self._db.execute(
            "SELECT id, kind, namespace, embedding, graph_embedding FROM nodes ORDER BY seq"
        )
        for node_id, kind, namespace, emb, gemb in rows:
            graph.add_node(node_id, kind=kind, ns=namespace)
            for field, blob in (("embedding", emb), ("graph_embedding", gemb)):
                if blob is not None:
                    vec = _vec(blob)
                    assert vec is not None
                    indexes[(kind, field)].upsert(node_id, vec, namespace)
        rows = self._db.execute(
            f"SELECT kind, src, dst, props FROM edges WHERE kind NOT IN ({_TRACE_ONLY_SQL})"
        )
        for kind, src, dst, props in rows:
            graph.add_edge(src, dst, key=kind, props=json.loads(props))
        self._graph = graph
        self._indexes = indexes
        self._data_version = self._db.execute("PRAGMA data_version").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._close_quietly()

    def _close_quietly(self) -> None:
        with contextlib.suppress(Exception):  # the connection may never have opened
            self._db.close()

    # ---- the one entry point ---------------------------------------------------------
    def _transact(self, batch: list[ops.Op], work: Callable[[Runner], list[Any]]) -> list[Any]:
        with self._lock:
            if self._closed:
                raise StoreUnavailableError("the store is closed; open it again")
            undo: list[Undo] = []
            has_writes = any(isinstance(op, ops.WRITE_OPS) for op in batch)
            try:
                # Every batch is one SQLite transaction: a write batch holds the write lock
                # from before it checks for other processes' commits until it commits (so
                # none can slip in between), and a read batch reads one snapshot, mirrors
                # and rows alike, however many statements it runs.
                self._db.execute("BEGIN IMMEDIATE" if has_writes else "BEGIN")
                self._refresh_if_changed()
                results = work(lambda op: self._run(op, undo))
                # Read before COMMIT: our own commit leaves data_version as it is, and a
                # commit by another process right after ours must still count as news.
                version = self._db.execute("PRAGMA data_version").fetchone()[0]
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                for step in reversed(undo):
                    step()
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"store write failed and was rolled back: {exc}") from exc
                raise
            self._data_version = version
            if has_writes:
                for index in self._indexes.values():
                    index.compact()
            erased = any(isinstance(r, ops.Removed) and r.nodes for r in results)
            if erased and self.path != ":memory:":
                # The write-ahead log still holds the deleted rows' old pages; copying it
                # into the (securely deleted) file and truncating it finishes the erasure.
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return results

    def _refresh_if_changed(self) -> None:
        """Reload the mirrors if another connection committed since they were built.

        Called inside the batch's transaction, after a first read has pinned its snapshot,
        so the reload sees exactly the rows the batch then reads.
        """
        self._db.execute("SELECT COUNT(*) FROM meta").fetchone()  # pins the read snapshot
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._load()

    def _run(self, op: ops.Op, undo: list[Undo]) -> Any:
        if isinstance(op, ops.WRITE_OPS):
            return self._write(op, undo)
        match op:
            case ops.GetNodes(ids, with_vectors):
                return self._get_nodes(ids, with_vectors)
            case ops.ListNodes(kind, namespace, with_vectors, limit, where, offset):
                return self._list_nodes(kind, namespace, with_vectors, limit, where, offset)
            case ops.GetEdges(ids, kinds, direction):
                return list(self._edges_of(ids, kinds, direction))
            case ops.Expand(ids, kinds, direction, exclude):
                return self._expand(ids, kinds, direction, exclude)
            case ops.VectorSearch(kind, vector, k, namespace, field, exclude_ids):
                return self._vector_search(kind, vector, k, namespace, field, exclude_ids)
            case ops.Count(namespace):
                return self._count(namespace)
            case ops.ListNamespaces():
                rows = self._db.execute("SELECT DISTINCT namespace FROM nodes ORDER BY namespace")
                return [r[0] for r in rows]
        raise refusals.unknown_operation(op)

    def _write(self, op: ops.Op, undo: list[Undo]) -> Any:
        match op:
            case ops.ExpectNodes(expected):
                return self._expect(expected)
            case ops.PutNodes(nodes):
                return self._put_nodes(nodes, undo)
            case ops.PutEdges(edges):
                return self._put_edges(edges, undo)
            case ops.DeleteEdges(keys):
                return self._delete_edges(keys, undo)
            case ops.DeleteNodes(ids):
                return self._remove_nodes(ids, undo)
            case ops.DeleteNamespace(namespace):
                return self._delete_namespace(namespace, undo)
        raise refusals.unknown_operation(op)

    # ---- writes ----------------------------------------------------------------------
    def _expect(self, expected: Sequence[tuple[NodeKind, str, datetime | None]]) -> None:
        """Compare under the write lock (BEGIN IMMEDIATE), which no other writer, thread or
        process, can hold until this batch commits: the check and the writes after it are
        one atomic step."""
        wanted = {node_id: at for _, node_id, at in expected}
        found: dict[str, datetime | None] = {}
        ids = list(wanted)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT id, json_extract(props, '$.updated_at') FROM nodes WHERE id IN ({marks})",
                chunk,
            )
            for node_id, stamp in rows:
                found[node_id] = None if stamp is None else datetime.fromisoformat(stamp)
        for node_id, at in wanted.items():
            present = node_id in found
            if (at is None and present) or (at is not None and found.get(node_id) != at):
                raise refusals.changed_by_another_writer(node_id)

    def _index_for(
        self, kind: str, field: ops.VectorField, vec: npt.NDArray[np.float32], undo: list[Undo]
    ) -> VectorIndex:
        index = self._indexes.get((kind, field))
        if index is None:
            index = self._indexes[(kind, field)] = VectorIndex(int(vec.shape[0]))
            self._db.execute(
                "INSERT INTO meta VALUES (?, ?)", (f"dim:{kind}:{field}", str(vec.shape[0]))
            )

            def drop() -> None:
                self._indexes.pop((kind, field), None)

            undo.append(drop)
        return index

    def _put_nodes(self, nodes: Sequence[Node], undo: list[Undo]) -> None:
        rows = []
        for node in nodes:
            kind = node.kind.value
            for field in _FIELDS:
                vec = getattr(node, field)
                index = self._indexes.get((kind, field))
                if vec is not None:
                    index = self._index_for(kind, field, vec, undo)
                    undo.append(index.upsert(node.id, vec, node.namespace))
                elif index is not None:
                    undo.append(index.remove(node.id))
            old = dict(self._graph.nodes[node.id]) if node.id in self._graph else None
            if old is not None and old["kind"] != kind:
                raise refusals.kind_clash(node.id, old["kind"], kind)
            self._graph.add_node(node.id, kind=kind, ns=node.namespace)
            undo.append(self._node_restorer(node.id, old))
            rows.append(
                (
                    node.id,
                    kind,
                    node.namespace,
                    json.dumps(node.props(), separators=(",", ":")),
                    _blob(node.embedding),
                    _blob(node.graph_embedding),
                )
            )
        self._db.executemany(
            "INSERT INTO nodes (id, kind, namespace, props, embedding, graph_embedding) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET namespace=excluded.namespace,"
            " props=excluded.props, embedding=excluded.embedding,"
            " graph_embedding=excluded.graph_embedding",
            rows,
        )

    def _node_restorer(self, node_id: str, old: dict[str, Any] | None) -> Undo:
        def restore() -> None:
            if old is None:
                if node_id in self._graph:
                    self._graph.remove_node(node_id)
            else:
                self._graph.add_node(node_id, **old)

        return restore

    def _put_edges(self, edges: Sequence[Edge], undo: list[Undo]) -> None:
        rows = []
        for edge in edges:
            for end in (edge.src, edge.dst):
                if end not in self._graph:
                    raise refusals.missing_endpoint(edge.kind.value, end)
            kind = edge.kind.value
            if kind not in _TRACE_ONLY:
                old = self._graph.get_edge_data(edge.src, edge.dst, key=kind)
                self._graph.add_edge(edge.src, edge.dst, key=kind, props=dict(edge.props))
                undo.append(self._edge_restorer(edge.src, edge.dst, kind, old))
            rows.append((kind, edge.src, edge.dst, json.dumps(edge.props, separators=(",", ":"))))
        self._db.executemany("INSERT OR REPLACE INTO edges VALUES (?, ?, ?, ?)", rows)

    def _edge_restorer(self, src: str, dst: str, kind: str, old: dict[str, Any] | None) -> Undo:
        def restore() -> None:
            if old is None:
                if self._graph.has_edge(src, dst, key=kind):
                    self._graph.remove_edge(src, dst, key=kind)
            else:
                self._graph.add_edge(src, dst, key=kind, **old)

        return restore

    def _delete_edges(self, keys: Sequence[tuple[EdgeKind, str, str]], undo: list[Undo]) -> int:
        removed = 0
        for kind_, src, dst in keys:
            kind = EdgeKind(kind_).value
            if kind in _TRACE_ONLY:
                cur = self._db.execute(
                    "DELETE FROM edges WHERE kind=? AND src=? AND dst=?", (kind, src, dst)
                )
                removed += cur.rowcount
                continue
            old = self._graph.get_edge_data(src, dst, key=kind)
            if old is None:
                continue
            self._graph.remove_edge(src, dst, key=kind)
            undo.append(self._edge_restorer(src, dst, kind, old))
            self._db.execute("DELETE FROM edges WHERE kind=? AND src=? AND dst=?", (kind, src, dst))
            removed += 1
        return removed

    def _remove_nodes(self, ids: Iterable[str], undo: list[Undo]) -> ops.Removed:
        ids = [i for i in dict.fromkeys(ids) if i in self._graph]
        edge_count = 0
        for node_id in ids:
            edges = [
                (s, d, k, dict(data))
                for s, d, k, data in (
                    *self._graph.out_edges(node_id, keys=True, data=True),
                    *self._graph.in_edges(node_id, keys=True, data=True),
                )
            ]
            attrs = dict(self._graph.nodes[node_id])
            for (kind, _field), index in self._indexes.items():
                if kind == attrs["kind"]:
                    undo.append(index.remove(node_id))
            self._graph.remove_node(node_id)
            # An edge between two removed nodes is gone with the first, so no double count.
            edge_count += len({(s, d, k) for s, d, k, _ in edges})
            undo.append(self._node_readder(node_id, attrs, edges))
        # The doomed ids go into a temporary table (rolled back with the transaction), so
        # trace edges between two of them are counted once however many ids there are.
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS doomed (id TEXT PRIMARY KEY)")
        self._db.execute("DELETE FROM doomed")
        self._db.executemany("INSERT OR IGNORE INTO doomed VALUES (?)", [(i,) for i in ids])
        edge_count += self._db.execute(
            f"SELECT COUNT(*) FROM edges WHERE kind IN ({_TRACE_ONLY_SQL}) AND "
            "(src IN (SELECT id FROM doomed) OR dst IN (SELECT id FROM doomed))"
        ).fetchone()[0]
        self._db.execute(
            "DELETE FROM edges WHERE src IN (SELECT id FROM doomed) "
            "OR dst IN (SELECT id FROM doomed)"
        )
        self._db.execute("DELETE FROM nodes WHERE id IN (SELECT id FROM doomed)")
        return ops.Removed(nodes=len(ids), edges=edge_count)

    def _node_readder(
        self, node_id: str, attrs: dict[str, Any], edges: list[tuple[str, str, str, dict[str, Any]]]
    ) -> Undo:
        def readd() -> None:
            self._graph.add_node(node_id, **attrs)
            for s, d, k, data in edges:
                if s in self._graph and d in self._graph:
                    self._graph.add_edge(s, d, key=k, **data)

        return readd

    def _delete_namespace(self, namespace: str, undo: list[Undo]) -> ops.Removed:
        ids = [n for n, ns in self._graph.nodes(data="ns") if ns == namespace]
        return self._remove_nodes(ids, undo)

    # ---- reads -----------------------------------------------------------------------
    def _rows_to_nodes(self, rows: Iterable[tuple[Any, ...]], with_vectors: bool) -> list[Node]:
        out = []
        for kind, props, emb, gemb in rows:
            if with_vectors:
                out.append(node_from_props(kind, json.loads(props), _vec(emb), _vec(gemb)))
            else:
                out.append(node_from_props(kind, json.loads(props)))
        return out

    def _get_nodes(self, ids: Sequence[str], with_vectors: bool) -> list[Node | None]:
        cols = (
            "id, kind, props, embedding, graph_embedding"
            if with_vectors
            else ("id, kind, props, NULL, NULL")
        )
        found: dict[str, Node] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT {cols} FROM nodes WHERE id IN ({marks})", chunk)
            for node_id, kind, props, emb, gemb in rows:
                found[node_id] = self._rows_to_nodes([(kind, props, emb, gemb)], with_vectors)[0]
        return [found.get(i) for i in ids]

    def _list_nodes(
        self,
        kind: NodeKind,
        namespace: str | None,
        with_vectors: bool,
        limit: int | None,
        where: Sequence[ops.Where] = (),
        offset: int = 0,
    ) -> list[Node]:
        cols = (
            "kind, props, embedding, graph_embedding"
            if with_vectors
            else ("kind, props, NULL, NULL")
        )
        sql = f"SELECT {cols} FROM nodes WHERE kind=?"
        params: list[Any] = [NodeKind(kind).value]
        if namespace is not None:
            sql += " AND namespace=?"
            params.append(namespace)
        sql += " ORDER BY seq"
        if not where:
            if limit is not None or offset:
                sql += " LIMIT ? OFFSET ?"
                params += [-1 if limit is None else int(limit), int(offset)]
            return self._rows_to_nodes(self._db.execute(sql, params), with_vectors)
        # Conditions are decided on the decoded JSON, before a node is built (building is
        # most of a listing's cost), so a page of a large namespace builds only its page.
        out: list[Node] = []
        skip = offset
        for kind_, props, emb, gemb in self._db.execute(sql, params):
            data = json.loads(props)
            if not ops.passes(where, data):
                continue
            if skip:
                skip -= 1
                continue
            if limit is not None and len(out) >= limit:
                break
            if with_vectors:
                out.append(node_from_props(kind_, data, _vec(emb), _vec(gemb)))
            else:
                out.append(node_from_props(kind_, data))
        return out

    def _edge(self, src: str, dst: str, kind: str, data: dict[str, Any]) -> Edge:
        return Edge.model_construct(kind=EdgeKind(kind), src=src, dst=dst, props=data["props"])

    def _edges_of(
        self, ids: Sequence[str], kinds: Sequence[EdgeKind] | None, direction: str
    ) -> Iterable[Edge]:
        wanted = None if kinds is None else {EdgeKind(k).value for k in kinds}
        seen: set[tuple[str, str, str]] = set()
        for node_id in ids:
            if node_id not in self._graph:
                continue
            groups = []
            if direction in ("out", "both"):
                groups.append(self._graph.out_edges(node_id, keys=True, data=True))
            if direction in ("in", "both"):
                groups.append(self._graph.in_edges(node_id, keys=True, data=True))
            for group in groups:
                for src, dst, kind, data in group:
                    if (wanted is None or kind in wanted) and (kind, src, dst) not in seen:
                        seen.add((kind, src, dst))
                        yield self._edge(src, dst, kind, data)
            trace_kinds = [k for k in _TRACE_ONLY if wanted is None or k in wanted]
            if not trace_kinds:
                continue
            marks = ",".join("?" * len(trace_kinds))
            sides = [s for s, d in (("src", "out"), ("dst", "in")) if direction in (d, "both")]
            for side in sides:
                rows = self._db.execute(
                    f"SELECT kind, src, dst, props FROM edges WHERE {side}=? AND kind IN ({marks})",
                    (node_id, *trace_kinds),
                )
                for kind, src, dst, props in rows:
                    if (kind, src, dst) not in seen:
                        seen.add((kind, src, dst))
                        yield Edge.model_construct(
                            kind=EdgeKind(kind), src=src, dst=dst, props=json.loads(props)
                        )

    def _expand(
        self,
        ids: Sequence[str],
        kinds: Sequence[EdgeKind] | None,
        direction: str,
        exclude: frozenset[str],
    ) -> list[ops.Link]:
        links = []
        for node_id in dict.fromkeys(ids):
            for edge in self._edges_of([node_id], kinds, direction):
                outgoing = edge.src == node_id
                other = edge.dst if outgoing else edge.src
                if other not in exclude:
                    kind = NodeKind(self._graph.nodes[other]["kind"])
                    links.append(ops.Link(node_id, other, kind, outgoing, edge))
        return links

    def _vector_search(
        self,
        kind: NodeKind,
        vector: npt.NDArray[np.float32],
        k: int,
        namespace: str | None,
        field: ops.VectorField,
        exclude: frozenset[str],
    ) -> list[ops.Hit]:
        index = self._indexes.get((NodeKind(kind).value, field))
        if index is None:
            return []
        return index.search(np.asarray(vector, dtype=np.float32), k, namespace, exclude)

    def _count(self, namespace: str | None) -> ops.Counts:
        if namespace is None:
            nodes = self._db.execute("SELECT kind, COUNT(*) FROM nodes GROUP BY kind")
            edges = self._db.execute("SELECT kind, COUNT(*) FROM edges GROUP BY kind")
        else:
            nodes = self._db.execute(
                "SELECT kind, COUNT(*) FROM nodes WHERE namespace=? GROUP BY kind", (namespace,)
            )
            edges = self._db.execute(
                "SELECT e.kind, COUNT(*) FROM edges e JOIN nodes n ON n.id = e.src "
                "WHERE n.namespace=? GROUP BY e.kind",
                (namespace,),
            )
        return ops.Counts(nodes=dict(nodes.fetchall()), edges=dict(edges.fetchall()))
