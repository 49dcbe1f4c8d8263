"""Fixtures for the tests that need a real Neo4j server.

They run when ``GMEM_NEO4J_URI`` is set (``eval "$(graph_store/neo4j/server.sh env)"``
sets it for the local server) and then fail, never skip, when the server is missing.
Without the variable they are deselected, so a plain ``pytest`` on a machine without
Neo4j still runs everything else.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from graph_store.errors import StoreUpgradeNeededError
from graph_store.neo4j import Neo4jStore
from tests.services import require_service

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Neo4jSettings:
    uri: str
    user: str
    password: str

    def open(self, **options: Any) -> Neo4jStore:
        return Neo4jStore(
            self.uri, user=self.user, password=self.password, database="neo4j", **options
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    require_service(config, items, HERE, pytest.mark.neo4j, "GMEM_NEO4J_URI")


@pytest.fixture(scope="session")
def neo4j_settings() -> Neo4jSettings:
    return Neo4jSettings(
        uri=os.environ["GMEM_NEO4J_URI"],
        user=os.environ.get("GMEM_NEO4J_USER", "neo4j"),
        password=os.environ.get("GMEM_NEO4J_PASSWORD", ""),
    )


@pytest.fixture
def neo4j_store(neo4j_settings: Neo4jSettings) -> Iterator[Neo4jStore]:
    try:
        store = neo4j_settings.open()
    except StoreUpgradeNeededError:  # a test database an older gmem left behind
        old = neo4j_settings.open(refuse_old_layout=False)
        old.delete_all()
        old.close()
        store = neo4j_settings.open()
    store.delete_all()
    try:
        yield store
    finally:
        store.close()
