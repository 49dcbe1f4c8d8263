"""Neo4j Browser shows gmem's memory: saved queries run, and the graph renders styled.

The Browser test drives Debian's Chromium with Playwright (no browser download) against
the Browser that the local server serves at /browser, and keeps a screenshot under
``test-artifacts/`` (or ``$GMEM_TEST_ARTIFACTS``). A missing Chromium or Playwright is a
failure, not a skip: CI installs both.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gmem.cli.browser import saved_queries as saved_queries_in
from gmem.cli.browser import write_zip
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


def saved_queries_of_cli() -> list[Any]:
    return saved_queries_in((PACKAGE / "queries.cypher").read_text())


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
    from graph_store.neo4j import cypher

    style = parse_grass((PACKAGE / "style.grass").read_text())
    for kind in NodeKind:
        rule = style[f"node.{kind.value}"]
        assert rule["color"].startswith("#") and rule["caption"].startswith("{")
    for edge in EdgeKind:
        assert f"relationship.{edge.value}" in style
    colors = {style[f"node.{k.value}"]["color"] for k in NodeKind}
    assert len(colors) == len(NodeKind)  # the tiers and store items are told apart by colour
    # A node expanded by hand shows its vector node: small, grey, captioned "vector".
    for kind in NodeKind:
        rule = style[f"node.{cypher.vector_label(kind)}"]
        assert rule["caption"] == "vector" and rule["color"] not in colors
    assert f"relationship.{cypher.HAS_VECTOR}" in style


def test_saved_queries_run_on_demo_memory(demo_memory: Neo4jStore) -> None:
    queries = saved_queries()
    assert {"One task's trace", "Insights supporting a task", "The hierarchy of a namespace"} <= {
        name for name, _, _ in queries
    }
    for name, params, statement in queries:
        records, _, _ = demo_memory._driver.execute_query(statement, params, database_="neo4j")
        assert records, f"saved query {name!r} returned nothing on the demo memory"


class BrowserPage:
    """A logged-in Neo4j Browser page with gmem's style dropped on it."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def drop(self, data: bytes, name: str) -> None:
        """What a person does with a file: drop it on the Browser (its file-drop zone)."""
        self.page.evaluate(
            """([b64, name]) => {
              const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
              const files = new DataTransfer();
              files.items.add(new File([bytes], name));
              const zone = document.querySelector('.filedrop');
              for (const type of ['dragenter', 'dragover', 'drop']) {
                zone.dispatchEvent(new DragEvent(type, {dataTransfer: files, bubbles: true}));
              }
            }""",
            [base64.b64encode(data).decode(), name],
        )

    def run(self, command: str) -> None:
        self.page.locator("[data-testid=activeEditor]").click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.press("Delete")
        self.page.keyboard.insert_text(command)
        self.page.click("[data-testid=editor-Run]")

    def settle(self) -> int:
        """Wait until the force layout has placed every node; how many there are."""
        self.page.wait_for_selector("svg g.node", state="attached", timeout=30_000)
        nodes, deadline = -1, time.monotonic() + 20
        while time.monotonic() < deadline:
            time.sleep(1)
            count = int(self.page.locator("svg g.node").count())
            if count == nodes:
                break
            nodes = count
        return nodes

    def captions(self) -> list[str]:
        """Each drawn node's caption, as its text lines joined (Browser wraps captions)."""
        return [
            " ".join(t.split())
            for t in self.page.eval_on_selector_all(
                "svg g.node",
                "gs => gs.map(g => Array.from(g.querySelectorAll('text'))"
                ".map(t => t.textContent).join(' '))",
            )
        ]

    def relationship_types(self) -> list[str]:
        return [
            t.strip()
            for t in self.page.eval_on_selector_all(
                "svg g.relationship text", "ts => ts.map(t => t.textContent)"
            )
        ]


@pytest.fixture
def browser_page(demo_memory: Neo4jStore, neo4j_settings: Neo4jSettings) -> Iterator[BrowserPage]:
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("GMEM_CHROMIUM", "/usr/bin/chromium")
    assert shutil.which(chromium), f"{chromium} not found: apt-get install chromium"
    http = os.environ.get("GMEM_NEO4J_HTTP_URL", "http://127.0.0.1:7474").rstrip("/")
    bolt = neo4j_settings.uri.split("://", 1)[1]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{http}/browser/?dbms=neo4j://{bolt}&db=neo4j", wait_until="networkidle")
            page.fill("[data-testid=username]", neo4j_settings.user)
            page.fill("[data-testid=password]", neo4j_settings.password)
            page.click("[data-testid=connect]")
            page.wait_for_selector("text=You are connected", timeout=30_000)
            ui = BrowserPage(page)
            ui.drop((PACKAGE / "style.grass").read_bytes(), "style.grass")
            page.wait_for_function(
                "() => (localStorage.getItem('neo4j.grass') || '').includes('Utterance')",
                timeout=10_000,
            )
            yield ui
        finally:
            browser.close()


