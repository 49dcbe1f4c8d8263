"""``gmem export``: the whole memory graph in a format other tools read.

GraphML for Gephi/yEd/networkx, JSON for scripts, and Cypher for loading into Neo4j with
``cypher-shell -f``. The Cypher is data only: literals are escaped here rather than passed
as parameters, so the file needs no driver and replays the same way every time. Vectors
are left out everywhere: they are large and an embedder recomputes them.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from graph_store.base import GraphStore
from graph_store.model import Edge, Node, NodeKind

FORMATS = ("graphml", "json", "cypher")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Snapshot:
    nodes: list[Node]
    edges: list[Edge]


def snapshot(store: GraphStore, namespace: str | None = None) -> Snapshot:
    """Every node of the three tiers (optionally one namespace) and the edges among them."""
    nodes: list[Node] = []
    for kind in (NodeKind.INSIGHT, NodeKind.QUERY, NodeKind.UTTERANCE):
        nodes.extend(store.list_nodes(kind, namespace))
    ids = {n.id for n in nodes}
    edges = [e for e in store.get_edges(sorted(ids), None, "out") if e.dst in ids] if ids else []
    edges.sort(key=lambda e: (e.kind.value, e.src, e.dst))
    return Snapshot(nodes, edges)


# ---- JSON ------------------------------------------------------------------------------
def _finite(value: Any) -> Any:
    """NaN and infinities as ``null``: JSON has no literal for them (``NaN`` is Python's
    extension, which strict readers reject)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def to_json(snap: Snapshot) -> str:
    data = {
        "nodes": [{"kind": n.kind.value, **n.props()} for n in snap.nodes],
        "edges": [
            {"kind": e.kind.value, "src": e.src, "dst": e.dst, "props": e.props} for e in snap.edges
        ],
    }
    return json.dumps(_finite(data), indent=2, ensure_ascii=False, allow_nan=False)


# ---- GraphML ---------------------------------------------------------------------------
# Characters XML 1.0 cannot hold even escaped: C0 controls but tab, newline and carriage
# return, lone surrogates and the two non-characters U+FFFE/U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    """Text XML can carry: each forbidden character written as a visible ``\\uXXXX``
    escape; in such a text backslashes are doubled first, so escapes read back unambiguously."""
    if not _NOT_XML.search(text):
        return text
    return _NOT_XML.sub(_escape_char, text.replace("\\", "\\\\"))


def _escape_char(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _flat(props: dict[str, Any]) -> dict[str, str | int | float | bool]:
    """GraphML attributes must be scalars: nested values become JSON text, None is dropped,
    and text is made XML-safe (see :func:`_xml_text`)."""
    out: dict[str, str | int | float | bool] = {}
    for key, value in props.items():
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if isinstance(value, str):
            out[_xml_text(key)] = _xml_text(value)
        elif isinstance(value, bool | int | float):
            out[_xml_text(key)] = value
        else:
            # JSON text already escapes controls; a lone surrogate becomes a JSON escape.
            text = json.dumps(_finite(value), ensure_ascii=False, allow_nan=False)
            out[_xml_text(key)] = _NOT_XML.sub(_escape_char, text)
    return out


def to_graphml(snap: Snapshot) -> str:
    graph = nx.MultiDiGraph()
    for n in snap.nodes:
        graph.add_node(n.id, **_flat({"kind": n.kind.value, **n.props()}))
    for e in snap.edges:
        graph.add_edge(e.src, e.dst, key=e.kind.value, **_flat({"kind": e.kind.value, **e.props}))
    buffer = io.BytesIO()
    nx.write_graphml(graph, buffer, encoding="utf-8")
    return buffer.getvalue().decode("utf-8")


# ---- Cypher ----------------------------------------------------------------------------
def cypher_string(text: str) -> str:
    """A single-quoted Cypher string literal that reads back as exactly ``text``."""
    out = []
    for ch in text:
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
        elif ord(ch) < 0x20 or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def cypher_value(value: Any) -> str:
    """A Cypher literal for a property value. Neo4j properties hold scalars or lists of
    one scalar type, so maps and mixed lists are stored as JSON text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return cypher_string(str(value))
        return repr(value)
    if isinstance(value, str):
        return cypher_string(value)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return "[" + ", ".join(cypher_string(v) for v in value) + "]"
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        return "[" + ", ".join(cypher_value(v) for v in value) + "]"
    return cypher_string(json.dumps(value, ensure_ascii=False))


def _key(name: str) -> str:
    return name if _IDENTIFIER.match(name) else "`" + name.replace("`", "``") + "`"


def _map(props: dict[str, Any]) -> str:
    items = [
        f"{_key(k)}: {cypher_value(v)}"
        for k, v in props.items()
        if v is not None and v not in ([], {})
    ]
    return "{" + ", ".join(items) + "}"


def cypher_lines(snap: Snapshot) -> Iterable[str]:
    labels = {n.id: n.kind.value for n in snap.nodes}
    yield "// gmem memory graph: nodes first, then relationships (vectors are not exported)."
    for n in snap.nodes:
        props = {k: v for k, v in n.props().items() if k != "node_kind"}
        yield f"CREATE (:{n.kind.value} {_map(props)});"
    for e in snap.edges:
        rel = f"[:{e.kind.value} {_map(e.props)}]" if e.props else f"[:{e.kind.value}]"
        yield (
            f"MATCH (a:{labels[e.src]} {{id: {cypher_string(e.src)}}}), "
            f"(b:{labels[e.dst]} {{id: {cypher_string(e.dst)}}}) CREATE (a)-{rel}->(b);"
        )


def to_cypher(snap: Snapshot) -> str:
    return "\n".join(cypher_lines(snap)) + "\n"


def render(snap: Snapshot, fmt: str) -> str:
    if fmt == "json":
        return to_json(snap)
    if fmt == "graphml":
        return to_graphml(snap)
    return to_cypher(snap)


__all__: Sequence[str] = [
    "FORMATS",
    "Snapshot",
    "cypher_string",
    "cypher_value",
    "render",
    "snapshot",
    "to_cypher",
    "to_graphml",
    "to_json",
]
