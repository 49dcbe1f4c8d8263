"""Durability and bad-input behaviour specific to the embedded (SQLite) store."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from graph_store import EmbeddedStore, NodeKind, QueryNode, open_store
from graph_store.errors import ConfigError, StoreCorruptError, StoreUnavailableError
from graph_store.model import query_id_for

ROOT = Path(__file__).resolve().parents[1]


def test_journal_is_wal(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "m.db") as store:
        store.put_nodes([QueryNode(id=query_id_for("default", "t"), text="t")])
    db = sqlite3.connect(tmp_path / "m.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_garbage_file_is_reported_as_corrupt_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreCorruptError, match="not a readable gmem store"):
        EmbeddedStore(path)
    assert path.read_bytes() == before


def test_truncated_store_is_reported_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with EmbeddedStore(path) as store:
        store.put_nodes(
            [QueryNode(id=query_id_for("default", f"t{i}"), text=f"t{i}" * 200) for i in range(300)]
        )
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + b"\x00" * 4096 + data[len(data) // 2 + 4096 :])
    with pytest.raises(StoreCorruptError):
        EmbeddedStore(path)


def test_sqlite_file_of_another_application_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE customers (id INTEGER)")
    db.commit()
    db.close()
    with pytest.raises(StoreCorruptError, match="another application"):
        EmbeddedStore(path)


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match="no such directory"):
        EmbeddedStore(tmp_path / "nope" / "m.db")


def test_open_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store(":memory:"), EmbeddedStore)
    store = open_store(f"sqlite:///{tmp_path}/u.db")
    assert isinstance(store, EmbeddedStore) and store.path == f"{tmp_path}/u.db"
    with pytest.raises(ConfigError, match="unknown store URL scheme 'redis'"):
        open_store("redis://localhost")


def test_second_handle_sees_writes_of_the_first(tmp_path: Path) -> None:
    a = EmbeddedStore(tmp_path / "m.db")
    b = EmbeddedStore(tmp_path / "m.db")
    q = QueryNode(
        id=query_id_for("default", "shared"),
        text="shared",
        embedding=np.array([1, 0], dtype=np.float32),
    )
    a.put_nodes([q])
    assert b.get_node(q.id) is not None
    assert [h.id for h in b.vector_search(NodeKind.QUERY, [1, 0], k=1)] == [q.id]
    a.close()
    b.close()


WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from graph_store import EmbeddedStore, QueryNode, Utterance, Edge, EdgeKind
    from graph_store.model import query_id_for
    from graph_store.ops import PutNodes, PutEdges
    store = EmbeddedStore(sys.argv[1])
    i = 0
    while True:
        q = QueryNode(id=query_id_for("default", f"task {i}"), text=f"task {i}",
                      embedding=np.random.rand(8).astype("float32"))
        utts = [Utterance(query_id=q.id, step=s, agent="a", role="r", content="x" * 500)
                for s in range(20)]
        edges = [Edge(kind=EdgeKind.HAS_TRACE, src=q.id, dst=u.id) for u in utts]
        store.batch([PutNodes([q, *utts]), PutEdges(edges)])
        print(i, flush=True)
        i += 1
    """
)


