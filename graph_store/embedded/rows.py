"""How the embedded store lays values in SQLite rows and bound-parameter lists."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

import numpy as np
import numpy.typing as npt

from graph_store import ops
from graph_store.model import (
    Edge,
    EdgeKind,
    Node,
    Outcome,
    QueryNode,
    Utterance,
    node_from_props,
    trusted,
)

FIELDS: tuple[ops.VectorField, ...] = ("embedding", "graph_embedding")
VECTORS: set[str] = {"embedding", "graph_embedding"}
CHUNK = 500


def to_blob(vec: npt.NDArray[np.float32] | None) -> bytes | None:
    return None if vec is None else np.ascontiguousarray(vec, dtype=np.float32).tobytes()


def from_blob(blob: bytes | None) -> npt.NDArray[np.float32] | None:
    return None if blob is None else np.frombuffer(blob, dtype=np.float32).copy()


def edge_from_row(kind: str, src: str, dst: str, props: str) -> Edge:
    # Ids and kind come from the store itself, so validation would only cost time.
    data = {} if props == "{}" else json.loads(props)
    return trusted(Edge, {"kind": EdgeKind(kind), "src": src, "dst": dst, "props": data})


#: The stored JSON keys of the kinds read by the thousand (a trace's utterances, the
#: queries a recall reaches), in the order the store writes them.
_STORED_KEYS: dict[str, tuple[str, ...]] = {
    cls.kind.value: tuple(f for f in cls.model_fields if f not in VECTORS)
    for cls in (QueryNode, Utterance)
}


def node_from_row(kind: str, props: str, emb: bytes | None, gemb: bytes | None) -> Node:
    """A node from its row.

    An utterance or a query whose JSON holds exactly today's fields (what this store
    wrote after validating it) is rebuilt without validating it again, which was most
    of reading a trace: only what JSON cannot carry is converted (times, outcomes).
    Anything else, rows written by older versions included, is validated.
    """
    data = json.loads(props)
    keys = _STORED_KEYS.get(kind)
    if keys is None or tuple(data) != keys:
        return node_from_props(kind, data, from_blob(emb), from_blob(gemb))
    data["created_at"] = datetime.fromisoformat(data["created_at"])
    cls: type[QueryNode | Utterance] = Utterance
    if kind == QueryNode.kind.value:
        cls = QueryNode
        data["updated_at"] = datetime.fromisoformat(data["updated_at"])
        data["outcome"] = Outcome(data["outcome"])
        data["attempt_outcomes"] = [Outcome(o) for o in data["attempt_outcomes"]]
    data["embedding"] = from_blob(emb)
    data["graph_embedding"] = from_blob(gemb)
    return trusted(cls, {f: data[f] for f in cls.model_fields})


def chunks(ids: list[str]) -> Iterable[list[str]]:
    """Slices short enough for one ``IN (...)`` list of bound parameters."""
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]
