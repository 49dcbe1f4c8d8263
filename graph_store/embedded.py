"""The default backend: networkx in memory for traversal, SQLite (WAL) on disk.

SQLite is the source of truth. Two mirrors sit beside it: a networkx graph of the query
and insight tiers (their nodes and the edges between them), which recall traverses, and
one vector matrix per (node kind, field), read in one pass the first time it is searched.
Utterances, their trace edges and adapter items are never mirrored: they are most of a
store and are read one task at a time, so they are read from SQLite when asked for, and
reopening a store costs what its query and insight tiers cost, not its traces.

A batch writes SQLite inside one ``BEGIN IMMEDIATE`` transaction and updates the mirrors
as it goes, recording an undo step for each change, so a failure anywhere rolls back
both. Triggers in the file append every change that touches a mirror to a change log in
the same transaction; another process's commit is noticed through ``PRAGMA data_version``
and the mirrors replay the log since the last entry they saw, instead of reloading.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import networkx as nx
import numpy as np
import numpy.typing as npt

from graph_store import ann, ops, refusals
from graph_store.ann import ApproximateIndex
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
_VECTORS: set[str] = {"embedding", "graph_embedding"}

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

# The change log the mirrors follow other processes by. Triggers write it, so every
# writer of the file logs, whatever it is; rows that no mirror holds (an utterance
# without vectors, a trace edge) are not logged, which keeps bulk writes cheap.
_MIRRORED_SQL = "('Query','Insight')"
_TRACE_SQL = "('HAS_TRACE','NEXT','REPLIES_TO')"
_CHANGE_LOG = f"""
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    node TEXT,
    kind TEXT,
    src TEXT,
    dst TEXT
);
CREATE TRIGGER IF NOT EXISTS log_node_insert AFTER INSERT ON nodes
WHEN NEW.kind IN {_MIRRORED_SQL} OR NEW.embedding IS NOT NULL
    OR NEW.graph_embedding IS NOT NULL
BEGIN INSERT INTO changes (node) VALUES (NEW.id); END;
CREATE TRIGGER IF NOT EXISTS log_node_update AFTER UPDATE ON nodes
WHEN NEW.kind IN {_MIRRORED_SQL} OR NEW.embedding IS NOT NULL
    OR NEW.graph_embedding IS NOT NULL OR OLD.embedding IS NOT NULL
    OR OLD.graph_embedding IS NOT NULL
BEGIN INSERT INTO changes (node) VALUES (NEW.id); END;
CREATE TRIGGER IF NOT EXISTS log_node_delete AFTER DELETE ON nodes
WHEN OLD.kind IN {_MIRRORED_SQL} OR OLD.embedding IS NOT NULL
    OR OLD.graph_embedding IS NOT NULL
