"""Concurrent writers on one Neo4j lose no update and its readers never raise (issue 10,
item 1): the checks of tests/test_reliability_concurrency.py against the server, with a
reader on its own handle recalling throughout."""

from __future__ import annotations

import os

import pytest

from tests.test_reliability_concurrency import (
    _check,
    _memory,
    run_processes,
    run_threads,
    tasks_per_writer,
)


def _empty_database(url: str) -> None:
    from graph_store.neo4j import Neo4jStore

    store = Neo4jStore(url)
    store.delete_all()
    store.close()


@pytest.mark.slow
@pytest.mark.neo4j
def test_four_processes_on_one_neo4j_lose_nothing() -> None:
    url = os.environ["GMEM_NEO4J_URI"]
    _empty_database(url)
    reports = run_processes(url, 4, tasks_per_writer(4, 6))
    mem = _memory(url)
    insights, updates = _check(mem.store, reports)
    assert insights and updates  # the workload did touch shared insights
    mem.close()


@pytest.mark.slow
@pytest.mark.neo4j
def test_eight_threads_on_one_neo4j_lose_nothing() -> None:
    url = os.environ["GMEM_NEO4J_URI"]
    _empty_database(url)
    mem = _memory(url)
    reports = run_threads(mem, url, 8, tasks_per_writer(8, 5))
    insights, updates = _check(mem.store, reports)
    assert insights and updates
    mem.close()