def test_browser_renders_the_hierarchy_with_captions_that_tell_nodes_apart(
    browser_page: BrowserPage,
) -> None:
    style = parse_grass((PACKAGE / "style.grass").read_text())
    (_, _, hierarchy) = next(q for q in saved_queries() if q[0] == "The hierarchy of a namespace")
    page = browser_page.page
    shot = ARTIFACTS / "neo4j-browser-hierarchy.png"
    browser_page.run(":param namespace => 'default'")
    page.wait_for_selector("text=Successfully set your parameters", timeout=10_000)
    browser_page.run(hierarchy)
    nodes = browser_page.settle()
    page.screenshot(path=str(shot))
    fills = set(
        page.eval_on_selector_all("svg g.node circle", "cs => cs.map(c => c.getAttribute('fill'))")
    )
    captions = browser_page.captions()
    assert not page.locator("text=Something went wrong").count(), f"Browser crashed; see {shot}"
    assert nodes >= 8  # at least every task (traces have a query of their own)
    tier_colors = {style[f"node.{label}"]["color"].lower() for label in ("Query", "Insight")}
    assert tier_colors <= {(f or "").lower() for f in fills}, "gmem's style was not applied"
    # Captions are the short titles: no insight reads 'For tasks like "...', and most
    # nodes' captions differ (two tasks may share a text; Browser wraps long lines).
    assert captions and not any(c.startswith("For tasks like") for c in captions), captions
    assert len(set(captions)) >= 0.8 * len(captions), captions
    assert shot.stat().st_size > 20_000


def test_browser_shows_a_trace_as_a_numbered_chain(browser_page: BrowserPage) -> None:
    (_, params, trace) = next(q for q in saved_queries() if q[0] == "One task's trace")
    page = browser_page.page
    browser_page.run(f":param search => {json.dumps(params['search'])}")
    page.wait_for_selector("text=Successfully set your parameters", timeout=10_000)
    browser_page.run(trace)
    browser_page.settle()
    page.screenshot(path=str(ARTIFACTS / "neo4j-browser-trace.png"))
    captions = browser_page.captions()
    steps = sorted(int(m[1]) for c in captions if (m := re.match(r"(\d+)\. ", c)))
    # Every message is captioned with its step and role, and the steps run 0, 1, 2, ...
    assert steps and steps[0] == 0 and len(steps) >= 3, captions
    assert set(range(max(steps) + 1)) <= set(steps), captions
    assert "NEXT" in browser_page.relationship_types()


def test_browser_imports_one_favourite_per_saved_query(
    browser_page: BrowserPage, tmp_path: Path
) -> None:
    archive = tmp_path / "gmem-queries.zip"
    write_zip(saved_queries_of_cli(), archive)
    page = browser_page.page
    browser_page.drop(archive.read_bytes(), archive.name)
    page.click("[data-testid=navigationFavorites]")
    page.wait_for_selector("[data-testid^=scriptTitle-]", timeout=10_000)
    titles = page.eval_on_selector_all(
        "[data-testid^=scriptTitle-]", "ts => ts.map(t => t.textContent)"
    )
    names = [name for name, _, _ in saved_queries()]
    assert sorted(t for t in titles if t in names) == sorted(names), titles


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
    records, _, _ = demo_memory._driver.execute_query(trace, params, database_="neo4j")
    messages = {r["u"]["id"]: r["u"] for r in records}
    rels = [rel for r in records if r["talk"] is not None for rel in r["talk"].relationships]
    assert {m["query_id"] for m in messages.values()} == {next(iter(messages.values()))["query_id"]}
    assert 0 in {m["step"] for m in messages.values()}  # the whole trace, from its start
    assert any(r.type == "NEXT" for r in rels)  # the chain the messages follow
    assert all(r.start_node["id"] in messages and r.end_node["id"] in messages for r in rels)


def _inspector_rows(browser_page: BrowserPage, label: str) -> dict[str, str]:
    """The Node properties pane of one node of ``label``, as the Browser shows it when
    the node is clicked: property -> the text of its value."""
    page = browser_page.page
    browser_page.run(f"MATCH (n:{label}) RETURN n LIMIT 1")
    browser_page.settle()
    page.locator("svg g.node").first.click()
    page.wait_for_selector(f"[data-testid=property-details-overview-node-label-{label}]")
    page.screenshot(path=str(ARTIFACTS / f"neo4j-browser-inspector-{label.lower()}.png"))
    rows = page.eval_on_selector_all(
        "[data-testid=viz-details-pane-properties-table] tr",
        "rs => rs.map(r => Array.from(r.querySelectorAll('td')).map(td => td.textContent))",
    )
    return {cells[0].strip(): cells[1].strip() for cells in rows if len(cells) >= 2}


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")


def _is_vector(value: str) -> bool:
    """A list value of numbers (the pane cuts a long one short after a few entries, with
    "Show all", so a 384-float embedding shows as few as 8)."""
    if not value.startswith("["):
        return False
    entries = value.strip("[]").split(",")
    numbers = sum(bool(_NUMBER.fullmatch(v.strip())) for v in entries)
    return numbers >= 5 and numbers >= len(entries) - 1


@pytest.mark.parametrize("label", ["Query", "Insight"])
def test_the_node_inspector_shows_no_vector(browser_page: BrowserPage, label: str) -> None:
    """A clicked task or insight shows what it says (its title and text) and no
    embedding: a 384-float list filled the pane before anything a person reads."""
    rows = _inspector_rows(browser_page, label)
    assert "title" in rows and ("task" in rows or "text" in rows), rows
    vectors = {key: value[:80] for key, value in rows.items() if _is_vector(value)}
    assert not vectors, vectors
    assert not [key for key in rows if "embedding" in key], rows
