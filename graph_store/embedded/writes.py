"""Writes of the embedded store: nodes and edges into SQLite and the mirrors at once, each
change to a mirror with the undo step that reverts it, and the checks that refuse a bad or
stale write before anything lands."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from graph_store import ops, refusals
from graph_store.embedded.mirror import MIRRORED, UNMIRRORED_EDGES, Undo
from graph_store.embedded.reads import Reads
from graph_store.embedded.rows import (
    FIELDS,
    VECTORS,
    chunks,
    to_blob,
)
from graph_store.model import Edge, EdgeKind, Node, NodeKind


class Writes(Reads):
    """Writing and deleting nodes and edges inside a batch."""

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
        for chunk in chunks(list(ids)):
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
            for field in FIELDS:
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
            if kind in MIRRORED:
                old = dict(self._graph.nodes[node.id]) if node.id in self._graph else None
                self._graph.add_node(node.id, kind=kind, ns=node.namespace)
                undo.append(self._node_restorer(node.id, old))
            rows.append(
                (
                    node.id,
                    kind,
                    node.namespace,
                    # What props() holds, serialised by pydantic in one step.
                    node.model_dump_json(exclude=VECTORS),
                    to_blob(node.embedding),
                    to_blob(node.graph_embedding),
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
            if kind not in UNMIRRORED_EDGES:
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
