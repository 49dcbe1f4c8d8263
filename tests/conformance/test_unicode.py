"""Unicode is handled the same on every backend: lone surrogates are refused, NUL and
other control characters in free text are stored and read back as they were."""

from __future__ import annotations

import pytest

from graph_store import GraphStore
from graph_store.errors import UserInputError
from graph_store.model import QueryNode, Utterance


@pytest.mark.parametrize("text", ["bad \ud800 text", "\udfff"])
def test_lone_surrogates_are_refused_and_nothing_is_written(store: GraphStore, text: str) -> None:
    q = QueryNode(text="clean the mug")
    u = Utterance(query_id=q.id, step=0, agent="a", role="r", content=text)
    with pytest.raises(UserInputError, match="lone surrogate"):
        store.put_nodes([q, u])
    assert store.get_node(q.id) is None


def test_control_characters_and_line_separators_round_trip(store: GraphStore) -> None:
    text = "nul \x00 bell \x07 ls \u2028 nel \u0085 [/bold]"
    q = QueryNode(text="clean the mug")
    u = Utterance(query_id=q.id, step=0, agent="a", role="r", content=text)
    store.put_nodes([q, u])
    got = store.get_node(u.id)
    assert isinstance(got, Utterance) and got.content == text
