"""``gmem upgrade``: bring a store written by an older gmem to the current layout, in place.

Today only Neo4j stores need it: those written before vectors moved to their own nodes
(see docs/neo4j.md, "Upgrading a store"). Embedded stores upgrade their own schema when
opened, so for them the command only says so.
"""

from __future__ import annotations

from typing import Annotated

import typer

from gmem.cli import render
from gmem.cli.settings import settings
from gmem.errors import NotFoundError
from graph_store.redact import redact_url
from graph_store.url import parse_store_url


def upgrade(
    ctx: typer.Context,
    batch: Annotated[
        int,
        typer.Option("--batch", min=1, help="Nodes per transaction while vectors move."),
    ] = 5000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Upgrade a store written by an older gmem, in place (stop its writers first).

    Safe to interrupt and to run again: a rerun finishes what was left and changes
    nothing on a current store.

    Example: gmem upgrade --store bolt://127.0.0.1:7687
    """
    url = settings(ctx).store
    shown = redact_url(url)
    where = parse_store_url(url)
    if where.backend == "embedded":
        if where.file is not None and not where.file.exists():
            raise NotFoundError(f"no gmem store at {where.file}; pass --store")
        line = f"{shown}: nothing to upgrade (embedded stores upgrade themselves when opened)"
        _say(as_json, {"store": shown, "changed": False}, line)
        return
    from graph_store.neo4j import Neo4jStore
    from graph_store.neo4j.upgrade import upgrade as upgrade_neo4j

    with (
        Neo4jStore(where.target, refuse_old_layout=False) as store,
        render.progress("upgrade") as bar,
    ):
        report = upgrade_neo4j(
            store, batch=batch, progress=lambda _what, done, total: bar.update(done, total)
        )
    moved = sum(report.moved.values())
    data = {
        "store": shown,
        "changed": report.changed,
        "moved": report.moved,
        "built": report.built,
        "dropped": report.dropped,
        "move_seconds": round(report.move_s, 1),
        "index_seconds": round(report.index_s, 1),
    }
    if not report.changed:
        _say(as_json, data, f"{shown}: already current, nothing to upgrade")
        return
    _say(
        as_json,
        data,
        f"{shown}: moved the vectors of {moved} nodes onto vector nodes in "
        f"{report.move_s:.1f} s, built {len(report.built)} vector indexes in "
        f"{report.index_s:.1f} s, dropped {len(report.dropped)} old ones; the store is current",
    )


def _say(as_json: bool, data: dict[str, object], line: str) -> None:
    if as_json:
        render.emit_json(data)
    else:
        render.console().print(line, markup=False)