BEGIN INSERT INTO changes (node) VALUES (OLD.id); END;
CREATE TRIGGER IF NOT EXISTS log_edge_insert AFTER INSERT ON edges
WHEN NEW.kind NOT IN {_TRACE_SQL}
BEGIN INSERT INTO changes (kind, src, dst) VALUES (NEW.kind, NEW.src, NEW.dst); END;
CREATE TRIGGER IF NOT EXISTS log_edge_update AFTER UPDATE ON edges
WHEN NEW.kind NOT IN {_TRACE_SQL}
BEGIN INSERT INTO changes (kind, src, dst) VALUES (NEW.kind, NEW.src, NEW.dst); END;
CREATE TRIGGER IF NOT EXISTS log_edge_delete AFTER DELETE ON edges
WHEN OLD.kind NOT IN {_TRACE_SQL}
BEGIN INSERT INTO changes (kind, src, dst) VALUES (OLD.kind, OLD.src, OLD.dst); END;
"""

# The mirrored nodes' ids, kinds and namespaces, which reopening reads: without it each
# comes from its node row, one page read per query (the rows sit among their traces'
# utterance rows). Partial, so writing an utterance does not touch it.
_MIRRORED_INDEX = f"""
CREATE INDEX IF NOT EXISTS nodes_mirrored ON nodes (kind, id, namespace)
WHERE kind IN {_MIRRORED_SQL};
"""

#: Node kinds the networkx mirror holds; every other kind is read from SQLite.
_MIRRORED = frozenset({NodeKind.QUERY.value, NodeKind.INSIGHT.value})
#: Change-log entries kept; a process further behind than this reloads its mirrors whole.
CHANGE_LOG_KEEP = 50_000
_CHUNK = 500
#: Files up to this size are checked page by page on open; larger ones by length only.
QUICK_CHECK_MAX_BYTES = 64 * 2**20
#: SQLite page cache per connection (KiB); the default 2 MiB thrashes past a few GiB.
PAGE_CACHE_KIB = 65_536
#: Vectors of one (kind, field) from which search goes through an approximate index (with
#: the ``ann`` extra installed); below it, exact search.
ANN_MIN_ROWS = 20_000
#: Changes an approximate index takes in before it is saved again (besides on close).
ANN_SAVE_EVERY = 2_000
#: Candidates an approximate search may widen to (for a namespace holding a small share
#: of the vectors, or many excluded ids) before it searches that namespace exactly.
ANN_MAX_CANDIDATES = 2_048

Undo = Callable[[], None]

# Edge kinds that stay in SQLite, whatever they connect. Trace edges (a query to its
# utterances, utterances to each other) are most of a store's edges and are only read one
# task at a time. Similarity edges are a few per query (several hundred thousand at a
# hundred thousand tasks, most of a reopen if mirrored) and recall reads those of a
# handful of queries, each one index seek, so they are read where they are needed.
_UNMIRRORED_EDGES = (
    EdgeKind.HAS_TRACE.value,
    EdgeKind.NEXT.value,
    EdgeKind.REPLIES_TO.value,
    EdgeKind.SIMILAR_TO.value,
)


def _blob(vec: npt.NDArray[np.float32] | None) -> bytes | None:
    return None if vec is None else np.ascontiguousarray(vec, dtype=np.float32).tobytes()


def _vec(blob: bytes | None) -> npt.NDArray[np.float32] | None:
    return None if blob is None else np.frombuffer(blob, dtype=np.float32).copy()


class EmbeddedStore(GraphStore):
    """A single-file store (or ``":memory:"``) for one process at a time to write.

    ``durability="full"`` fsyncs every commit (survives power loss); ``"normal"`` is
    faster and still survives a killed process, which is what WAL guarantees.
    ``change_log_keep`` is how many change-log entries stay in the file for other
    processes to catch up from; one further behind reloads its mirrors whole.
    ``ann_min_rows``: from this many vectors of one node kind on, search goes through an
    approximate index saved beside the file (``<path>.ann/``), if the ``ann`` extra is
    installed; ``None`` searches exactly at any size.
    """

    def __init__(
        self,
        path: str | Path = ":memory:",
        durability: Literal["full", "normal"] = "full",
        change_log_keep: int = CHANGE_LOG_KEEP,
        ann_min_rows: int | None = ANN_MIN_ROWS,
    ) -> None:
        self.path = str(path)
        self.url = "sqlite://:memory:" if self.path == ":memory:" else f"sqlite:///{self.path}"
        self._lock = threading.RLock()
        self._written: dict[str, str] = {}
        self._closed = False
        self._keep = max(1, int(change_log_keep))
        use_ann = ann_min_rows is not None and ann.available() and self.path != ":memory:"
        self._ann_min = max(1, int(ann_min_rows)) if use_ann and ann_min_rows else None
        self._ann_dir = Path(f"{self.path}.ann")
        self._ann: dict[tuple[str, str], ApproximateIndex] = {}
        self._writing = False
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
        # Ids are random, so writes land all over the indexes: a page cache that holds
        # their upper levels and hot leaves saves a read per insert once the file is large.
        db.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
        # Forgetting is erasure: deleted rows are overwritten, not left in free pages.
        db.execute("PRAGMA secure_delete=ON")
        # The change-log triggers make every insert keep a statement journal (the pages
        # it changes, so the statement alone can be undone); in memory rather than in a
        # temporary file that roughly halves the cost of writing an edge row.
        db.execute("PRAGMA temp_store=MEMORY")
        if app_id == 0:
            # One script, one transaction: a crash leaves either no schema or all of it.
            db.executescript(
                f"BEGIN IMMEDIATE;{_SCHEMA}{_MIRRORED_INDEX}{_CHANGE_LOG}"
                f"PRAGMA application_id={APPLICATION_ID};"
                f"INSERT OR REPLACE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');"
                f"INSERT OR IGNORE INTO meta VALUES ('store_id', '{uuid.uuid4().hex}');"
                "COMMIT;"
            )
        else:
            self._check_pages()
            version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if version is None or int(version[0]) > SCHEMA_VERSION:
                raise StoreCorruptError(
                    f"{self.path} has an unknown schema version; upgrade gmem to open it"
                )
            if "changes" not in tables:
                # A store written before the change log: add it (and its triggers), which
                # changes no row. Writers of any version log from then on.
                db.executescript(f"BEGIN IMMEDIATE;{_CHANGE_LOG}COMMIT;")
            indexes = {
                r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")
            }
            if "nodes_mirrored" not in indexes:
                # A store written before that index: build it once (a pass over the
                # nodes, seconds at a hundred thousand tasks), which changes no row.
                db.executescript(f"BEGIN IMMEDIATE;{_MIRRORED_INDEX}COMMIT;")
            if db.execute("SELECT 1 FROM meta WHERE key='store_id'").fetchone() is None:
                # What an approximate index file names as its store: a file restored over
                # this path, or another store's, is then never taken for its own.
                db.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)", (uuid.uuid4().hex,))
        self._store_id = str(
            db.execute("SELECT value FROM meta WHERE key='store_id'").fetchone()[0]
        )

    def _check_pages(self) -> None:
        """Refuse a damaged file before anything is read from it.

        ``quick_check`` reads every page, which at a few GiB would make reopening take
        longer than anything else; above :data:`QUICK_CHECK_MAX_BYTES` the file is only
        checked to be as long as its header says (a cut-off copy), and a page damaged in
        the middle is reported when it is read.
        """
        db = self._db
        size = 0 if self.path == ":memory:" else Path(self.path).stat().st_size
        if size <= QUICK_CHECK_MAX_BYTES:
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {check}")
            return
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        wal = Path(f"{self.path}-wal")
        logged = wal.stat().st_size if wal.exists() else 0
        if pages * page_size > size + logged:
            raise sqlite3.DatabaseError(
                f"the file is shorter than its {pages} pages: it was cut off"
            )

    def _load(self) -> None:
        """Rebuild the mirrors from SQLite: the query and insight tiers into networkx;
        vector matrices are dropped, to be read again when first searched."""
        graph = nx.MultiDiGraph()
        mirrored = self._db.execute(
            f"SELECT id, kind, namespace FROM nodes INDEXED BY nodes_mirrored "
            f"WHERE kind IN {_MIRRORED_SQL}"
        ).fetchall()
        # Filled as add_nodes_from fills them, minus its per-node checks (half its cost at
        # a hundred thousand queries): an attribute dict and two empty adjacency dicts.
        graph._node.update({node_id: {"kind": kind, "ns": ns} for node_id, kind, ns in mirrored})
        graph._succ.update({node_id: {} for node_id, _, _ in mirrored})
        graph._pred.update({node_id: {} for node_id, _, _ in mirrored})
        del mirrored
        split: set[str] = set()
        # Named kinds, not NOT IN: the primary key starts with the kind, so this reads
        # only the mirrored kinds' rows instead of scanning every trace edge.
        mirrored_kinds = [k.value for k in EdgeKind if k.value not in _UNMIRRORED_EDGES]
        marks = ",".join("?" * len(mirrored_kinds))
        rows = self._db.execute(
            f"SELECT kind, src, dst, props FROM edges WHERE kind IN ({marks})", mirrored_kinds
        )
        # Filled as MultiDiGraph.add_edge fills them (one key dict shared by the successor
        # and predecessor maps), without its per-edge checks.
        succ, pred = graph._succ, graph._pred
        for kind, src, dst, props in rows:
            out = succ.get(src)
            if out is None or dst not in succ:
                split.add(kind)
                continue
            keys = out.get(dst)
            if keys is None:
                keys = out[dst] = pred[dst][src] = {}
            keys[kind] = {"props": props}
        self._graph = graph
        # Edge kinds some edge of which has an end outside the mirror: edges of these
        # kinds (and trace edges) are also looked up in SQLite when a node's are read.
        self._split = split
        self._dims = self._read_dims()
        self._indexes: dict[tuple[str, str], VectorIndex] = {}
        self._seq = self._last_change()
        self._stale = False
        self._data_version = self._db.execute("PRAGMA data_version").fetchone()[0]

    def _read_dims(self) -> dict[tuple[str, str], int]:
        dims: dict[tuple[str, str], int] = {}
        for key, value in self._db.execute("SELECT key, value FROM meta WHERE key LIKE 'dim:%'"):
            _, kind, field = key.split(":")
            dims[(kind, field)] = int(value)
        return dims

    def _last_change(self) -> int:
        row = self._db.execute("SELECT MAX(seq) FROM changes").fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                for index in self._ann.values():
                    if index.unsaved:
                        index.save()
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
            # Kinds of the nodes this batch wrote, so that its edges to them need no
            # lookup in SQLite (a trace's utterances are not in the mirror).
            self._written = {}
            has_writes = any(isinstance(op, ops.WRITE_OPS) for op in batch)
            self._writing = has_writes
            try:
                # Every batch is one SQLite transaction: a write batch holds the write lock
                # from before it checks for other processes' commits until it commits (so
                # none can slip in between), and a read batch reads one snapshot, mirrors
                # and rows alike, however many statements it runs.
                self._db.execute("BEGIN IMMEDIATE" if has_writes else "BEGIN")
                self._refresh_if_changed()
                ahead = {} if has_writes else self._searches_ahead(batch, undo)
                results = work(
                    lambda op: ahead.pop(id(op)) if id(op) in ahead else self._run(op, undo)
                )
                seq = self._seq
                if has_writes:
                    seq = self._last_change()
                    self._db.execute("DELETE FROM changes WHERE seq <= ?", (seq - self._keep,))
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
            # Our own log entries describe what the mirrors already hold.
            self._data_version = version
            self._seq = seq
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
        """Bring the mirrors up to the snapshot if another connection committed since.

        Called inside the batch's transaction, after a first read has pinned its snapshot,
        so the mirrors then hold exactly the rows the batch reads. The change log since
        the last entry seen names what changed; a process so far behind that the log no
        longer reaches back to it reloads everything.
        """
        self._db.execute("SELECT COUNT(*) FROM meta").fetchone()  # pins the read snapshot
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version:
            return
        first = self._db.execute("SELECT MIN(seq) FROM changes").fetchone()[0]
        if self._stale or (first is not None and first > self._seq + 1):
            self._load()
            return
        rows = self._db.execute(
            "SELECT seq, node, kind, src, dst FROM changes WHERE seq > ? ORDER BY seq",
            (self._seq,),
        ).fetchall()
        if rows:
            nodes = list(dict.fromkeys(r[1] for r in rows if r[1] is not None))
            edges = list(dict.fromkeys((r[2], r[3], r[4]) for r in rows if r[1] is None))
            # A replay cut short (a read error) leaves the mirrors half-updated: the next
            # batch then reloads them whole.
            self._stale = True
            self._dims = self._read_dims()
            self._replay_nodes(nodes)
            self._replay_edges(edges)
            self._seq = rows[-1][0]
        self._stale = False
        self._data_version = version

    def _replay_nodes(self, ids: list[str]) -> None:
        found: dict[str, tuple[str, str, bytes | None, bytes | None]] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT id, kind, namespace, embedding, graph_embedding FROM nodes "
                f"WHERE id IN ({marks})",
                chunk,
            )
            for node_id, kind, ns, emb, gemb in rows:
                found[node_id] = (kind, ns, emb, gemb)
        for node_id in ids:
            row = found.get(node_id)
            if row is None:
                if node_id in self._graph:
                    self._graph.remove_node(node_id)
                for gone in self._indexes.values():
                    gone.remove(node_id)
                continue
            kind, ns, emb, gemb = row
            if kind in _MIRRORED:
                self._graph.add_node(node_id, kind=kind, ns=ns)
            for field, blob in (("embedding", emb), ("graph_embedding", gemb)):
                index = self._indexes.get((kind, field))
                if index is None:
                    continue
                vec = _vec(blob)
                if vec is None:
                    index.remove(node_id)
                else:
                    index.upsert(node_id, vec, ns)

    def _replay_edges(self, keys: list[tuple[str, str, str]]) -> None:
        for kind, src, dst in keys:
            if kind in _UNMIRRORED_EDGES:
                continue  # logged by a file's older triggers; read from SQLite anyway
            row = self._db.execute(
                "SELECT props FROM edges WHERE kind=? AND src=? AND dst=?", (kind, src, dst)
            ).fetchone()
            if row is None:
                if self._graph.has_edge(src, dst, key=kind):
                    self._graph.remove_edge(src, dst, key=kind)
            elif src in self._graph and dst in self._graph:
                self._graph.add_edge(src, dst, key=kind, props=row[0])
            else:
                self._split.add(kind)

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
                return self._vector_search(kind, vector, k, namespace, field, exclude_ids, undo)
            case ops.Count(namespace):
                return self._count(namespace)
            case ops.ListNamespaces():
                return self._namespaces()
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

    # ---- lookups of what the mirror does not hold -----------------------------------
    def _kinds_of(self, ids: Iterable[str]) -> dict[str, str]:
        """The kind of each id that names a node: from the mirror, else from SQLite."""
        kinds: dict[str, str] = {}
        rest = []
        written = self._written
        for node_id in dict.fromkeys(ids):
            attrs = self._graph.nodes.get(node_id)
            if attrs is not None:
                kinds[node_id] = attrs["kind"]
            elif node_id in written:
                kinds[node_id] = written[node_id]
            else:
                rest.append(node_id)
        for chunk in _chunks(rest):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT id, kind FROM nodes WHERE id IN ({marks})", chunk)
            kinds.update(rows)
        return kinds

    # ---- writes ----------------------------------------------------------------------
    def _expect(self, expected: Sequence[tuple[NodeKind, str, datetime | None]]) -> None:
        """Compare under the write lock (BEGIN IMMEDIATE), which no other writer, thread or
        process, can hold until this batch commits: the check and the writes after it are
        one atomic step."""
        wanted = {node_id: at for _, node_id, at in expected}
        found = self._versions(list(wanted))
        for node_id, at in wanted.items():
            present = node_id in found
            if (at is None and present) or (at is not None and found.get(node_id) != at):
                raise refusals.changed_by_another_writer(node_id)

    def _versions(self, ids: Sequence[str]) -> dict[str, datetime | None]:
        """Stored ``updated_at`` of those of ``ids`` that exist (``None``: unversioned)."""
        found: dict[str, datetime | None] = {}
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT id, json_extract(props, '$.updated_at') FROM nodes WHERE id IN ({marks})",
                chunk,
            )
            for node_id, stamp in rows:
                found[node_id] = None if stamp is None else datetime.fromisoformat(stamp)
        return found

    def _refuse_stale(self, nodes: Sequence[Node]) -> None:
        """A replacement older than the stored node is a stale copy (see ops.PutNodes)."""
        versioned = {
            n.id: at
            for n in nodes
            if n.kind in ops.VERSIONED_KINDS and (at := getattr(n, "updated_at", None)) is not None
        }
        for node_id, stored in self._versions(list(versioned)).items():
            if stored is not None and stored > versioned[node_id]:
                raise refusals.changed_by_another_writer(node_id)

    def _check_dim(
        self,
        kind: str,
        field: ops.VectorField,
        vec: npt.NDArray[np.float32],
        node_id: str,
        undo: list[Undo],
    ) -> None:
        """The first vector of a (kind, field) fixes its dimension; later ones must match."""
        dim = self._dims.get((kind, field))
        if dim is None:
            dim = self._dims[(kind, field)] = int(vec.shape[0])
            self._db.execute("INSERT INTO meta VALUES (?, ?)", (f"dim:{kind}:{field}", str(dim)))

            def drop() -> None:
                self._dims.pop((kind, field), None)

            undo.append(drop)
        if vec.shape != (dim,):
            raise refusals.wrong_dimension(f"vector of node {node_id}", vec, dim)

    def _put_nodes(self, nodes: Sequence[Node], undo: list[Undo]) -> None:
        self._refuse_stale(nodes)
        rows = []
        stored = self._kinds_of(n.id for n in nodes)
        for node in nodes:
            kind = node.kind.value
            old_kind = stored.get(node.id)
            if old_kind is not None and old_kind != kind:
                raise refusals.kind_clash(node.id, old_kind, kind)
            stored[node.id] = kind
            self._written[node.id] = kind
            for field in _FIELDS:
                vec = getattr(node, field)
                if vec is not None:
                    self._check_dim(kind, field, vec, node.id, undo)
                loaded = self._indexes.get((kind, field))
                if loaded is None:
                    continue  # not read yet: it will be, from the rows written here
                if vec is not None:
                    undo.append(loaded.upsert(node.id, vec, node.namespace))
                else:
                    undo.append(loaded.remove(node.id))
            if kind in _MIRRORED:
                old = dict(self._graph.nodes[node.id]) if node.id in self._graph else None
                self._graph.add_node(node.id, kind=kind, ns=node.namespace)
                undo.append(self._node_restorer(node.id, old))
            rows.append(
                (
                    node.id,
                    kind,
                    node.namespace,
                    # What props() holds, serialised by pydantic in one step.
                    node.model_dump_json(exclude=_VECTORS),
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
        kinds = self._kinds_of(end for edge in edges for end in (edge.src, edge.dst))
        rows = []
        for edge in edges:
            for end in (edge.src, edge.dst):
                if end not in kinds:
                    raise refusals.missing_endpoint(edge.kind.value, end)
            kind = edge.kind.value
            props = json.dumps(edge.props, separators=(",", ":")) if edge.props else "{}"
            if kind not in _UNMIRRORED_EDGES:
                if edge.src in self._graph and edge.dst in self._graph:
                    old = self._graph.get_edge_data(edge.src, edge.dst, key=kind)
                    self._graph.add_edge(edge.src, edge.dst, key=kind, props=props)
                    undo.append(self._edge_restorer(edge.src, edge.dst, kind, old))
                else:
                    self._split.add(kind)  # kept if rolled back: it only costs a lookup
            rows.append((kind, edge.src, edge.dst, props))
        # In key order: neighbouring rows land on the same pages of the primary key.
        rows.sort(key=lambda row: row[:3])  # stable: of one key written twice, the last wins
        self._db.executemany(
            "INSERT INTO edges VALUES (?, ?, ?, ?) "
            "ON CONFLICT(kind, src, dst) DO UPDATE SET props=excluded.props",
            rows,
        )

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
            old = self._graph.get_edge_data(src, dst, key=kind)
            if old is not None:
                self._graph.remove_edge(src, dst, key=kind)
                undo.append(self._edge_restorer(src, dst, kind, old))
            cur = self._db.execute(
                "DELETE FROM edges WHERE kind=? AND src=? AND dst=?", (kind, src, dst)
            )
            removed += cur.rowcount
        return removed

    def _remove_nodes(self, ids: Iterable[str], undo: list[Undo]) -> ops.Removed:
        kinds = self._kinds_of(ids)
        doomed = list(kinds)
        for node_id in doomed:
            self._written.pop(node_id, None)
        for node_id in doomed:
            for (kind, _field), index in self._indexes.items():
                if kind == kinds[node_id]:
                    undo.append(index.remove(node_id))
            if node_id in self._graph:
                edges = [
                    (s, d, k, dict(data))
                    for s, d, k, data in (
                        *self._graph.out_edges(node_id, keys=True, data=True),
                        *self._graph.in_edges(node_id, keys=True, data=True),
                    )
                ]
                attrs = dict(self._graph.nodes[node_id])
                self._graph.remove_node(node_id)
                undo.append(self._node_readder(node_id, attrs, edges))
        # The doomed ids go into a temporary table (rolled back with the transaction), so
        # an edge between two of them is counted once however many ids there are.
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS doomed (id TEXT PRIMARY KEY)")
        self._db.execute("DELETE FROM doomed")
        self._db.executemany("INSERT OR IGNORE INTO doomed VALUES (?)", [(i,) for i in doomed])
        edge_count = self._db.execute(
            "DELETE FROM edges WHERE src IN (SELECT id FROM doomed) "
            "OR dst IN (SELECT id FROM doomed)"
        ).rowcount
        self._db.execute("DELETE FROM nodes WHERE id IN (SELECT id FROM doomed)")
        return ops.Removed(nodes=len(doomed), edges=edge_count)

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
        rows = self._db.execute("SELECT id FROM nodes WHERE namespace=?", (namespace,))
        return self._remove_nodes([r[0] for r in rows.fetchall()], undo)

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
        for chunk in _chunks(list(dict.fromkeys(ids))):
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

    def _edges_of(
        self, ids: Sequence[str], kinds: Sequence[EdgeKind] | None, direction: str
    ) -> Iterable[Edge]:
        wanted = None if kinds is None else {EdgeKind(k).value for k in kinds}
        seen: set[tuple[str, str, str]] = set()
        sides = [s for s, d in (("src", "out"), ("dst", "in")) if direction in (d, "both")]
        for node_id in ids:
            if node_id in self._graph:
                groups = []
                if direction in ("out", "both"):
                    groups.append(self._graph.out_edges(node_id, keys=True, data="props"))
                if direction in ("in", "both"):
                    groups.append(self._graph.in_edges(node_id, keys=True, data="props"))
                for group in groups:
                    for src, dst, kind, props in group:
                        if (wanted is None or kind in wanted) and (kind, src, dst) not in seen:
                            seen.add((kind, src, dst))
                            yield _edge(kind, src, dst, props)
                # What the mirror lacks: unmirrored kinds, and kinds with edges leaving it.
                stored = [
                    k for k in (*_UNMIRRORED_EDGES, *self._split) if wanted is None or k in wanted
                ]
                if not stored:
                    continue
                marks = ",".join("?" * len(stored))
                where, params = f" AND kind IN ({marks})", stored
            else:
                # Not mirrored (an utterance, an item) or no node: every edge is in SQLite.
                marks = ",".join("?" * len(wanted or ()))
                where = "" if wanted is None else f" AND kind IN ({marks})"
                params = [] if wanted is None else sorted(wanted)
            for side in sides:
                rows = self._db.execute(
                    f"SELECT kind, src, dst, props FROM edges WHERE {side}=?{where}",
                    (node_id, *params),
                )
                for kind, src, dst, props in rows:
                    if (kind, src, dst) not in seen:
                        seen.add((kind, src, dst))
                        yield _edge(kind, src, dst, props)

    def _expand(
        self,
        ids: Sequence[str],
        kinds: Sequence[EdgeKind] | None,
        direction: str,
        exclude: frozenset[str],
    ) -> list[ops.Link]:
        found = []
        for node_id in dict.fromkeys(ids):
            for edge in self._edges_of([node_id], kinds, direction):
                outgoing = edge.src == node_id
                other = edge.dst if outgoing else edge.src
                if other not in exclude:
                    found.append((node_id, other, outgoing, edge))
        node_kinds = self._kinds_of(other for _, other, _, _ in found)
        return [
            ops.Link(node_id, other, NodeKind(node_kinds[other]), outgoing, edge)
            for node_id, other, outgoing, edge in found
        ]

    def _index(self, kind: str, field: str, undo: list[Undo]) -> VectorIndex | None:
        """The vector matrix of a (kind, field), read from SQLite in one pass when first
        needed (inside the batch's snapshot, so it agrees with the mirrors)."""
        index = self._indexes.get((kind, field))
        if index is not None:
            return index
        dim = self._dims.get((kind, field))
        if dim is None:
            return None
        rows = self._db.execute(
            f"SELECT id, namespace, {field} FROM nodes WHERE kind=? AND {field} IS NOT NULL "
            "ORDER BY seq",
            (kind,),
        ).fetchall()
        matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32)
        index = VectorIndex.from_rows(
            dim, [r[0] for r in rows], [r[1] for r in rows], matrix.reshape(len(rows), dim)
        )
        self._indexes[(kind, field)] = index

        def unload() -> None:  # it may hold rows this batch wrote and is rolling back
            self._indexes.pop((kind, field), None)

        undo.append(unload)
        return index

    def _searches_ahead(self, batch: list[ops.Op], undo: list[Undo]) -> dict[int, Any]:
        """Results of a read batch's vector searches, several per matrix product.

        A batch that only reads sees one snapshot, so its searches of one (kind, field)
        can all be scored together; a bulk writer asks for hundreds at once. Keyed by the
        operation object, which is what the batch hands the backend.
        """
        groups: dict[tuple[str, str, int], list[ops.VectorSearch]] = {}
        for op in batch:
            if isinstance(op, ops.VectorSearch):
                groups.setdefault((NodeKind(op.kind).value, op.field, op.k), []).append(op)
        ahead: dict[int, Any] = {}
        for (kind, field, k), searches in groups.items():
            if len(searches) < 2 or self._ann_for(kind, field) is not None:
                continue  # one search, or searches through the approximate index
            index = self._index(kind, field, undo)
            if index is None:
                continue
            found = index.search_many(
                [np.asarray(op.vector, dtype=np.float32) for op in searches],
                k,
                [op.namespace for op in searches],
                [op.exclude_ids for op in searches],
            )
            ahead.update((id(op), hits) for op, hits in zip(searches, found, strict=True))
        return ahead

    def _vector_search(
        self,
        kind: NodeKind,
        vector: npt.NDArray[np.float32],
        k: int,
        namespace: str | None,
        field: ops.VectorField,
        exclude: frozenset[str],
        undo: list[Undo],
    ) -> list[ops.Hit]:
        vec = np.asarray(vector, dtype=np.float32)
        approximate = self._ann_for(NodeKind(kind).value, field)
        if approximate is not None:
            if vec.shape != (approximate.dim,):
                raise refusals.wrong_dimension("query vector", vec, approximate.dim)
            return self._ann_search(
                approximate, NodeKind(kind).value, field, vec, k, namespace, exclude
            )
        index = self._index(NodeKind(kind).value, field, undo)
        if index is None:
            return []
        return index.search(vec, k, namespace, exclude)

    # ---- approximate search --------------------------------------------------------------
    def _reaches(self, through: int) -> bool:
        """Whether the change log still holds every entry after ``through``."""
        if through > self._seq:
            return False  # the file was written for a later state: this one is older
        first = self._db.execute("SELECT MIN(seq) FROM changes").fetchone()[0]
        return first is None or first <= through + 1 or through == self._seq

    def _ann_for(self, kind: str, field: str) -> ApproximateIndex | None:
        """The approximate index of a (kind, field), brought up to the snapshot, or None
        where search is exact (no extra, too few vectors, or a write batch that would have
        to build it: rows it has written may still roll back)."""
        if self._ann_min is None or self._dims.get((kind, field)) is None:
            return None
        key = (kind, field)
        index = self._ann.get(key)
        if index is not None and not self._reaches(index.through):
            index = None  # the log no longer reaches back to it: the saved file may
        if index is None:
            exact = self._indexes.get(key)
            if exact is not None and len(exact) < self._ann_min:
                return None
            dim = self._dims[key]
            index = ApproximateIndex.load(
                self._ann_dir / f"{kind}.{field}.usearch", self._store_id, dim
            )
            if index is not None and not self._reaches(index.through):
                index = None
            if index is None:
                if self._writing:
                    return None
                if exact is None:
                    (count,) = self._db.execute(
                        f"SELECT COUNT(*) FROM nodes WHERE kind=? AND {field} IS NOT NULL", (kind,)
                    ).fetchone()
                    if count < self._ann_min:
                        return None
                index = self._build_ann(kind, field, dim)
            self._ann[key] = index
            self._indexes.pop(key, None)  # the matrix is no longer searched
        if not self._writing and index.through < self._seq:
            self._catch_up(index, kind, field)
        return index

    def _build_ann(self, kind: str, field: str, dim: int) -> ApproximateIndex:
        index = ApproximateIndex.empty(
            self._ann_dir / f"{kind}.{field}.usearch", self._store_id, dim
        )
        rows = self._db.execute(
            f"SELECT seq, id, {field} FROM nodes WHERE kind=? AND {field} IS NOT NULL ORDER BY seq",
            (kind,),
        ).fetchall()
        matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32)
        index.upsert([r[1] for r in rows], [r[0] for r in rows], matrix.reshape(len(rows), dim))
        index.through = self._seq
        index.save()
        return index

    def _catch_up(self, index: ApproximateIndex, kind: str, field: str) -> None:
        """Take in the nodes the log names since the index was last brought up to date
        (this process's commits and any other's); only in a read batch, whose snapshot
        holds committed rows alone."""
        changed = [
            r[0]
            for r in self._db.execute(
                "SELECT DISTINCT node FROM changes WHERE seq > ? AND seq <= ? AND node IS NOT NULL",
                (index.through, self._seq),
            )
        ]
        found: dict[str, tuple[int, bytes]] = {}
        for chunk in _chunks(changed):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT id, seq, {field} FROM nodes WHERE id IN ({marks}) AND kind=? "
                f"AND {field} IS NOT NULL",
                (*chunk, kind),
            )
            found.update((node_id, (seq, blob)) for node_id, seq, blob in rows)
        index.remove([node_id for node_id in changed if node_id not in found])
        if found:
            ids = list(found)
            matrix = np.frombuffer(b"".join(found[i][1] for i in ids), dtype=np.float32)
            index.upsert(ids, [found[i][0] for i in ids], matrix.reshape(len(ids), index.dim))
        index.through = self._seq
        if index.unsaved >= max(ANN_SAVE_EVERY, len(index) // 20):
            index.save()

    def _ann_search(
        self,
        index: ApproximateIndex,
        kind: str,
        field: str,
        vec: npt.NDArray[np.float32],
        k: int,
        namespace: str | None,
        exclude: frozenset[str],
    ) -> list[ops.Hit]:
        """Candidates from the index, each read back and scored exactly; widened until k
        pass the namespace and exclusions, else that namespace is searched exactly."""
        if k <= 0:
            return []
        norm = float(np.linalg.norm(vec))
        q = (vec / norm if norm > 0 else vec).astype(np.float32, copy=False)
        # In a write batch the index is not brought up to date (its rows may roll back):
        # what the log names since, and what this batch wrote, are scored as candidates too.
        extra: list[str] = []
        if self._writing:
            extra = list(self._written)
            extra += [
                r[0]
                for r in self._db.execute(
                    "SELECT DISTINCT node FROM changes WHERE seq > ? AND seq <= ? "
                    "AND node IS NOT NULL",
                    (index.through, self._seq),
                )
            ]
        count = max(4 * (k + len(exclude)), k + len(exclude) + 32)
        while True:
            keys = index.candidates(q, count)
            hits = self._score(keys, extra, kind, field, q, namespace, exclude)
            if len(hits) >= k:
                break
            if count >= ANN_MAX_CANDIDATES or count >= len(index):
                hits = self._score_namespace(kind, field, q, namespace, exclude)
                break
            count *= 4
        hits.sort(key=lambda h: (-h[0], h[1]))
        return [ops.Hit(node_id, score) for score, _, node_id in hits[:k]]

    def _score(
        self,
        keys: list[int],
        extra: list[str],
        kind: str,
        field: str,
        q: npt.NDArray[np.float32],
        namespace: str | None,
        exclude: frozenset[str],
    ) -> list[tuple[float, int, str]]:
        rows: dict[int, tuple[str, str, bytes]] = {}
        for column, values in (("seq", keys), ("id", extra)):
            for chunk in _chunks(list(values)):  # type: ignore[arg-type]
                marks = ",".join("?" * len(chunk))
                found = self._db.execute(
                    f"SELECT seq, id, namespace, {field} FROM nodes WHERE {column} IN ({marks}) "
                    f"AND kind=? AND {field} IS NOT NULL",
                    (*chunk, kind),
                )
                for seq, node_id, ns, blob in found:
                    rows[seq] = (node_id, ns, blob)
        return self._scored(rows, q, namespace, exclude)

    def _score_namespace(
        self,
        kind: str,
        field: str,
        q: npt.NDArray[np.float32],
        namespace: str | None,
        exclude: frozenset[str],
    ) -> list[tuple[float, int, str]]:
        sql = f"SELECT seq, id, namespace, {field} FROM nodes WHERE kind=? AND {field} IS NOT NULL"
        params: list[Any] = [kind]
        if namespace is not None:
            sql += " AND namespace=?"
            params.append(namespace)
        rows = {
            seq: (node_id, ns, blob) for seq, node_id, ns, blob in self._db.execute(sql, params)
        }
        return self._scored(rows, q, namespace, exclude)

    @staticmethod
    def _scored(
        rows: dict[int, tuple[str, str, bytes]],
        q: npt.NDArray[np.float32],
        namespace: str | None,
        exclude: frozenset[str],
    ) -> list[tuple[float, int, str]]:
        kept = [
            (seq, node_id, blob)
            for seq, (node_id, ns, blob) in rows.items()
            if (namespace is None or ns == namespace) and node_id not in exclude
        ]
        if not kept:
            return []
        matrix = np.frombuffer(b"".join(r[2] for r in kept), dtype=np.float32)
        matrix = matrix.reshape(len(kept), q.shape[0])
        norms = np.linalg.norm(matrix, axis=1)
        norms[norms == 0] = 1.0
        scores = (matrix @ q) / norms
        return [(float(s), seq, node_id) for s, (seq, node_id, _) in zip(scores, kept, strict=True)]

    def _namespaces(self) -> list[str]:
        """Distinct namespaces by stepping through the (namespace, kind) index: one seek
        per namespace, not a scan of every node."""
        out: list[str] = []
        row = self._db.execute("SELECT MIN(namespace) FROM nodes").fetchone()
        while row is not None and row[0] is not None:
            out.append(row[0])
            row = self._db.execute(
                "SELECT namespace FROM nodes WHERE namespace > ? ORDER BY namespace LIMIT 1",
                (row[0],),
            ).fetchone()
        return out

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


def _edge(kind: str, src: str, dst: str, props: str) -> Edge:
    return Edge.model_construct(kind=EdgeKind(kind), src=src, dst=dst, props=json.loads(props))


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    """Slices short enough for one ``IN (...)`` list of bound parameters."""
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]
