"""Rows the embedded store decodes without validating them again decode as validation
would, and rows it did not write in today's shape are still validated."""

from __future__ import annotations

import json

import numpy as np
import pytest

from graph_store.embedded.rows import edge_from_row, node_from_row, to_blob
from graph_store.model import (
    Edge,
    EdgeKind,
    Insight,
    Outcome,
    QueryNode,
    Utterance,
    new_id,
    node_from_props,
)

NODES = [
    QueryNode(
        text="heat the mug",
        outcome=Outcome.FAILURE,
        score=0.5,
        attempts=2,
        successes=1,
        failures=1,
        attempt_outcomes=[Outcome.SUCCESS, Outcome.FAILURE],
        metadata={"k": [1, "x"]},
        embedding=np.arange(4, dtype=np.float32),
    ),
    Utterance(
        query_id=new_id(),
        attempt=2,
        step=3,
        agent="ann",
        role="actor",
        content="open fridge",
        action="open fridge",
        reward=1.0,
        key_step=True,
    ),
    Insight(text="cool it first", supporting=[new_id()]),
]


@pytest.mark.parametrize("node", NODES, ids=lambda n: n.kind.value)
def test_a_row_decodes_as_validation_would(node: QueryNode | Utterance | Insight) -> None:
    props = json.dumps(node.props())
    emb, gemb = to_blob(node.embedding), to_blob(node.graph_embedding)
    fast = node_from_row(node.kind.value, props, emb, gemb)
    slow = node_from_props(node.kind.value, json.loads(props), node.embedding, None)
    assert type(fast) is type(node)
    assert fast == slow == node
    assert fast.props() == node.props()
    assert fast.model_dump_json() == node.model_dump_json()
    if isinstance(fast, QueryNode):
        assert fast.outcome is Outcome.FAILURE  # an enum, not the stored string
        assert all(isinstance(o, Outcome) for o in fast.attempt_outcomes)


def test_a_row_of_an_older_shape_is_validated() -> None:
    node = NODES[1]
    props = node.props()
    del props["tokens"]  # a field added after the row was written: its default applies
    props["step"] = "3"  # and a value only validation converts
    decoded = node_from_row(node.kind.value, json.dumps(props), None, None)
    assert decoded == node
    bad = {**node.props(), "step": -1}
    bad.pop("tokens")
    with pytest.raises(ValueError, match="step"):
        node_from_row(node.kind.value, json.dumps(bad), None, None)


def test_an_edge_row_decodes_as_the_model() -> None:
    a, b = new_id(), new_id()
    assert edge_from_row("SIMILAR_TO", a, b, '{"score": 0.5}') == Edge(
        kind=EdgeKind.SIMILAR_TO, src=a, dst=b, props={"score": 0.5}
    )
    plain = edge_from_row("HAS_TRACE", a, b, "{}")
    assert plain == Edge(kind=EdgeKind.HAS_TRACE, src=a, dst=b)
    assert plain.kind is EdgeKind.HAS_TRACE
