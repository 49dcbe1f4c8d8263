"""A Cypher script that rebuilds a memory in Neo4j exactly as :class:`Neo4jStore` writes it.

``gmem export --format cypher`` writes it; ``cypher-shell -f`` (or any driver, one
statement at a time) loads it, and a :class:`Neo4jStore` opened on that database reads
back the same nodes and edges. That is why it lives beside the store: the property maps
come from :mod:`graph_store.neo4j.codec` (``node_kind``, ``seq``, JSON-text fields,
``DATETIME`` timestamps) and the statements from :mod:`graph_store.neo4j.cypher`, so the
two cannot drift apart. Values are written as escaped literals instead of parameters;
vectors are left out (they are large and an embedder recomputes them), so a loaded dump
serves the Browser and Cypher at once and recall after the embeddings are rebuilt.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from graph_store.model import Edge, EdgeKind, Node, NodeKind
from graph_store.neo4j import codec, cypher

#: Rows per statement: large enough that a load is a few statements per thousand nodes,
#: small enough that one statement stays a modest transaction.
ROWS_PER_STATEMENT = 200


def string(text: str) -> str:
    """A single-quoted Cypher string literal that reads back as exactly ``text``."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def literal(value: Any) -> str:
    """A Cypher literal for a value :mod:`codec` produces: a scalar, a ``datetime``, a
    homogeneous list of them, or a map of those (the rows)."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, datetime):
        return f"datetime({string(value.isoformat())})"
    return _scalar(value)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return string(value)
    raise TypeError(f"no Cypher literal for {type(value).__name__}")


def _float(value: float) -> str:
    """Cypher has no literal for NaN or the infinities; these expressions evaluate to them."""
    if math.isnan(value):
        return "(0.0 / 0.0)"
    if math.isinf(value):
        return "(1.0 / 0.0)" if value > 0 else "(-1.0 / 0.0)"
    return repr(value)


def _key(name: str) -> str:
    plain = name.isidentifier() and name.isascii()
    return name if plain else "`" + name.replace("`", "``") + "`"


def _node_row(node: Node, seq: int) -> dict[str, Any]:
    props = codec.node_props(node)  # never the vectors: they live on vector nodes
    props[codec.SEQ_KEY] = seq
    return {"id": node.id, "props": props}


def _statements(template: str, rows: Sequence[dict[str, Any]]) -> Iterator[str]:
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        listed = "[\n  " + ",\n  ".join(literal(r) for r in chunk) + "\n]"
        yield template.replace("$rows", listed, 1) + ";"


def statements(nodes: Iterable[Node], edges: Iterable[Edge]) -> Iterator[str]:
    """The script, one statement per item: the schema (idempotent), then nodes by kind in
    the order given, then edges by kind. Each statement ends with ``;`` at the end of a
    line, and no other line does."""
    yield from (f"{s};" for s in cypher.SCHEMA)
    by_kind: dict[NodeKind, list[dict[str, Any]]] = {}
    for seq, node in enumerate(nodes, start=1):
        by_kind.setdefault(node.kind, []).append(_node_row(node, seq))
    for kind in NodeKind:
        yield from _statements(cypher.DUMP_NODES[kind], by_kind.get(kind, []))
    rels: dict[EdgeKind, list[dict[str, Any]]] = {}
    for e in edges:
        rels.setdefault(e.kind, []).append(
            {"src": e.src, "dst": e.dst, "props": codec.edge_props(e.props)}
        )
    for rel in EdgeKind:
        yield from _statements(cypher.DUMP_EDGES[rel], rels.get(rel, []))


def script(nodes: Iterable[Node], edges: Iterable[Edge]) -> str:
    head = (
        "// gmem memory graph for Neo4j: schema, nodes, then relationships; vectors are not "
        "included.\n// Load with: cypher-shell -f FILE (replaying it converges to the same graph)."
    )
    return head + "\n" + "\n".join(statements(nodes, edges)) + "\n"


def split(text: str) -> list[str]:
    """The statements of a script, for loading it through a driver (no cypher-shell)."""
    out: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if not current and (not line.strip() or line.startswith("//")):
            continue
        current.append(line)
        if line.endswith(";"):
            out.append("\n".join(current)[:-1])
            current = []
    return out


__all__ = ["ROWS_PER_STATEMENT", "literal", "script", "split", "statements", "string"]
