"""Reads of the embedded store: nodes, listings, edges and neighbours, counts, each from
the mirror where it holds them and from SQLite for the rest."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from graph_store import ops
from graph_store.embedded.mirror import UNMIRRORED_EDGES, Mirrors
from graph_store.embedded.rows import (
    chunks,
    edge_from_row,
    from_blob,
    node_from_row,
)
from graph_store.model import Edge, EdgeKind, Node, NodeKind, node_from_props

#: A JSON path SQLite can take unquoted.
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _excluding(condition: ops.Where) -> str | None:
    """SQL that drops, before their JSON reaches Python, rows ``condition`` must refuse,
    or None where it cannot say; :meth:`ops.Where.holds` still decides every row kept.

    Only ``ne`` a boolean: a row whose value is that JSON boolean fails it. Listing the
    live insights (``retired`` not true) is what the maintenance pass does, and without
    this it decoded every retired insight ever kept to find the live ones.
    """
    value = condition.value
    if condition.op != "ne" or not isinstance(value, bool):
        return None
    if not condition.path or not all(_PLAIN_KEY.fullmatch(k) for k in condition.path):
        return None
    literal = "true" if value else "false"
    return f"json_type(props, '$.{'.'.join(condition.path)}') IS NOT '{literal}'"


class Reads(Mirrors):
    """Reading nodes and edges from the mirror and from SQLite."""

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
        for chunk in chunks(rest):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT id, kind FROM nodes WHERE id IN ({marks})", chunk)
            kinds.update(rows)
        return kinds

    def _rows_to_nodes(self, rows: Iterable[tuple[Any, ...]], with_vectors: bool) -> list[Node]:
        if with_vectors:
            return [node_from_row(kind, props, emb, gemb) for kind, props, emb, gemb in rows]
        return [node_from_row(kind, props, None, None) for kind, props, _, _ in rows]

    def _get_nodes(self, ids: Sequence[str], with_vectors: bool) -> list[Node | None]:
        cols = (
            "id, kind, props, embedding, graph_embedding"
            if with_vectors
            else ("id, kind, props, NULL, NULL")
        )
        found: dict[str, Node] = {}
        for chunk in chunks(list(dict.fromkeys(ids))):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT {cols} FROM nodes WHERE id IN ({marks})", chunk)
            for node_id, kind, props, emb, gemb in rows:
                found[node_id] = node_from_row(kind, props, emb, gemb)
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
        for clause in filter(None, map(_excluding, where)):
            sql += f" AND {clause}"
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
                out.append(node_from_props(kind_, data, from_blob(emb), from_blob(gemb)))
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
                            yield edge_from_row(kind, src, dst, props)
                # What the mirror lacks: unmirrored kinds, and kinds with edges leaving it.
                stored = [
                    k for k in (*UNMIRRORED_EDGES, *self._split) if wanted is None or k in wanted
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
                        yield edge_from_row(kind, src, dst, props)

    def _expand(
        self,
        ids: Sequence[str],
        kinds: Sequence[EdgeKind] | None,
        direction: str,
        exclude: frozenset[str],
        with_nodes: bool = False,
        with_vectors: bool = False,
    ) -> list[ops.Link]:
        found = []
        for node_id in dict.fromkeys(ids):
            for edge in self._edges_of([node_id], kinds, direction):
                outgoing = edge.src == node_id
                other = edge.dst if outgoing else edge.src
                if other not in exclude:
                    found.append((node_id, other, outgoing, edge))
        if with_nodes:
            others = list(dict.fromkeys(other for _, other, _, _ in found))
            nodes = dict(zip(others, self._get_nodes(others, with_vectors), strict=True))
            return [
                ops.Link(node_id, other, node.kind, outgoing, edge, node)
                for node_id, other, outgoing, edge in found
                if (node := nodes[other]) is not None
            ]
        node_kinds = self._kinds_of(other for _, other, _, _ in found)
        return [
            ops.Link(node_id, other, NodeKind(node_kinds[other]), outgoing, edge)
            for node_id, other, outgoing, edge in found
        ]

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
