"""One reading of a store location, shared by ``open_store`` and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from graph_store import parse_store_url
from graph_store.errors import ConfigError


@pytest.mark.parametrize(
    ("url", "backend", "target", "file"),
    [
        ("memory.db", "embedded", "memory.db", Path("memory.db")),
        ("./.gmem/m.db", "embedded", "./.gmem/m.db", Path(".gmem/m.db")),
        (":memory:", "embedded", ":memory:", None),
        ("sqlite://", "embedded", ":memory:", None),
        ("sqlite:///", "embedded", ":memory:", None),
        ("sqlite://rel.db", "embedded", "rel.db", Path("rel.db")),
        ("sqlite:////abs/m.db", "embedded", "/abs/m.db", Path("/abs/m.db")),
        ("neo4j://host:7687", "neo4j", "neo4j://host:7687", None),
        ("bolt+s://host", "neo4j", "bolt+s://host", None),
    ],
)
def test_locations(url: str, backend: str, target: str, file: Path | None) -> None:
    where = parse_store_url(url)
    assert (where.backend, where.target, where.file) == (backend, target, file)


def test_unknown_scheme_names_the_ones_that_work() -> None:
    with pytest.raises(ConfigError, match=r"'redis'.*sqlite:///path or neo4j://host"):
        parse_store_url("redis://localhost")
