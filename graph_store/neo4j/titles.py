"""The short ``title`` property Neo4j Browser captions nodes with.

Browser captions a node with one property. A task's text, an insight's lesson and a
message run to hundreds of characters, and every insight starts with the same words
(``For tasks like "..."``), so captions made from them read alike at any zoom. The title
is derived from the node when it is written (so it never disagrees with it), is only ever
read by people in Browser, and is dropped when a node is read back.
"""

from __future__ import annotations

import re

from graph_store.model import Insight, Item, Node, Outcome, QueryNode, Utterance

#: The property name; not a field of any node model.
TITLE_KEY = "title"
_WIDTH = 42
_SCOPE = re.compile(r'^For tasks like "[^"]*":\s*')
_MARKS = {Outcome.SUCCESS: "✓ ", Outcome.FAILURE: "✗ "}


def shorten(text: str, width: int = _WIDTH) -> str:
    """One line of at most ``width`` characters, cut at a word where one is near."""
    line = " ".join(text.split())
    if len(line) <= width:
        return line
    cut = line[: width - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > width // 2 else cut).rstrip(" ,.;:") + "…"


def title_of(node: Node) -> str:
    """What tells this node apart from its neighbours in a picture."""
    if isinstance(node, QueryNode):
        return _MARKS.get(node.outcome, "") + shorten(node.text)
    if isinstance(node, Insight):
        return shorten(_SCOPE.sub("", node.text) or node.text)
    if isinstance(node, Utterance):
        said = node.action or node.content
        return f"{node.step}. {node.role}: " + shorten(said, _WIDTH - 8)
    if isinstance(node, Item):
        return shorten(node.key)
    return ""
