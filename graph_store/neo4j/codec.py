"""Translation between gmem's models and Neo4j property maps.

Neo4j properties hold scalars and homogeneous lists only, so the nested fields of a node
(``metadata``, an insight's ``provenance`` and ``rule``) are stored as JSON text, and
everything else as native values that read well in Neo4j Browser and in hand-written
Cypher: timestamps are Neo4j ``DATETIME`` values (so ``ORDER BY created_at`` is
chronological), id lists are string lists. Vectors are float lists on the node's vector
node (:func:`vector_props`), not among its own properties. Edge properties are
user-defined JSON, so an edge keeps its native scalars for the Browser and, when any
value is not a plain scalar, the whole map as JSON under :data:`EDGE_JSON_KEY` so that it
reads back exactly.
"""

from __future__ import annotations

import json
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
from pydantic import BaseModel

from graph_store.model import (
    NODE_TYPES,
    Edge,
    EdgeKind,
    Node,
    NodeKind,
    Outcome,
    QueryNode,
    Utterance,
    node_from_props,
    trusted,
)
from graph_store.neo4j.titles import TITLE_KEY, title_of

VECTOR_FIELDS = ("embedding", "graph_embedding")
#: Insertion order of nodes, kept when a node is replaced (``list_nodes`` is oldest first).
SEQ_KEY = "seq"
#: Edge property holding the full JSON map when some value has no native Neo4j type.
EDGE_JSON_KEY = "props_json"
_INT64 = (-(2**63), 2**63 - 1)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_json_field(annotation: Any) -> bool:
    """A field whose values Neo4j cannot hold natively: a mapping, a model (optional or
    not) or a list of models."""
    origin = typing.get_origin(annotation)
    if origin is dict or _is_model(annotation):
        return True
    if origin is list:
        (item,) = typing.get_args(annotation)
        return _is_model(item)
    if origin in (typing.Union, types.UnionType):
        return any(_is_model(arg) for arg in typing.get_args(annotation))
    return False


def _fields_by_type() -> tuple[dict[NodeKind, frozenset[str]], dict[NodeKind, frozenset[str]]]:
    json_fields: dict[NodeKind, frozenset[str]] = {}
    time_fields: dict[NodeKind, frozenset[str]] = {}
    for kind, cls in NODE_TYPES.items():
        fields = cls.model_fields
        json_fields[kind] = frozenset(n for n, f in fields.items() if _is_json_field(f.annotation))
        time_fields[kind] = frozenset(n for n, f in fields.items() if f.annotation is datetime)
    return json_fields, time_fields


JSON_FIELDS, TIME_FIELDS = _fields_by_type()
#: The kinds read by the hundred (a trace's utterances, the queries a recall reaches),
#: each with its stored fields and those of them a node may lack: :func:`node_props`
#: stores no ``None``, so a field whose default is ``None`` is absent when unset.
_TRUSTED: dict[NodeKind, tuple[type[QueryNode | Utterance], frozenset[str], frozenset[str]]] = {
    cls.kind: (
        cls,
        frozenset(f for f in cls.model_fields if f not in VECTOR_FIELDS),
        frozenset(
            f
            for f, info in cls.model_fields.items()
            if f not in VECTOR_FIELDS and info.default is None and info.default_factory is None
        ),
    )
    for cls in (QueryNode, Utterance)
}
#: Every time property of any kind, which node reads return as their parts.
TIME_KEYS = tuple(sorted(set().union(*TIME_FIELDS.values())))


def node_props(node: Node) -> dict[str, Any]:
    """The property map stored for ``node``, without its vectors (see
    :func:`vector_props`); absent (``None``) values are left out."""
    kind = node.kind
    props = node.model_dump(mode="json", exclude=set(VECTOR_FIELDS))
    out: dict[str, Any] = {}
    for key, value in props.items():
        if value is None:
            continue
        if key in JSON_FIELDS[kind]:
            out[key] = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        elif key in TIME_FIELDS[kind]:
            out[key] = getattr(node, key)
        else:
            out[key] = value
    out[TITLE_KEY] = title_of(node)  # Browser's caption; dropped again on read
    return out


def vector_props(node: Node) -> dict[str, list[float]] | None:
    """The property map of ``node``'s vector node: the vectors it has, or None for none."""
    out = {f: vec.tolist() for f in VECTOR_FIELDS if (vec := getattr(node, f)) is not None}
    return out or None


