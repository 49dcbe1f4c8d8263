"""Decoding Neo4j records into models without a server: the codec alone.

A record is built here as a node read returns it (``codec.node_props``, times as their
parts, the Browser's title and ``seq`` among the properties, the vector node's map
apart). Queries and utterances of today's fields are built without validating them
again; they must equal what validating gives, and anything else must be validated.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

from graph_store import Insight, Node, Outcome, QueryNode, Utterance
from graph_store.model import NODE_TYPES, query_id_for
from graph_store.neo4j import codec


def _parts(at: datetime) -> list[int]:
    offset = at.utcoffset()
    seconds = 0 if offset is None else int(offset.total_seconds())
    return [
        at.year,
        at.month,
        at.day,
        at.hour,
        at.minute,
        at.second,
        at.microsecond * 1000,
        seconds,
    ]


def _record(node: Node) -> tuple[dict[str, Any], dict[str, Any] | None]:
    props = codec.node_props(node)
    props["seq"] = 17
    for key in codec.TIME_KEYS:
        if isinstance(props.get(key), datetime):
            props[key] = _parts(props[key])
    return props, codec.vector_props(node)


def _nodes() -> list[Node]:
    v = np.arange(4, dtype=np.float32) / 4
    plain = QueryNode(id=query_id_for("default", "fetch the key"), text="fetch the key")
    done = QueryNode(
        text="heat the apple",
        namespace="team-a",
        outcome=Outcome.FAILURE,
        score=0.25,
        attempts=2,
        successes=1,
        failures=1,
        attempt_outcomes=[Outcome.SUCCESS, Outcome.FAILURE],
        metadata={"source": "alfworld", "n": [1, 2]},
        created_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2))),
        embedding=v,
        graph_embedding=v[::-1].copy(),
    )
    step = Utterance(query_id=done.id, step=3, agent="a", role="actor", content="go to fridge")
    full = Utterance(
        query_id=done.id,
        attempt=2,
        step=0,
        agent="planner-1",
        role="planner",
        content="plan",
        tokens=12,
        action="open fridge",
        observation="it is open",
        reward=0.5,
        key_step=True,
        metadata={"k": {"nested": True}},
        embedding=v,
    )
    return [plain, done, step, full, Insight(text="a lesson", score=2.0, embedding=v)]


@pytest.mark.parametrize("with_vectors", [False, True])
def test_decoded_nodes_equal_the_validated_ones(with_vectors: bool) -> None:
    for node in _nodes():
        props, vectors = _record(node)
        got = codec.node_from_record(props, with_vectors, vectors)
        want = node if with_vectors else node.model_copy(update=dict.fromkeys(codec.VECTOR_FIELDS))
        assert got == want
        assert type(got) is type(node)
        assert got.model_dump() == want.model_dump()
        assert got.created_at.tzinfo is not None and got.created_at == node.created_at
        if isinstance(got, QueryNode):
            assert all(isinstance(o, Outcome) for o in [got.outcome, *got.attempt_outcomes])


def test_only_todays_queries_and_utterances_skip_validation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A record of today's fields is not validated again; an older one (a field it
    predates is missing, or one unknown to this version is present) still is."""
    validated: list[str] = []
    for cls in NODE_TYPES.values():
        real = cls.model_validate

        def spy(data: Any, *a: Any, _real: Any = real, **kw: Any) -> Any:
            validated.append(str(data.get("node_kind")))
            return _real(data, *a, **kw)

        monkeypatch.setattr(cls, "model_validate", spy)
    for node in _nodes():
        codec.node_from_record(*_record(node)[:1], False)
    assert validated == ["Insight"]
    validated.clear()
    older, _ = _record(_nodes()[2])
    del older["key_step"]
    assert codec.node_from_record(older, False).key_step is False  # type: ignore[union-attr]
    newer, _ = _record(_nodes()[0])
    newer["from_the_future"] = 1
    with pytest.raises(ValueError):
        codec.node_from_record(newer, False)
    assert validated == ["Utterance", "Query"]
