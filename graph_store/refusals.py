"""The errors a backend raises from inside its transaction, each message written once.

What can be checked before a batch runs is checked in :func:`graph_store.base.check_op`;
what only the data can tell (an edge to a node that is not there, an id stored as another
kind, a node another writer changed) is found by each backend in its own way, and raised
with the same words through these.
"""

from __future__ import annotations

from typing import Any

from graph_store.errors import (
    ConflictError,
    EmbeddingDimensionError,
    NotFoundError,
    UserInputError,
)


def unknown_operation(op: object) -> UserInputError:
    return UserInputError(f"unknown store operation {type(op).__name__}")


def missing_endpoint(edge_kind: str, node_id: str) -> NotFoundError:
    return NotFoundError(f"cannot add {edge_kind} edge: node {node_id} not found")


def kind_clash(node_id: str, stored: str, given: str) -> UserInputError:
    return UserInputError(f"node {node_id} exists as a {stored}, not a {given}")


def changed_by_another_writer(node_id: str) -> ConflictError:
    return ConflictError(
        f"node {node_id} was changed by another writer; nothing was written, recompute and retry"
    )


def wrong_dimension(what: str, vec: Any, dim: int) -> EmbeddingDimensionError:
    return EmbeddingDimensionError(
        f"{what} has dimension {vec.shape[0]}, but this store holds {dim}-d vectors"
        "; it was written with another embedder: use that one, or a new store"
    )
