"""``gmem export``: the whole memory graph in a format other tools read.

GraphML for Gephi/yEd/networkx, JSON for scripts, and Cypher for loading into Neo4j with
``cypher-shell -f``. The Cypher comes from :mod:`graph_store.neo4j.dump`, which writes
what :class:`Neo4jStore` itself writes, so a loaded export reads back as the same memory.
Vectors are left out everywhere: they are large and an embedder recomputes them.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import networkx as nx

if TYPE_CHECKING:
    from gmem.memory import MemoryGraph

FORMATS = ("graphml", "json", "cypher")


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


def to_json(snap: MemoryGraph) -> str:
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


def to_graphml(snap: MemoryGraph) -> str:
    graph = nx.MultiDiGraph()
    for n in snap.nodes:
        graph.add_node(n.id, **_flat({"kind": n.kind.value, **n.props()}))
    for e in snap.edges:
        graph.add_edge(e.src, e.dst, key=e.kind.value, **_flat({"kind": e.kind.value, **e.props}))
    buffer = io.BytesIO()
    nx.write_graphml(graph, buffer, encoding="utf-8")
    return buffer.getvalue().decode("utf-8")


def render(snap: MemoryGraph, fmt: str) -> str:
    if fmt == "json":
        return to_json(snap)
    if fmt == "graphml":
        return to_graphml(snap)
    from graph_store.neo4j import dump  # the store's own property maps and statements

    return dump.script(snap.nodes, snap.edges)


__all__: Sequence[str] = ["FORMATS", "render", "to_graphml", "to_json"]
