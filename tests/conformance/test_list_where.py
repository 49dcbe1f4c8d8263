"""``ListNodes`` with conditions and paging behaves the same on every backend."""

from __future__ import annotations

import hashlib

import pytest

from graph_store import GraphStore, Item, NodeKind
from graph_store.errors import UserInputError
from graph_store.ops import ListNodes, Where


def item(key: str, ns: str = "lg", **value: object) -> Item:
    return Item(id=item_id(ns, key), namespace=ns, key=key, value=value)


def item_id(ns: str, key: str) -> str:
    return hashlib.sha256(f"{ns}/{key}".encode()).hexdigest()[:32]


@pytest.fixture
def filled(store: GraphStore) -> GraphStore:
    store.put_nodes(
        [
            item("a", n=1, tag="x", meta={"lang": "py"}),
            item("b", n="2", tag="y", meta={"lang": "rs"}),
            item("c", n=3, tag="x"),
            item("d", tag="x", when="2026-01-02T00:00:00+00:00"),
            item("e", n=5, tag="x", when="2026-03-01T00:00:00+00:00", meta={"lang": "py"}),
            item("z", ns="other", n=9, tag="x"),
        ]
    )
    return store


def keys(store: GraphStore, *where: Where, limit: int | None = None, offset: int = 0) -> list[str]:
    nodes = store.list_nodes(NodeKind.ITEM, "lg", where=where, limit=limit, offset=offset)
    return [n.key for n in nodes if isinstance(n, Item)]


def test_equality_reaches_nested_values_and_keeps_the_order(filled: GraphStore) -> None:
    assert keys(filled, Where(("value", "tag"), "eq", "x")) == ["a", "c", "d", "e"]
    assert keys(filled, Where(("value", "meta", "lang"), "eq", "py")) == ["a", "e"]
    assert keys(filled, Where(("value", "meta"), "eq", {"lang": "rs"})) == ["b"]


def test_a_missing_value_reads_as_none(filled: GraphStore) -> None:
    assert keys(filled, Where(("value", "n"), "eq", None)) == ["d"]
    assert keys(filled, Where(("value", "meta", "lang"), "ne", "py")) == ["b", "c", "d"]
    # A path through a non-map value finds nothing.
    assert keys(filled, Where(("value", "tag", "deeper"), "eq", None)) == ["a", "b", "c", "d", "e"]


def test_ordering_is_numeric_for_numbers_and_textual_for_other_strings(
    filled: GraphStore,
) -> None:
    # "2" is a numeric string: it compares as the number 2.
    assert keys(filled, Where(("value", "n"), "gt", 1)) == ["b", "c", "e"]
    assert keys(filled, Where(("value", "n"), "lte", 3)) == ["a", "b", "c"]
    assert keys(filled, Where(("value", "when"), "gte", "2026-02-01")) == ["e"]
    # A number against a non-numeric string never holds.
    assert keys(filled, Where(("value", "tag"), "gt", 0)) == []


def test_or_none_lets_nodes_without_the_value_through(filled: GraphStore) -> None:
    later = Where(("value", "when"), "gt", "2026-02-01", or_none=True)
    assert keys(filled, later) == ["a", "b", "c", "e"]


def test_conditions_combine_and_paging_counts_only_passing_nodes(filled: GraphStore) -> None:
    tag = Where(("value", "tag"), "eq", "x")
    assert keys(filled, tag, Where(("value", "n"), "gte", 3)) == ["c", "e"]
    assert keys(filled, tag, limit=2) == ["a", "c"]
    assert keys(filled, tag, offset=1, limit=2) == ["c", "d"]
    assert keys(filled, tag, offset=3) == ["e"]
    assert keys(filled, tag, offset=9) == []
    assert keys(filled, limit=2, offset=3) == ["d", "e"]
    everywhere = filled.list_nodes(NodeKind.ITEM, where=[Where(("value", "n"), "eq", 9)])
    assert [n.id for n in everywhere] == [item_id("other", "z")]


def test_bad_conditions_and_negative_paging_are_refused(filled: GraphStore) -> None:
    with pytest.raises(UserInputError):
        filled.batch([ListNodes(NodeKind.ITEM, where=[Where((), "eq", 1)])])
    with pytest.raises(UserInputError):
        filled.batch([ListNodes(NodeKind.ITEM, where=[Where(("value",), "like", 1)])])  # type: ignore[arg-type]
    with pytest.raises(UserInputError):
        filled.list_nodes(NodeKind.ITEM, offset=-1)


def test_not_equal_to_a_boolean_keeps_every_other_value(store: GraphStore) -> None:
    # 1 equals True (JSON compared as Python reads it); the string "true" does not, nor
    # does a value under a path that runs through a non-map.
    store.put_nodes(
        [
            item("t", flag=True),
            item("f", flag=False),
            item("one", flag=1),
            item("s", flag="true"),
            item("absent"),
            item("n", flag=None),
            item("deep", flag={"on": True}),
        ]
    )
    assert keys(store, Where(("value", "flag"), "ne", True)) == ["f", "s", "absent", "n", "deep"]
    assert keys(store, Where(("value", "flag"), "ne", False)) == [
        "t",
        "one",
        "s",
        "absent",
        "n",
        "deep",
    ]
    assert keys(store, Where(("value", "flag", "on"), "ne", True)) == [
        "t",
        "f",
        "one",
        "s",
        "absent",
        "n",
    ]
    assert keys(store, Where(("value", "flag"), "ne", True), offset=1, limit=2) == ["s", "absent"]
