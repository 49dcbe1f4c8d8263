"""Shared fixtures. The ``store`` fixture runs a test once per storage backend.

The Neo4j backend joins the parametrization when ``GMEM_NEO4J_URI`` is set (``.ci/run``
starts a real server and sets it); a Neo4j test then fails, never skips, if the server is
missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from graph_store import EmbeddedStore, GraphStore, ann

BACKENDS = ["embedded-memory", "embedded-file"]
if ann.available():
    # The embedded file store with every vector search through its approximate index.
    BACKENDS.append("embedded-ann")
if os.environ.get("GMEM_NEO4J_URI"):
    BACKENDS.append("neo4j")


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say so when a backend is left out, so a green run is never mistaken for a full one."""
    if os.environ.get("GMEM_NEO4J_URI"):
        return None
    return (
        "gmem: the Neo4j backend is NOT in this conformance run (GMEM_NEO4J_URI is unset); "
        "`make test` starts a server and runs it"
    )


def run_offline(
    code: str, env_updates: dict[str, str] | None = None, drop: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in a fresh interpreter where any HTTP(S) attempt fails at once
    (the proxy is a port where nothing listens), without the variables in ``drop``."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_updates or {})
    env.update(HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", NO_PROXY="")
    return subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def open_backend(name: str, tmp_path: Path) -> GraphStore:
    if name == "embedded-memory":
        return EmbeddedStore(":memory:")
    if name == "embedded-file":
        return EmbeddedStore(tmp_path / "store.db")
    if name == "embedded-ann":
        return EmbeddedStore(tmp_path / "store.db", ann_min_rows=1)
    from graph_store.errors import StoreUpgradeNeededError
    from graph_store.neo4j import Neo4jStore

    def connect(**options: Any) -> Neo4jStore:
        return Neo4jStore(
            os.environ["GMEM_NEO4J_URI"],
            user=os.environ.get("GMEM_NEO4J_USER", "neo4j"),
            password=os.environ.get("GMEM_NEO4J_PASSWORD", ""),
            database="neo4j",
            **options,
        )

    try:
        store = connect()
    except StoreUpgradeNeededError:  # a test database an older gmem left behind
        old = connect(refuse_old_layout=False)
        old.delete_all()
        old.close()
        store = connect()
    store.delete_all()
    return store


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphStore]:
    backend = open_backend(request.param, tmp_path)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def reopen(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Open a fresh handle on the same backend data (file stores and Neo4j only)."""

    def _reopen(name: str) -> GraphStore:
        if name == "embedded-file":
            return EmbeddedStore(tmp_path / "store.db")
        if name == "embedded-ann":
            return EmbeddedStore(tmp_path / "store.db", ann_min_rows=1)
        from graph_store.neo4j import Neo4jStore

        return Neo4jStore(
            os.environ["GMEM_NEO4J_URI"],
            user=os.environ.get("GMEM_NEO4J_USER", "neo4j"),
            password=os.environ.get("GMEM_NEO4J_PASSWORD", ""),
            database="neo4j",
        )

    return _reopen


@pytest.fixture(scope="session")
def minilm():  # type: ignore[no-untyped-def]
    """The real default embedder as the engine gets it (behind a cache), loaded once per
    test session; tests of the embedder itself use their own, uncached."""
    from gmem.embedding import CachedEmbedder, MiniLMEmbedder

    return CachedEmbedder(MiniLMEmbedder())


@pytest.fixture
def make_memory(minilm):  # type: ignore[no-untyped-def]
    """Build a Memory on an in-memory store with the heuristic reasoner and given config."""
    from gmem.config import MemoryConfig
    from gmem.llm import HeuristicLLM
    from gmem.memory import Memory

    opened = []

    def _make(store: object = ":memory:", **config: object):  # type: ignore[no-untyped-def]
        cfg = MemoryConfig(**config)
        mem = Memory(store, embedder=minilm, llm=HeuristicLLM(minilm, cfg), config=cfg)  # type: ignore[arg-type]
        opened.append(mem)
        return mem

    yield _make
    for mem in opened:
        mem.close()
