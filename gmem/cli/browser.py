"""``gmem browser-queries``: gmem's saved Neo4j Browser queries as a zip to drop on Browser.

Neo4j Browser turns a dropped ``.cypher`` file into one favourite, however many
statements it holds, and a dropped ``.zip`` into one favourite per ``.cypher`` file in it,
named by each file's first ``//`` line. ``graph_store/neo4j/queries.cypher`` keeps every
query in one file (it also runs with ``cypher-shell -f``), so this command splits it into
one file per ``// name:`` block.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from gmem.errors import UserInputError


@dataclass(frozen=True)
class SavedQuery:
    name: str
    text: str  # the block as a favourite holds it: its name line, notes and statement


def saved_queries(source: str) -> list[SavedQuery]:
    """The ``// name:`` blocks of a queries file, each with its comment lines."""
    out = []
    for block in re.split(r"^// name: ", source, flags=re.MULTILINE)[1:]:
        name, _, rest = block.partition("\n")
        out.append(SavedQuery(name.strip(), f"// {name.strip()}\n{rest.strip()}\n"))
    return out


def _filename(name: str, taken: set[str]) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "query"
    candidate, n = stem, 2
    while candidate in taken:
        candidate, n = f"{stem}-{n}", n + 1
    taken.add(candidate)
    return f"{candidate}.cypher"


def write_zip(queries: list[SavedQuery], path: Path) -> list[str]:
    """One ``.cypher`` file per query at the zip's root (Browser files them unfoldered)."""
    names: list[str] = []
    taken: set[str] = set()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for query in queries:
            filename = _filename(query.name, taken)
            archive.writestr(filename, query.text)
            names.append(filename)
    return names


def browser_queries(
    output: Annotated[Path, typer.Argument(help="The zip to write.", show_default=True)] = Path(
        "gmem-queries.zip"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Write gmem's saved Neo4j Browser queries as a zip: drop it on Browser for one
    favourite per query (drop graph_store/neo4j/style.grass for gmem's colours and captions).

    Example: gmem browser-queries gmem-queries.zip
    """
    if output.is_dir() or not output.parent.expanduser().resolve().is_dir():
        raise UserInputError(f"cannot write {output}: give a file path in an existing folder")
    source = resources.files("graph_store.neo4j").joinpath("queries.cypher").read_text("utf-8")
    queries = saved_queries(source)
    files = write_zip(queries, output)
    if as_json:
        typer.echo(json.dumps({"output": str(output), "queries": [q.name for q in queries]}))
    else:
        typer.echo(f"Wrote {len(files)} saved queries to {output}; drop it on Neo4j Browser.")
