"""The embedded store's mirrors of SQLite: the networkx graph of the query and insight
tiers and the vector matrices, loaded from the file and kept current with other
processes' commits by replaying the change log."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import networkx as nx

from graph_store.embedded.rows import chunks, from_blob
from graph_store.embedded.schema import MIRRORED_SQL
from graph_store.model import EdgeKind, NodeKind
from graph_store.vectors import VectorIndex

#: Node kinds the networkx mirror holds; every other kind is read from SQLite.
MIRRORED = frozenset({NodeKind.QUERY.value, NodeKind.INSIGHT.value})
#: Change-log entries kept; a process further behind than this reloads its mirrors whole.
CHANGE_LOG_KEEP = 50_000

#: One step that puts a mirror back as it was before a batch changed it.
Undo = Callable[[], None]

# Edge kinds that stay in SQLite, whatever they connect. Trace edges (a query to its
# utterances, utterances to each other) are most of a store's edges and are only read one
# task at a time. Similarity edges are a few per query (several hundred thousand at a
# hundred thousand tasks, most of a reopen if mirrored) and recall reads those of a
# handful of queries, each one index seek, so they are read where they are needed.
UNMIRRORED_EDGES = (
    EdgeKind.HAS_TRACE.value,
    EdgeKind.NEXT.value,
    EdgeKind.REPLIES_TO.value,
    EdgeKind.SIMILAR_TO.value,
)


class Mirrors:
    """The SQLite connection, the mirrors beside it and the state of the batch running;
    the store's reads, writes and searches are built on it."""

    path: str
    _db: sqlite3.Connection
    _keep: int
    _graph: nx.MultiDiGraph
    _split: set[str]
    _dims: dict[tuple[str, str], int]
    _indexes: dict[tuple[str, str], VectorIndex]
    _seq: int
    _stale: bool
    _data_version: int
    # Kinds of the nodes the running batch wrote, and whether it writes.
    _written: dict[str, str]
    _writing: bool

    def _load(self) -> None:
        """Rebuild the mirrors from SQLite: the query and insight tiers into networkx;
        vector matrices are dropped, to be read again when first searched."""
        graph = nx.MultiDiGraph()
        mirrored = self._db.execute(
            f"SELECT id, kind, namespace FROM nodes INDEXED BY nodes_mirrored "
            f"WHERE kind IN {MIRRORED_SQL}"
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
        mirrored_kinds = [k.value for k in EdgeKind if k.value not in UNMIRRORED_EDGES]
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
        self._indexes = {}
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
        for chunk in chunks(ids):
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
            if kind in MIRRORED:
                self._graph.add_node(node_id, kind=kind, ns=ns)
            for field, blob in (("embedding", emb), ("graph_embedding", gemb)):
                index = self._indexes.get((kind, field))
                if index is None:
                    continue
                vec = from_blob(blob)
                if vec is None:
                    index.remove(node_id)
                else:
                    index.upsert(node_id, vec, ns)

    def _replay_edges(self, keys: list[tuple[str, str, str]]) -> None:
        for kind, src, dst in keys:
            if kind in UNMIRRORED_EDGES:
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
