"""Neo4j Browser shows gmem's memory: saved queries run, and the graph renders styled.

The Browser test drives Debian's Chromium with Playwright (no browser download) against
the Browser that the local server serves at /browser, and keeps a screenshot under
``test-artifacts/`` (or ``$GMEM_TEST_ARTIFACTS``). A missing Chromium or Playwright is a
failure, not a skip: CI installs both.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from gmem.demo.corpus import play
from gmem.embedding import make_embedder
from gmem.memory import Memory
from graph_store.neo4j import Neo4jStore
from tests.neo4j.conftest import Neo4jSettings

PACKAGE = Path(__file__).resolve().parents[2] / "graph_store" / "neo4j"
ARTIFACTS = Path(
    os.environ.get("GMEM_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def saved_queries() -> list[tuple[str, dict[str, object], str]]:
    """(name, example parameters, statement) for each block of queries.cypher."""
    blocks = (PACKAGE / "queries.cypher").read_text().split("// name: ")[1:]
    out = []
    for block in blocks:
        lines = block.splitlines()
        match = re.search(r"^// params: (.*)$", block, re.MULTILINE)
        assert match, f"saved query {lines[0]!r} has no '// params:' line"
        body = [line for line in lines[1:] if not line.lstrip().startswith("//")]
        statement = "\n".join(body).strip()
        assert statement.endswith(";"), f"saved query {lines[0]!r} must end with ';'"
        out.append((lines[0].strip(), json.loads(match.group(1)), statement[:-1]))
    return out


def parse_grass(text: str) -> dict[str, dict[str, str]]:
    """Selector -> properties, reading quoted values (captions hold braces) whole."""
    style: dict[str, dict[str, str]] = {}
    for selector, body in re.findall(r'([\w.\-]+)\s*\{((?:[^}"]|"[^"]*")*)\}', text):
        props = {}
        for key, value in re.findall(r'([\w-]+)\s*:\s*("[^"]*"|[^;]+);', body):
            props[key] = value.strip().strip('"')
        style[selector] = props
    return style


@pytest.fixture
def demo_memory(neo4j_store: Neo4jStore) -> Neo4jStore:
    """The demo team's memory after 30 tasks, in namespace 'default' (fewer hold no insight)."""
    memory = Memory(neo4j_store, embedder=make_embedder("hashing"))
    memory.ingest_many(play(30, seed=3))
    neo4j_store._driver.execute_query(
        "CALL db.index.fulltext.awaitEventuallyConsistentIndexRefresh()", database_="neo4j"
    )
    return neo4j_store


def test_style_covers_every_label_and_relationship_type() -> None:
    from graph_store.model import EdgeKind, NodeKind

    style = parse_grass((PACKAGE / "style.grass").read_text())
    for kind in NodeKind:
        rule = style[f"node.{kind.value}"]
        assert rule["color"].startswith("#") and rule["caption"].startswith("{")
    for edge in EdgeKind:
        assert f"relationship.{edge.value}" in style
    colors = {style[f"node.{k.value}"]["color"] for k in NodeKind}
    assert len(colors) == len(NodeKind)  # the tiers and store items are told apart by colour


def test_saved_queries_run_on_demo_memory(demo_memory: Neo4jStore) -> None:
    queries = saved_queries()
    assert {"One task's trace", "Insights supporting a task", "The hierarchy of a namespace"} <= {
        name for name, _, _ in queries
    }
    for name, params, statement in queries:
        records, _, _ = demo_memory._driver.execute_query(statement, params, database_="neo4j")
        assert records, f"saved query {name!r} returned nothing on the demo memory"