def test_kill_9_during_writes_loses_no_committed_task(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    committed = -1
    deadline = time.monotonic() + 60
    while committed < 40 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        committed = int(line)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert committed >= 40, "the writer did not get going"
    with EmbeddedStore(path) as store:
        counts = store.count()
        queries = counts.nodes["Query"]
        assert queries >= committed + 1
        assert counts.nodes["Utterance"] == 20 * queries  # no half-written task
        assert counts.edges["HAS_TRACE"] == 20 * queries
        for i in range(committed + 1):
            assert store.get_node(query_id_for("default", f"task {i}")) is not None


# The change-log triggers as gmem wrote them before they tested kinds with = and <>.
_IN_LIST_TRIGGERS = """
CREATE TRIGGER log_node_insert AFTER INSERT ON nodes
WHEN NEW.kind IN ('Query','Insight') OR NEW.embedding IS NOT NULL
    OR NEW.graph_embedding IS NOT NULL
BEGIN INSERT INTO changes (node) VALUES (NEW.id); END;
CREATE TRIGGER log_node_update AFTER UPDATE ON nodes
WHEN NEW.kind IN ('Query','Insight') OR NEW.embedding IS NOT NULL
    OR NEW.graph_embedding IS NOT NULL OR OLD.embedding IS NOT NULL
    OR OLD.graph_embedding IS NOT NULL
BEGIN INSERT INTO changes (node) VALUES (NEW.id); END;
CREATE TRIGGER log_node_delete AFTER DELETE ON nodes
WHEN OLD.kind IN ('Query','Insight') OR OLD.embedding IS NOT NULL
    OR OLD.graph_embedding IS NOT NULL
BEGIN INSERT INTO changes (node) VALUES (OLD.id); END;
CREATE TRIGGER log_edge_insert AFTER INSERT ON edges
WHEN NEW.kind NOT IN ('HAS_TRACE','NEXT','REPLIES_TO')
BEGIN INSERT INTO changes (kind, src, dst) VALUES (NEW.kind, NEW.src, NEW.dst); END;
CREATE TRIGGER log_edge_update AFTER UPDATE ON edges
WHEN NEW.kind NOT IN ('HAS_TRACE','NEXT','REPLIES_TO')
BEGIN INSERT INTO changes (kind, src, dst) VALUES (NEW.kind, NEW.src, NEW.dst); END;
CREATE TRIGGER log_edge_delete AFTER DELETE ON edges
WHEN OLD.kind NOT IN ('HAS_TRACE','NEXT','REPLIES_TO')
BEGIN INSERT INTO changes (kind, src, dst) VALUES (OLD.kind, OLD.src, OLD.dst); END;
"""

_WRITES = """
DELETE FROM edges;
DELETE FROM nodes;
INSERT INTO nodes (id, kind, namespace, props) VALUES
    ('q1', 'Query', 'default', '{}'), ('i1', 'Insight', 'default', '{}'),
    ('u1', 'Utterance', 'default', '{}'), ('t1', 'Item', 'default', '{}');
INSERT INTO nodes (id, kind, namespace, props, embedding) VALUES
    ('u2', 'Utterance', 'default', '{}', x'00');
INSERT INTO nodes (id, kind, namespace, props, graph_embedding) VALUES
    ('t2', 'Item', 'default', '{}', x'00');
UPDATE nodes SET props = '{"a":1}' WHERE id IN ('q1', 'u1', 'u2');
UPDATE nodes SET embedding = NULL WHERE id = 'u2';
UPDATE nodes SET embedding = x'01' WHERE id = 't1';
INSERT INTO edges VALUES ('HAS_TRACE', 'q1', 'u1', '{}'), ('NEXT', 'u1', 'u2', '{}'),
    ('REPLIES_TO', 'u2', 'u1', '{}'), ('SUPPORTS', 'q1', 'i1', '{}'),
    ('SIMILAR_TO', 'q1', 'q1', '{}'), ('RELATED_TO', 'i1', 'i1', '{}');
UPDATE edges SET props = '{"b":2}';
DELETE FROM edges WHERE kind IN ('NEXT', 'SUPPORTS');
DELETE FROM nodes WHERE id IN ('u1', 'u2', 'q1', 't2');
"""


def test_a_store_with_earlier_change_log_triggers_gets_ones_that_log_the_same(
    tmp_path: Path,
) -> None:
    """Opening a store whose triggers test kinds with IN lists rewrites them; the new ones
    log exactly the entries the old ones logged, so processes of either version follow
    each other's writes."""
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    for path in (old, new):
        EmbeddedStore(path).close()
    names = [f"log_{t}_{op}" for t in ("node", "edge") for op in ("insert", "update", "delete")]

    def triggers(path: Path) -> dict[str, str]:
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger'")
            return dict(rows.fetchall())

    def logged(path: Path) -> list[tuple[str | None, ...]]:
        with sqlite3.connect(path) as db:
            before = db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]
            db.executescript(f"BEGIN;{_WRITES}COMMIT;")
            rows = db.execute(
                "SELECT node, kind, src, dst FROM changes WHERE seq > ? ORDER BY seq", (before,)
            )
            return rows.fetchall()

    with sqlite3.connect(old) as db:  # as gmem wrote the file before (no form in meta)
        db.executescript("".join(f"DROP TRIGGER {name};" for name in names) + _IN_LIST_TRIGGERS)
        db.execute("DELETE FROM meta WHERE key = 'change_log_form'")
    assert triggers(old) != triggers(new)
    by_old, by_new = logged(old), logged(new)
    assert by_old == by_new
    assert len(by_new) == 17  # of 27 row changes: no trace edge, no row without a vector
    EmbeddedStore(old).close()
    assert triggers(old) == triggers(new)
    assert logged(old) == logged(new)  # from the same rows left by the first writes


def test_change_log_triggers_of_a_later_form_are_left_as_they_are(tmp_path: Path) -> None:
    """A newer gmem may log more; this one must not write its own triggers over them."""
    path = tmp_path / "later.db"
    EmbeddedStore(path).close()
    later = (
        "CREATE TRIGGER log_edge_insert AFTER INSERT ON edges "
        "BEGIN INSERT INTO changes (kind, src, dst) VALUES (NEW.kind, NEW.src, NEW.dst); END"
    )
    with sqlite3.connect(path) as db:
        db.executescript(f"DROP TRIGGER log_edge_insert;{later};")
        db.execute("UPDATE meta SET value = '99' WHERE key = 'change_log_form'")
    EmbeddedStore(path).close()
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT sql FROM sqlite_master WHERE name = 'log_edge_insert'")
        (sql,) = row.fetchone()
    assert sql == later
