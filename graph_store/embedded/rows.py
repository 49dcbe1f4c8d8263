"""How the embedded store lays values in SQLite rows and bound-parameter lists."""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from graph_store import ops
from graph_store.model import Edge, EdgeKind

FIELDS: tuple[ops.VectorField, ...] = ("embedding", "graph_embedding")
VECTORS: set[str] = {"embedding", "graph_embedding"}
CHUNK = 500


def to_blob(vec: npt.NDArray[np.float32] | None) -> bytes | None:
    return None if vec is None else np.ascontiguousarray(vec, dtype=np.float32).tobytes()


def from_blob(blob: bytes | None) -> npt.NDArray[np.float32] | None:
    return None if blob is None else np.frombuffer(blob, dtype=np.float32).copy()


def edge_from_row(kind: str, src: str, dst: str, props: str) -> Edge:
    return Edge.model_construct(kind=EdgeKind(kind), src=src, dst=dst, props=json.loads(props))


def chunks(ids: list[str]) -> Iterable[list[str]]:
    """Slices short enough for one ``IN (...)`` list of bound parameters."""
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]
