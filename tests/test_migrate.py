"""Copying a memory between stores keeps every node, vector and edge."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gmem.embedding import HashingEmbedder
from gmem.migrate import copy_memory
from gmem.trajectory import read_jsonl
from graph_store import EmbeddedStore, NodeKind

FIXTURE = Path(__file__).parent / "fixtures" / "trajectories.jsonl"


def build(path: Path) -> EmbeddedStore:
    from gmem.config import MemoryConfig
    from gmem.llm import HeuristicLLM
    from gmem.memory import Memory

    emb = HashingEmbedder(64)
    cfg = MemoryConfig()
    mem = Memory(EmbeddedStore(path), embedder=emb, llm=HeuristicLLM(emb, cfg), config=cfg)
    for _, traj in read_jsonl(FIXTURE):
        mem.ingest(traj, namespace="team-a")  # type: ignore[arg-type]
    mem.ingest(
        {
            "task": "other team task",
            "success": True,
            "steps": [{"agent": "a", "role": "actor", "content": "x"}],
        },
        namespace="team-b",
    )
    return mem.store  # type: ignore[return-value]


def test_copy_keeps_nodes_vectors_and_edges(tmp_path: Path) -> None:
    src = build(tmp_path / "src.db")
    dst = EmbeddedStore(tmp_path / "dst.db")
    report = copy_memory(src, dst, chunk=7)
    assert report.target == report.source == src.count()
    for kind in NodeKind:
        a = src.list_nodes(kind, with_vectors=True)
        b = {n.id: n for n in dst.list_nodes(kind, with_vectors=True)}
        assert all(b[n.id] == n for n in a)
    q = src.list_nodes(NodeKind.QUERY, namespace="team-a", with_vectors=True)[0]
    assert q.embedding is not None
    assert src.vector_search(NodeKind.QUERY, q.embedding, 3) == dst.vector_search(
        NodeKind.QUERY, q.embedding, 3
    )
    ids = [n.id for n in src.list_nodes(NodeKind.UTTERANCE)]
    assert {e.key for e in src.get_edges(ids, direction="both")} == {
        e.key for e in dst.get_edges(ids, direction="both")
    }
    again = copy_memory(src, dst)  # idempotent: upserts, no duplicates
    assert again.target == src.count()


def test_copy_one_namespace(tmp_path: Path) -> None:
    src = build(tmp_path / "src.db")
    dst = EmbeddedStore(":memory:")
    copy_memory(src, dst, namespace="team-b")
    assert dst.namespaces() == ["team-b"]
    assert dst.count() == src.count("team-b")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gmem.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow  # end to end through a subprocess or the whole demo
def test_cli_migrate_and_its_errors(tmp_path: Path) -> None:
    build(tmp_path / "src.db").close()
    ok = run_cli("migrate", "--from", str(tmp_path / "src.db"), "--to", str(tmp_path / "d.db"))
    assert ok.returncode == 0, ok.stderr
    assert "copied" in ok.stdout
    with EmbeddedStore(tmp_path / "d.db") as copy, EmbeddedStore(tmp_path / "src.db") as orig:
        assert copy.count() == orig.count()
    for args, message in [
        (
            ("--from", str(tmp_path / "missing.db"), "--to", str(tmp_path / "x.db")),
            "no such store file",
        ),
        (("--from", str(tmp_path / "src.db"), "--to", "redis://host"), "unknown store URL"),
        (("--from", str(tmp_path / "src.db"), "--to", str(tmp_path / "src.db")), "same store"),
        (
            ("--from", str(tmp_path / "src.db"), "--to", str(tmp_path / "y.db"), "-n", "nope"),
            "holds no memory",
        ),
    ]:
        bad = run_cli("migrate", *args)
        assert bad.returncode == 2, (args, bad.stderr)
        assert message in bad.stderr and "Traceback" not in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
