"""The Neo4j Browser assets that need no server: the favourites zip and node titles."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from graph_store.model import Insight, Outcome, QueryNode, Utterance
from graph_store.neo4j.titles import shorten, title_of
from tests.cli import gmem

QUERIES = Path(__file__).resolve().parents[1] / "graph_store" / "neo4j" / "queries.cypher"


def test_browser_queries_writes_one_file_per_saved_query(tmp_path: Path) -> None:
    out = tmp_path / "q.zip"
    result = gmem("browser-queries", out, "--json")
    assert result.exit_code == 0, result.output
    names = [
        line[len("// name: ") :].strip()
        for line in QUERIES.read_text().splitlines()
        if line.startswith("// name: ")
    ]
    assert json.loads(result.output)["queries"] == names
    with zipfile.ZipFile(out) as archive:
        files = archive.namelist()
        assert len(files) == len(names) and all(f.endswith(".cypher") for f in files)
        assert all("/" not in f for f in files)  # at the root: no folder in Browser
        # Browser names a favourite by its first line's comment.
        firsts = [archive.read(f).decode().splitlines()[0] for f in files]
        bodies = [archive.read(f).decode() for f in files]
    assert firsts == [f"// {n}" for n in names]
    assert all(body.rstrip().endswith(";") and body.count("// name:") == 0 for body in bodies)


def test_browser_queries_refuses_a_path_it_cannot_write(tmp_path: Path) -> None:
    result = gmem("browser-queries", tmp_path / "missing" / "q.zip")
    assert result.exit_code == 2
    assert "existing folder" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "missing").exists()


def test_titles_tell_nodes_apart() -> None:
    a = Insight(text='For tasks like "heat the mug": the actor should check the microwave.')
    b = Insight(text='For tasks like "heat the mug": the planner should list the rooms first.')
    assert title_of(a) != title_of(b) and not title_of(a).startswith("For tasks like")
    q = QueryNode(text="put a hot apple on the dining table", outcome=Outcome.SUCCESS)
    assert title_of(q) == "✓ put a hot apple on the dining table"
    u = Utterance(query_id=q.id, step=3, agent="a", role="actor", content="x", action="go(1)")
    assert title_of(u) == "3. actor: go(1)"
    long = shorten("word " * 40)
    assert len(long) <= 42 and long.endswith("…")
