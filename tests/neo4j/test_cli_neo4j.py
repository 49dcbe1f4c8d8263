"""The command line against a real Neo4j: the Cypher export, credentials, the demo's limits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from typer.testing import Result

from graph_store import EmbeddedStore, NodeKind
from graph_store.neo4j import Neo4jStore, dump
from tests.cli import gmem
from tests.neo4j.conftest import Neo4jSettings

FIXTURES = Path(__file__).parents[1] / "fixtures"


def one_line_error(result: Result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def test_cypher_export_loads_into_neo4j_and_reads_back_equal(
    neo4j_store: Neo4jStore, neo4j_settings: Neo4jSettings, tmp_path: Path
) -> None:
    source = tmp_path / "memory.db"
    assert gmem("--store", source, "ingest", FIXTURES / "trajectories.jsonl").exit_code == 0
    out = tmp_path / "memory.cypher"
    assert gmem("--store", source, "export", "-f", "cypher", "-o", out).exit_code == 0
    statements = dump.split(out.read_text(encoding="utf-8"))

    import neo4j

    auth = (neo4j_settings.user, neo4j_settings.password)
    with neo4j.GraphDatabase.driver(neo4j_settings.uri, auth=auth) as driver:
        for _ in range(2):  # a replay converges to the same graph
            with driver.session(database="neo4j") as session:
                for statement in statements:
                    session.run(statement).consume()

    loaded = Neo4jStore(
        neo4j_settings.uri, neo4j_settings.user, neo4j_settings.password, database="neo4j"
    )
    with EmbeddedStore(source) as original, loaded:
        assert loaded.namespaces() == original.namespaces()
        assert loaded.count() == original.count()
        ids: list[str] = []
        for kind in (NodeKind.INSIGHT, NodeKind.QUERY, NodeKind.UTTERANCE):
            want = original.list_nodes(kind)
            assert loaded.list_nodes(kind) == want, kind
            ids += [n.id for n in want]

        def edges(store: EmbeddedStore | Neo4jStore) -> list[tuple[str, str, str, str]]:
            found = store.get_edges(ids, None, "out")
            return sorted((e.kind.value, e.src, e.dst, json.dumps(e.props)) for e in found)

        assert edges(loaded) == edges(original)


def test_credentials_in_the_url_are_used_and_never_shown(neo4j_settings: Neo4jSettings) -> None:
    host = neo4j_settings.uri.split("://", 1)[1]
    scheme = neo4j_settings.uri.split("://", 1)[0]
    secret = quote(neo4j_settings.password, safe="")
    url = f"{scheme}://{neo4j_settings.user}:{secret}@{host}"
    nothing = {"GMEM_NEO4J_PASSWORD": None, "GMEM_NEO4J_USER": None}
    result = gmem("--store", url, "stats", "--json", env=nothing)
    assert result.exit_code == 0, result.output
    wrong = gmem("--store", f"{scheme}://neo4j:not-{secret}@{host}", "stats", env=nothing)
    line = one_line_error(wrong, "rejected user 'neo4j'")
    assert "not-" not in line and neo4j_settings.password not in line


def test_an_unset_password_says_so() -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k != "GMEM_NEO4J_PASSWORD"}
    done = subprocess.run(
        [sys.executable, "-m", "gmem", "--store", os.environ["GMEM_NEO4J_URI"], "stats"],
        check=False,
        capture_output=True,
        text=True,
        env={**env, "GMEM_EMBEDDER": "hashing"},
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs a password" in lines[0], done.stderr
    assert "GMEM_NEO4J_PASSWORD" in lines[0]


def test_the_demo_on_neo4j_keeps_to_its_namespace(
    neo4j_store: Neo4jStore, neo4j_settings: Neo4jSettings, tmp_path: Path
) -> None:
    uri = neo4j_settings.uri

    def demo(*args: str) -> Result:
        return gmem("--store", uri, "demo", "--tasks", "2", "--out", tmp_path, *args)

    assert gmem("--store", uri, "ingest", FIXTURES / "trajectories.jsonl").exit_code == 0
    before = neo4j_store.count("default")
    one_line_error(demo(), "did not write", "'default'")
    assert neo4j_store.namespaces() == ["default", "lab"]
    ran = demo("--overwrite")
    assert ran.exit_code == 0, ran.output
    assert neo4j_store.namespaces() == ["default", "demo", "lab"]
    assert neo4j_store.count("default") == before
    assert demo("--overwrite").exit_code == 0
    assert neo4j_store.count("default") == before
