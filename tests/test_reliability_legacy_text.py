"""Stores written before gmem refused lone UTF-16 surrogates (issue 10): reopening one and
migrating it neither crash nor silently drop or change text.

The legacy store is crafted as the old embedded store wrote it: ``json.dumps`` of the
properties, which escapes a lone surrogate as ``\\udXXX`` inside valid JSON text.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gmem.config import MemoryConfig
from gmem.embedding import HashingEmbedder
from gmem.errors import GmemError
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from gmem.migrate import MigrationError, copy_memory
from graph_store import EmbeddedStore, GraphStore
from graph_store.model import (
    EdgeKind,
    Insight,
    InsightRule,
    Item,
    Node,
    NodeKind,
    Provenance,
    QueryNode,
    Utterance,
)

TASKS = [f"put a clean mug in the cabinet {i}" for i in range(4)]


def _memory(store: object) -> Memory:
    emb = HashingEmbedder()
    cfg = MemoryConfig()
    return Memory(store, embedder=emb, llm=HeuristicLLM(emb, cfg), config=cfg)  # type: ignore[arg-type]


def _legacy_store(path: Path) -> dict[str, str]:
    """Four finished tasks, then lone surrogates written into one query (text and a
    metadata key and value), one utterance and one edge. Returns the changed records."""
    mem = _memory(path)
    for text in TASKS:
        with mem.task(text) as t:
            t.record("a", "actor", "take mug", action="take mug 1 from countertop 1")
            t.record("a", "actor", "store it", action="put mug 1 in/on cabinet 1")
            t.finish(success=True)
    mem.close()
    db = sqlite3.connect(path)
    changed: dict[str, str] = {}
    for kind, field, tail in (("Query", "text", " \udc00"), ("Utterance", "content", " \ud83d!")):
        node_id, props = db.execute(
            "SELECT id, props FROM nodes WHERE kind = ? ORDER BY seq LIMIT 1", (kind,)
        ).fetchone()
        p = json.loads(props)
        p[field] += tail
        if kind == "Query":
            p["metadata"] = {**p["metadata"], "note\ud800": "v\udfff"}
        db.execute("UPDATE nodes SET props = ? WHERE id = ?", (json.dumps(p), node_id))
        changed[kind] = node_id
    src, dst = db.execute("SELECT src, dst FROM edges WHERE kind = 'HAS_TRACE' LIMIT 1").fetchone()
    db.execute(
        "UPDATE edges SET props = ? WHERE kind = 'HAS_TRACE' AND src = ? AND dst = ?",
        (json.dumps({"note": "x\udbff"}), src, dst),
    )
    changed["edge"] = f"HAS_TRACE:{src}->{dst}"
    db.commit()
    db.close()
    return changed


def _snapshot(store: GraphStore) -> dict[str, dict[str, object]]:
    return {n.id: n.props() for kind in NodeKind for n in store.list_nodes(kind, with_vectors=True)}


def test_a_legacy_store_reopens_with_its_text_unchanged(tmp_path: Path) -> None:
    changed = _legacy_store(tmp_path / "old.db")
    store = EmbeddedStore(tmp_path / "old.db")
    q = store.get_node(changed["Query"])
    u = store.get_node(changed["Utterance"])
    assert isinstance(q, QueryNode) and q.text.endswith(" \udc00")
    assert q.metadata["note\ud800"] == "v\udfff"
    assert isinstance(u, Utterance) and u.content.endswith(" \ud83d!")
    mem = _memory(store)
    recalled = mem.recall("put a clean mug in the cabinet")
    assert recalled.queries, "recall found nothing in the reopened store"
    mem.close()


def test_a_finish_that_would_rewrite_legacy_text_is_refused_cleanly(tmp_path: Path) -> None:
    changed = _legacy_store(tmp_path / "old.db")
    mem = _memory(tmp_path / "old.db")
    before = _snapshot(mem.store)
    query = mem.store.get_node(changed["Query"])
    assert isinstance(query, QueryNode)
    with pytest.raises(GmemError, match="--repair-text"), mem.task(TASKS[0]) as t:
        t.record("a", "actor", "take mug", action="take mug 1 from countertop 1")
        t.finish(success=True)
    assert _snapshot(mem.store) == before
    mem.close()


def test_migrating_refuses_before_writing_anything(tmp_path: Path) -> None:
    changed = _legacy_store(tmp_path / "old.db")
    src = EmbeddedStore(tmp_path / "old.db")
    dst = EmbeddedStore(tmp_path / "new.db")
    with pytest.raises(MigrationError, match="3 records hold lone surrogates") as caught:
        copy_memory(src, dst, chunk=3)
    assert changed["Query"] in str(caught.value)
    assert dst.count().total_nodes == 0 and dst.count().total_edges == 0


def test_migrating_with_repair_keeps_everything_and_names_what_changed(
    tmp_path: Path, store: GraphStore
) -> None:
    changed = _legacy_store(tmp_path / "old.db")
    src = EmbeddedStore(tmp_path / "old.db")
    report = copy_memory(src, store, chunk=3, repair_text=True)
    assert sorted(report.repaired) == sorted(changed.values())
    assert report.target == report.source == src.count()
    source, target = _snapshot(src), _snapshot(store)
    assert source.keys() == target.keys()
    for node_id, props in source.items():
        if node_id not in report.repaired:
            assert target[node_id] == props, node_id
    q = store.get_node(changed["Query"])
    u = store.get_node(changed["Utterance"])
    assert isinstance(q, QueryNode) and q.text == TASKS[0] + " \ufffd"
    assert q.metadata["note\ufffd"] == "v\ufffd"
    assert isinstance(u, Utterance) and u.content.endswith(" \ufffd!")
    edge_src, edge_dst = changed["edge"].split(":", 1)[1].split("->")
    (edge,) = [e for e in store.get_edges([edge_src], [EdgeKind.HAS_TRACE]) if e.dst == edge_dst]
    assert edge.props == {"note": "x\ufffd"}
    again = copy_memory(src, store, repair_text=True)  # a rerun is still a clean upsert
    assert again.target == src.count()
    mem = _memory(store)  # the repaired copy takes new finishes of the repaired task
    with mem.task(TASKS[0]) as t:  # its id is the repaired node's
        t.record("a", "actor", "take mug", action="take mug 1 from countertop 1")
        report_finish = t.finish(success=True)
    assert report_finish.attempt == 2


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gmem.cli", "--embedder", "hashing", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow  # several CLI subprocesses
def test_the_cli_reads_and_migrates_a_legacy_store(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    changed = _legacy_store(old)
    for args in (("recall", "put a clean mug in the cabinet"), ("export", "--format", "json")):
        done = _cli("--store", str(old), *args)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    exported = json.loads(_cli("--store", str(old), "export", "--format", "json").stdout)
    assert changed["Query"] in json.dumps(exported)
    refused = _cli("migrate", "--from", str(old), "--to", str(tmp_path / "new.db"))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("error:") and "--repair-text" in refused.stderr
    done = _cli(
        "migrate", "--from", str(old), "--to", str(tmp_path / "new.db"), "--repair-text", "--json"
    )
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(done.stdout)["repaired"]) == sorted(changed.values())


def test_the_store_refuses_a_lone_surrogate_in_a_metadata_key(store: GraphStore) -> None:
    """Not only in values: JSON-mode serialisation would replace one in a key with U+FFFD
    and the store would keep the changed key without a word."""
    node = QueryNode(text="clean the mug", metadata={"note\ud800": "v"})
    with pytest.raises(GmemError, match="lone surrogate"):
        store.put_nodes([node])
    assert store.get_node(node.id) is None


def test_the_store_refuses_a_lone_surrogate_wherever_a_node_holds_text(store: GraphStore) -> None:
    """Free text, optional text, list items, nested models and JSON values alike."""
    qid = QueryNode(text="clean the mug").id
    rule = InsightRule(kind="note", scope=["go to \udfff"])
    nodes: list[Node] = [
        Utterance(query_id=qid, step=0, agent="a", role="r", content="x\ud800y"),
        Utterance(query_id=qid, step=0, agent="a", role="r", content="x", observation="\udfff"),
        Insight(text="wipe first", roles=["actor\ud800"]),
        Insight(text="wipe first", rule=rule),
        Insight(text="wipe first", provenance=[Provenance(operation="add", detail="\ud800")]),
        Item(key="k", value={"list": [1, {"deep": "\ud800"}]}),
        QueryNode(text="clean the mug", metadata={"note": ["fine", "\udbff"]}),
    ]
    for node in nodes:
        with pytest.raises(GmemError, match="lone surrogate"):
            store.put_nodes([node])
        assert store.get_node(node.id) is None
    fine = Insight(text="wipe first", rule=InsightRule(kind="note", scope=["go to sink"]))
    store.put_nodes([fine])
    assert store.get_node(fine.id) == fine
