"""Where a store lives, read from the one string a user gives (a path or a URL).

The CLI needs to know whether a store is a file (to refuse reading a file that does not
exist, to create its folder) before it opens anything; :func:`open_store` needs the same
answer to pick a backend. Both read it here, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from graph_store.errors import ConfigError

#: URL schemes the Neo4j driver accepts.
NEO4J_SCHEMES = ("neo4j://", "neo4j+s://", "neo4j+ssc://", "bolt://", "bolt+s://", "bolt+ssc://")
MEMORY = ":memory:"


@dataclass(frozen=True, slots=True)
class StoreURL:
    """A parsed store location: which backend, and what it opens.

    ``target`` is the server URL for Neo4j, and a file path or ``:memory:`` for the
    embedded store.
    """

    backend: Literal["embedded", "neo4j"]
    target: str

    @property
    def file(self) -> Path | None:
        """The file behind an embedded store; None for a server or an in-memory store."""
        if self.backend != "embedded" or self.target == MEMORY:
            return None
        return Path(self.target)


def parse_store_url(url: str | Path) -> StoreURL:
    """Read ``path/to/file.db``, ``sqlite:///abs/path.db``, ``:memory:`` or a Neo4j URL.

    ``sqlite://`` with nothing after it (or only ``/``) is an in-memory store, as in
    SQLAlchemy; any other scheme is a :class:`ConfigError` naming the ones that work.
    """
    text = str(url)
    if text.startswith(NEO4J_SCHEMES):
        return StoreURL("neo4j", text)
    if text.startswith("sqlite://"):
        rest = text.removeprefix("sqlite://")
        rest = rest.removeprefix("/") if rest.startswith("//") else rest
        return StoreURL("embedded", rest if rest not in ("", "/") else MEMORY)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise ConfigError(
            f"unknown store URL scheme {scheme!r}: use a file path, sqlite:///path or neo4j://host"
        )
    return StoreURL("embedded", text)
