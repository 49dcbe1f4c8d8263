"""The embedded store: opening and closing it, and running a batch as one SQLite
transaction that rolls the mirrors back with it when anything fails."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from graph_store import ann, ops, refusals
from graph_store.base import GraphStore
from graph_store.embedded.mirror import CHANGE_LOG_KEEP, Undo
from graph_store.embedded.schema import open_file
from graph_store.embedded.search import ANN_MIN_ROWS, Search
from graph_store.embedded.writes import Writes
from graph_store.errors import StoreCorruptError, StoreError, StoreUnavailableError
from graph_store.programs import Runner


class EmbeddedStore(Writes, Search, GraphStore):
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
        self._written = {}
        self._closed = False
        self._keep = max(1, int(change_log_keep))
        use_ann = ann_min_rows is not None and ann.available() and self.path != ":memory:"
        self._ann_min = max(1, int(ann_min_rows)) if use_ann and ann_min_rows else None
        self._ann_dir = Path(f"{self.path}.ann")
        self._ann = {}
        self._writing = False
        if self.path != ":memory:":
            parent = Path(self.path).expanduser().resolve().parent
            if not parent.is_dir():
                raise StoreUnavailableError(f"cannot create store {self.path}: no such directory")
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._store_id = open_file(self._db, self.path, durability)
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
                    lambda op: (
                        self._found(op, ahead.pop(id(op)))
                        if id(op) in ahead
                        else self._run(op, undo)
                    )
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

    def _run(self, op: ops.Op, undo: list[Undo]) -> Any:  # noqa: PLR0911  one per read op
        if isinstance(op, ops.WRITE_OPS):
            return self._write(op, undo)
        if isinstance(op, ops.ReadVersion):
            # Every change to a query or insight logs a row (the triggers), so the last
            # row the mirrors have taken in names their state; a write batch's own rows
            # are taken in only when it commits.
            return None if self._writing else f"{self._store_id}:{self._seq}"
        match op:
            case ops.GetNodes(ids, with_vectors):
                return self._get_nodes(ids, with_vectors)
            case ops.ListNodes(kind, namespace, with_vectors, limit, where, offset):
                return self._list_nodes(kind, namespace, with_vectors, limit, where, offset)
            case ops.GetEdges(ids, kinds, direction):
                return list(self._edges_of(ids, kinds, direction))
            case ops.Expand(ids, kinds, direction, exclude, with_nodes, with_vectors):
                return self._expand(ids, kinds, direction, exclude, with_nodes, with_vectors)
            case ops.VectorSearch(kind, vector, k, namespace, field, exclude_ids):
                hits = self._vector_search(kind, vector, k, namespace, field, exclude_ids, undo)
                return self._found(op, hits)
            case ops.Count(namespace):
                return self._count(namespace)
            case ops.ListNamespaces():
                return self._namespaces()
        raise refusals.unknown_operation(op)

    def _found(self, op: ops.Op, hits: list[ops.Hit]) -> list[ops.Hit]:
        """A search's hits with their nodes, when it asked for them."""
        if not isinstance(op, ops.VectorSearch) or not op.with_nodes or not hits:
            return hits
        nodes = self._get_nodes([h.id for h in hits], op.with_vectors)
        return [replace(h, node=n) for h, n in zip(hits, nodes, strict=True) if n is not None]

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
