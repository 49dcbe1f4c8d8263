"""Upgrade a database written with vectors on its nodes to vector nodes, in place.

Before vector nodes, a node's ``embedding`` and ``graph_embedding`` were properties of the
node itself, indexed by ``gmem_query_embedding`` and its like; Neo4j Browser showed all
384 floats whenever someone clicked a task. :class:`Neo4jStore` refuses such a database
at open and names this upgrade (``gmem upgrade --store bolt://...``), which:

1. marks the database as being upgraded (a ``GmemUpgradeInProgress`` node) and drops the
   old vector indexes: kept, they would be rewritten by every batch that takes vectors
   off the nodes (on 100,000 tasks a batch took minutes, Lucene merging the shrinking
   HNSW graphs);
2. walks every label in id order, ``batch`` nodes per transaction, moving each node's
   vectors onto its vector node (``(n)-[:HAS_VECTOR]->(:QueryVector ...)``) and off the
   node, in the same transaction, so a vector is always in exactly one of the two places;
3. creates the new vector indexes, each with its vectors' dimension, in one pass over
   the moved vectors, and waits until they are ONLINE;
4. removes the mark, last: while it is there, the store is refused as old.

A kill at any point leaves a database that is refused and that a rerun finishes; a
rerun on an upgraded database changes nothing. Writers of either version must be
stopped first: this version refuses the database until the upgrade is done, and an
older one would keep writing vectors the old way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graph_store.errors import StoreError
from graph_store.model import NodeKind
from graph_store.neo4j import cypher
from graph_store.neo4j.store import Neo4jStore

if TYPE_CHECKING:
    import neo4j

#: Nodes per transaction: a batch of tasks' vectors (384 floats each) is a few MB of
#: transaction state, well inside a small server's heap.
BATCH = 5000

#: ``(what, done, total)``: what is being done (a label, or ``index``), how far.
Progress = Callable[[str, int, int], None]


@dataclass
class UpgradeReport:
    #: Nodes whose vectors were moved, by label.
    moved: dict[str, int] = field(default_factory=dict)
    #: Nodes looked at, by label.
    seen: dict[str, int] = field(default_factory=dict)
    #: Old vector indexes dropped, and vector indexes built.
    dropped: list[str] = field(default_factory=list)
    built: list[str] = field(default_factory=list)
    move_s: float = 0.0
    index_s: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(sum(self.moved.values()) or self.dropped or self.built)


def upgrade(
    store: Neo4jStore, *, batch: int = BATCH, progress: Progress | None = None
) -> UpgradeReport:
    """Move every vector of ``store`` (opened with ``refuse_old_layout=False``) onto
    vector nodes, then swap the old vector indexes for new ones."""
    report = UpgradeReport()

    def work() -> UpgradeReport:
        with store._session() as session:
            session.run(cypher.START_UPGRADE).consume()
            for key in _old_indexes(session):
                session.run(cypher.DROP_OLD_VECTOR_INDEX[key]).consume()
                report.dropped.append(cypher.OLD_VECTOR_INDEXES[key])
            started = time.monotonic()
            for kind in NodeKind:
                total = _count(session, kind)
                seen, moved = _move(session, kind, max(1, batch), total, progress)
                report.seen[kind.value] = seen
                report.moved[kind.value] = moved
            report.move_s = time.monotonic() - started
            started = time.monotonic()
            store._read_indexes(session)
            for key, dims in _wanted_indexes(session, store).items():
                store._schema_statement(session, cypher.CREATE_VECTOR_INDEX[key], dims=dims)
                report.built.append(cypher.vector_index_name(*key))
            _await_online(session, progress)
            report.index_s = time.monotonic() - started
            session.run(cypher.FINISH_UPGRADE).consume()
            store._read_indexes(session)
        return report

    result: UpgradeReport = store._call(work)
    return result


def _old_indexes(session: neo4j.Session) -> list[tuple[NodeKind, str]]:
    names = {name: key for key, name in cypher.OLD_VECTOR_INDEXES.items()}
    return [names[r["name"]] for r in session.run(cypher.SHOW_VECTOR_INDEXES) if r["name"] in names]


def _count(session: neo4j.Session, kind: NodeKind) -> int:
    rows = [r for r in session.run(cypher.COUNT_NODES) if r["kind"] == kind.value]
    return int(rows[0]["n"]) if rows else 0


def _move(
    session: neo4j.Session,
    kind: NodeKind,
    batch: int,
    total: int,
    progress: Progress | None,
) -> tuple[int, int]:
    after, seen, moved = "", 0, 0
    while True:
        row = session.execute_write(_run_one, cypher.UPGRADE_BATCH[kind], after, batch)
        seen += int(row["seen"])
        moved += int(row["moved"])
        if progress is not None:
            progress(kind.value, seen, max(total, seen))
        if int(row["seen"]) < batch or row["last"] is None:
            return seen, moved
        after = str(row["last"])


def _run_one(tx: neo4j.ManagedTransaction, statement: str, after: str, batch: int) -> Any:
    return tx.run(statement, {"after": after, "batch": batch}).single(strict=True)


def _wanted_indexes(session: neo4j.Session, store: Neo4jStore) -> dict[tuple[NodeKind, str], int]:
    """Each (kind, field) that has moved vectors but no index yet, with its dimension
    (that of one stored vector: the old index had it too, and the index is gone)."""
    wanted: dict[tuple[NodeKind, str], int] = {}
    for key, statement in cypher.VECTOR_DIMS.items():
        if key in store._dims:
            continue
        found = session.run(statement).single()
        if found is not None:
            wanted[key] = int(found["dims"])
    return wanted


def _await_online(session: neo4j.Session, progress: Progress | None) -> None:
    """Wait until every vector index of the new layout is built, however long that takes
    (a large store's takes minutes), telling ``progress`` the mean percentage."""
    names = {cypher.vector_index_name(*key) for key in cypher.CREATE_VECTOR_INDEX}
    while True:
        states = {
            r["name"]: (r["state"], float(r["percent"] or 0.0))
            for r in session.run(cypher.SHOW_VECTOR_INDEXES)
            if r["name"] in names
        }
        for name, (state, _) in states.items():
            if state not in ("ONLINE", "POPULATING"):
                raise StoreError(
                    f"the vector index {name} is {state} after the upgrade moved every "
                    "vector; see the server's log, drop the index and run the upgrade again"
                )
        if progress is not None and states:
            done = sum(100.0 if s == "ONLINE" else p for s, p in states.values())
            progress("index", int(done), 100 * len(states))
        if all(state == "ONLINE" for state, _ in states.values()):
            return
        time.sleep(1.0)


__all__ = ["BATCH", "UpgradeReport", "upgrade"]
