"""Concurrent writers on one Neo4j lose no update (issue 10, item 1): the checks of
tests/test_reliability_concurrency.py against the server."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

from tests.test_reliability_concurrency import _check, _memory, _processes, _work


@pytest.mark.slow
@pytest.mark.neo4j
def test_four_processes_on_one_neo4j_lose_nothing() -> None:
    from graph_store.neo4j import Neo4jStore

    url = os.environ["GMEM_NEO4J_URI"]
    store = Neo4jStore(url)
    store.delete_all()
    store.close()
    reports = _processes(url, 4, 6)
    mem = _memory(url)
    _check(mem.store, reports)
    mem.close()


@pytest.mark.slow
@pytest.mark.neo4j
def test_eight_threads_on_one_neo4j_lose_nothing() -> None:
    from graph_store.neo4j import Neo4jStore

    store = Neo4jStore(os.environ["GMEM_NEO4J_URI"])
    store.delete_all()
    mem = _memory(store)
    results: list[list[dict[str, Any]]] = [[] for _ in range(8)]

    def writer(w: int) -> None:
        results[w] = _work(mem, w, 5)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _check(mem.store, [r for rs in results for r in rs])
    mem.close()