def test_browser_renders_a_saved_query(
    demo_memory: Neo4jStore, neo4j_settings: Neo4jSettings
) -> None:
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("GMEM_CHROMIUM", "/usr/bin/chromium")
    assert shutil.which(chromium), f"{chromium} not found: apt-get install chromium"
    http = os.environ.get("GMEM_NEO4J_HTTP_URL", "http://127.0.0.1:7474").rstrip("/")
    bolt = neo4j_settings.uri.split("://", 1)[1]
    style = parse_grass((PACKAGE / "style.grass").read_text())
    (_, _, hierarchy) = next(q for q in saved_queries() if q[0] == "The hierarchy of a namespace")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "neo4j-browser-hierarchy.png"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{http}/browser/?dbms=neo4j://{bolt}&db=neo4j", wait_until="networkidle")
            page.fill("[data-testid=username]", neo4j_settings.user)
            page.fill("[data-testid=password]", neo4j_settings.password)
            page.click("[data-testid=connect]")
            page.wait_for_selector("text=You are connected", timeout=30_000)
            # What a person does: drop style.grass onto the Browser (its file-drop zone).
            page.evaluate(
                """([text, name]) => {
                  const files = new DataTransfer();
                  files.items.add(new File([text], name));
                  const zone = document.querySelector('.filedrop');
                  for (const type of ['dragenter', 'dragover', 'drop']) {
                    zone.dispatchEvent(new DragEvent(type, {dataTransfer: files, bubbles: true}));
                  }
                }""",
                [(PACKAGE / "style.grass").read_text(), "style.grass"],
            )
            page.wait_for_function(
                "() => (localStorage.getItem('neo4j.grass') || '').includes('Utterance')",
                timeout=10_000,
            )

            def run(command: str) -> None:
                page.locator("[data-testid=activeEditor]").click()
                page.keyboard.press("Control+A")
                page.keyboard.press("Delete")
                page.keyboard.insert_text(command)
                page.click("[data-testid=editor-Run]")

            run(":param namespace => 'default'")
            page.wait_for_selector("text=Successfully set your parameters", timeout=10_000)
            run(hierarchy)
            page.wait_for_selector("svg g.node", state="attached", timeout=30_000)
            nodes, deadline = -1, time.monotonic() + 20
            while time.monotonic() < deadline:  # until the force layout has placed them all
                time.sleep(1)
                count = page.locator("svg g.node").count()
                if count == nodes:
                    break
                nodes = count
            page.screenshot(path=str(shot))
            fills = set(
                page.eval_on_selector_all(
                    "svg g.node circle", "cs => cs.map(c => c.getAttribute('fill'))"
                )
            )
            crashed = page.locator("text=Something went wrong").count()
        finally:
            browser.close()
    assert not crashed, f"Neo4j Browser crashed; see {shot}"
    assert nodes >= 8  # at least every task (traces have a query of their own)
    # The hierarchy shows tasks and their insights (traces have a query of their own).
    tier_colors = {style[f"node.{label}"]["color"].lower() for label in ("Query", "Insight")}
    assert tier_colors <= {(f or "").lower() for f in fills}, "gmem's style was not applied"
    assert shot.stat().st_size > 20_000


def _paths(store: Neo4jStore, statement: str, params: dict[str, object]) -> list[object]:
    records, _, _ = store._driver.execute_query(statement, params, database_="neo4j")
    return [value for record in records for value in record.values() if value is not None]


def test_saved_queries_return_what_they_say(demo_memory: Neo4jStore) -> None:
    queries = {name: (params, statement) for name, params, statement in saved_queries()}
    params, hierarchy = queries["The hierarchy of a namespace"]
    paths = _paths(demo_memory, hierarchy, params)
    labels = {label for p in paths for n in p.nodes for label in n.labels}  # type: ignore[attr-defined]
    tasks = {n["id"] for p in paths for n in p.nodes if "Query" in n.labels}  # type: ignore[attr-defined]
    assert 0 < len(tasks) <= 10 and "Utterance" not in labels

    params, trace = queries["One task's trace"]
    paths = _paths(demo_memory, trace, params)
    rels = [r for p in paths for r in p.relationships]  # type: ignore[attr-defined]
    starts = {r.end_node["id"] for r in rels if r.type == "HAS_TRACE"}
    first_steps = {r.end_node["step"] for r in rels if r.type == "HAS_TRACE"}
    assert starts and first_steps == {0}  # one link per attempt, to its first message
    assert any(r.type == "NEXT" for r in rels)  # the chain the messages follow
    queries_seen = {n["id"] for p in paths for n in p.nodes if "Query" in n.labels}  # type: ignore[attr-defined]
    assert len(queries_seen) == 1
