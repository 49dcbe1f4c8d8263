"""The three-tier data model, re-exported from :mod:`graph_store.model` (its single home)."""

from graph_store.model import (
    DEFAULT_NAMESPACE,
    Edge,
    EdgeKind,
    Insight,
    InsightRule,
    Item,
    Node,
    NodeKind,
    Outcome,
    Provenance,
    QueryNode,
    RuleEvidence,
    Utterance,
    new_id,
    normalize_text,
    query_id_for,
)

__all__ = [
    "DEFAULT_NAMESPACE",
    "Edge",
    "EdgeKind",
    "Insight",
    "InsightRule",
    "Item",
    "Node",
    "NodeKind",
    "Outcome",
    "Provenance",
    "QueryNode",
    "RuleEvidence",
    "Utterance",
    "new_id",
    "normalize_text",
    "query_id_for",
]
