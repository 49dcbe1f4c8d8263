"""`gmem demo` writes only its own namespace and never destroys data it did not write.

Short demo runs (two tasks, hashing embedder) driven in-process, in a scratch folder.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import Result

from gmem.demo.ownership import DEMO_NAMESPACE, DemoStoreError, claim
from graph_store import EmbeddedStore, GraphStore, QueryNode
from tests.cli import gmem

FIXTURES = Path(__file__).parent / "fixtures"


def demo(*args: str | Path) -> Result:
    return gmem("demo", "--tasks", "2", *args)


def stats(store: Path | str) -> dict[str, object]:
    result = gmem("--store", store, "stats", "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture(autouse=True)
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def user_store(path: Path) -> Path:
    assert gmem("--store", path, "ingest", FIXTURES / "trajectories.jsonl").exit_code == 0
    return path


def test_default_demo_store_is_its_own_file_and_recall_after_it_works(scratch: Path) -> None:
    result = gmem("demo", "--tasks", "2")
    assert result.exit_code == 0, result.output
    store = scratch / ".gmem" / "demo.db"
    assert stats(store)["namespaces"] == [DEMO_NAMESPACE]
    assert not (scratch / ".gmem" / "memory.db").exists()
    task = json.loads((scratch / ".gmem" / "demo-summary.json").read_text())["outcomes"][0]["task"]
    # The global option after the command, and no --namespace: the demo's is found.
    recalled = gmem("recall", task, "--store", store, "--json")
    assert recalled.exit_code == 0, recalled.output
    data = json.loads(recalled.stdout)
    assert data["namespace"] == DEMO_NAMESPACE and data["queries"][0]["task"] == task
    # With no --store at all, the error says where the demo's memory is.
    one_line_error(gmem("recall", task), "--store ./.gmem/demo.db")


@pytest.mark.slow  # end to end through a subprocess or the whole demo
def test_a_rerun_replaces_only_what_the_demo_wrote(scratch: Path) -> None:
    assert demo().exit_code == 0
    first = stats(scratch / ".gmem" / "demo.db")
    assert demo().exit_code == 0
    assert stats(scratch / ".gmem" / "demo.db") == first


def test_a_file_that_is_not_a_store_is_left_alone(scratch: Path) -> None:
    notes = scratch / "notes.txt"
    notes.write_text("my notes\n")
    one_line_error(demo("--store", notes), "not a gmem store", "--overwrite")
    assert notes.read_text() == "my notes\n"
    other = scratch / "app.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (1)")
    before = other.read_bytes()
    one_line_error(demo("--store", other), "not a gmem store")
    assert other.read_bytes() == before
    # Asked to, the demo replaces the file.
    replaced = gmem("demo", "--tasks", "2", "--store", notes, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert stats(notes)["namespaces"] == [DEMO_NAMESPACE]


def export(store: Path, namespace: str) -> object:
    result = gmem("--store", store, "export", "--format", "json", "--namespace", namespace)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow  # end to end through a subprocess or the whole demo
def test_a_store_holding_other_memory_is_refused_or_shared(scratch: Path) -> None:
    mine = user_store(scratch / "mine.db")
    before = stats(mine)
    kept = {ns: export(mine, ns) for ns in ("default", "lab")}
    one_line_error(gmem("--store", mine, "demo", "--tasks", "2"), "did not write", "'default'")
    one_line_error(gmem("demo", "--tasks", "2", env={"GMEM_STORE": str(mine)}), "did not write")
    one_line_error(gmem("demo", "--tasks", "2", "--store", mine), "did not write")
    assert stats(mine) == before
    shared = gmem("--store", mine, "demo", "--tasks", "2", "--overwrite")
    assert shared.exit_code == 0, shared.output
    after = stats(mine)
    assert after["namespaces"] == ["default", DEMO_NAMESPACE, "lab"]
    assert {ns: export(mine, ns) for ns in kept} == kept  # the user's memory, node for node
    # A second shared run replaces the demo's namespace and still keeps the others.
    assert gmem("--store", mine, "demo", "--tasks", "2", "--overwrite").exit_code == 0
    assert stats(mine) == after
    assert {ns: export(mine, ns) for ns in kept} == kept


def test_a_demo_namespace_the_demo_did_not_write_is_refused(scratch: Path) -> None:
    mine = scratch / "mine.db"
    assert (
        gmem(
            "--store", mine, "ingest", FIXTURES / "trajectories.jsonl", "-n", DEMO_NAMESPACE
        ).exit_code
        == 0
    )
    before = stats(mine)
    one_line_error(gmem("--store", mine, "demo", "--tasks", "2"), "did not write", "'demo'")
    assert stats(mine) == before


def test_json_summary_is_the_only_output(scratch: Path) -> None:
    result = gmem("demo", "--tasks", "2", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["tasks"] == 2 and data["namespace"] == DEMO_NAMESPACE
    assert data["stats"]["nodes"]["Query"] == 2
    assert Path(data["files"]["summary"]).is_file()


def test_claim_clears_only_demo_made_namespaces(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "s.db") as store:
        _query(store, "demo", {"demo_task": 1})
        _query(store, "old-demo", {"demo_task": 2})
        _query(store, "team", {})
        with pytest.raises(DemoStoreError):
            claim(store, "s.db")
        assert store.namespaces() == ["demo", "old-demo", "team"]
        done = claim(store, "s.db", overwrite=True)
        assert set(done.cleared) == {"demo", "old-demo"} and done.kept == ("team",)
        assert store.namespaces() == ["team"]


def _query(store: GraphStore, namespace: str, metadata: dict[str, object]) -> None:
    store.put_nodes(
        [QueryNode(text=f"task in {namespace}", namespace=namespace, metadata=metadata)]
    )