def native_time(value: Any) -> Any:
    to_native = getattr(value, "to_native", None)
    if to_native is None:
        return value
    native = to_native()
    # Bolt hands back a fixed-offset zone; UTC round-trips as the model's own UTC.
    if isinstance(native, datetime) and native.utcoffset() == UTC.utcoffset(None):
        return native.replace(tzinfo=UTC)
    return native


def _time_from_parts(value: Any) -> Any:
    """A time read as its parts (node reads project DATETIME values so, see
    ``cypher._TIMES``), in its stored offset, UTC as UTC."""
    if not isinstance(value, list):
        return native_time(value)
    year, month, day, hour, minute, second, nanosecond, offset = value
    zone = timezone(timedelta(seconds=offset)) if offset else UTC
    return datetime(year, month, day, hour, minute, second, nanosecond // 1000, zone)


def is_live(props: dict[str, Any]) -> bool:
    """False for a node another transaction deleted after this read matched it: under
    Neo4j's read-committed isolation the match still yields it, with its properties gone.
    Readers treat it as absent, as they would had they read a moment later."""
    return props.get("node_kind") is not None and props.get("id") is not None


def node_from_record(
    props: dict[str, Any], with_vectors: bool, vectors: dict[str, Any] | None = None
) -> Node:
    """Rebuild a model from a node's stored properties and, ``with_vectors``, the
    properties of its vector node (None: it has none)."""
    data = dict(props)
    kind = NodeKind(data["node_kind"])
    data.pop(SEQ_KEY, None)
    data.pop(TITLE_KEY, None)
    for key in JSON_FIELDS[kind]:
        if isinstance(data.get(key), str):
            data[key] = json.loads(data[key])
    for key in TIME_KEYS:
        if data.get(key) is None:
            data.pop(key, None)
        elif key in TIME_FIELDS[kind]:
            data[key] = _time_from_parts(data[key])
    found = (vectors or {}) if with_vectors else {}
    emb, gemb = (
        None if (v := found.get(f)) is None else np.asarray(v, dtype=np.float32)
        for f in VECTOR_FIELDS
    )
    return _trusted(kind, data, emb, gemb) or node_from_props(kind, data, emb, gemb)


def _trusted(kind: NodeKind, data: dict[str, Any], emb: Any, gemb: Any) -> Node | None:
    """A query or an utterance that holds today's fields (all but unset optional ones),
    built without validating it again: this store validated it before writing it, and
    validating a trace's utterances was most of the client's CPU in reading them. Only
    what Neo4j cannot carry is converted (outcomes). None for anything else, nodes
    written by older versions included, which :func:`node_from_props` validates."""
    known = _TRUSTED.get(kind)
    if known is None:
        return None
    cls, fields, optional = known
    keys = data.keys()
    if not keys <= fields or not fields - keys <= optional:
        return None
    if cls is QueryNode:
        data["outcome"] = Outcome(data["outcome"])
        data["attempt_outcomes"] = [Outcome(o) for o in data["attempt_outcomes"]]
    data["embedding"], data["graph_embedding"] = emb, gemb
    return trusted(cls, {f: data.get(f) for f in cls.model_fields})


def _native_scalar(value: Any) -> bool:
    if isinstance(value, bool | str | float):
        return True
    return isinstance(value, int) and _INT64[0] <= value <= _INT64[1]


def _native_value(value: Any) -> bool:
    if _native_scalar(value):
        return True
    if isinstance(value, list) and value and all(_native_scalar(v) for v in value):
        return len({type(v) for v in value}) == 1
    return False


def edge_props(props: dict[str, Any]) -> dict[str, Any]:
    """Native properties of an edge, plus the exact JSON when some value is not native."""
    out = {k: v for k, v in props.items() if _native_value(v) and k != EDGE_JSON_KEY}
    if len(out) != len(props):
        out[EDGE_JSON_KEY] = json.dumps(props, separators=(",", ":"), ensure_ascii=False)
    return out


def edge_from_record(kind: str, src: str, dst: str, props: dict[str, Any]) -> Edge:
    data = json.loads(props[EDGE_JSON_KEY]) if EDGE_JSON_KEY in props else dict(props)
    # Ids and kind come from the store itself, so validation would only cost time.
    return trusted(Edge, {"kind": EdgeKind(kind), "src": src, "dst": dst, "props": data})
