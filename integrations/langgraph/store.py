"""``GmemStore``: LangGraph's long-term ``BaseStore`` kept in a gmem ``GraphStore``.

Namespace mapping. A LangGraph namespace ``("users", "alice", "prefs")`` is the gmem
namespace ``"langgraph:users.alice.prefs"`` (``prefix`` plus the labels joined by ``.``).
LangGraph forbids ``.`` inside a label, so the mapping is reversible, and the prefix keeps
store items apart from team memory: a team's retrieval never sees them, and
``Memory.forget_namespace("langgraph:users.alice.prefs")`` removes exactly that
namespace's items. gmem caps a namespace at 200 characters, so longer namespaces fail.

Item storage. A LangGraph item is one gmem :class:`~graph_store.model.Item` node, a kind
the memory engine never reads, whose id is a hash of (gmem namespace, key): a put replaces
it and a delete is ``DeleteNodes``, so an emptied namespace simply ceases to exist. The
item's first indexed text gives its embedding. LangGraph lets one item have several
indexed texts (several ``index`` paths, ``[*]`` arrays) and ranks it by its best match, so
each further text is an ``Item`` of its own, the item's "vector node": same namespace and
key, ``{"text": ...}`` as value, ``vector_of`` in its metadata, and an id derived from the
item's so that it can be found without an edge or an index. The item records how many
texts it has, which tells a put or a delete which vector nodes to remove. One text per
item, the common case, is one node.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from langchain_core.embeddings import Embeddings
from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)
from langgraph.store.base.embed import get_text_at_path, tokenize_path

from gmem.embedding import TextEmbedder
from graph_store import GraphStore, open_store
from graph_store.model import MAX_NAMESPACE_LENGTH, NodeKind
from graph_store.model import Item as ItemNode
from graph_store.ops import DeleteNodes, GetNodes, ListNodes, PutNodes, VectorSearch

#: Metadata keys: the number of indexed texts of an item, and a vector node's item id.
_VECTORS = "vectors"
_VECTOR_OF = "vector_of"


def _item_id(name: str, key: str) -> str:
    return hashlib.sha256(f"{name}\x00{key}".encode()).hexdigest()[:32]


def _vector_id(name: str, key: str, position: int) -> str:
    # A leading control character, which no gmem namespace holds, and JSON's unambiguous
    # list encoding keep these ids apart from every item id, whatever the key contains.
    text = "\x01" + json.dumps([name, key, position], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _vector_ids(name: str, key: str, start: int, stop: int) -> list[str]:
    return [_vector_id(name, key, n) for n in range(max(start, 1), stop)]


def _as_item(node: object) -> ItemNode | None:
    """``node`` if it is a stored item (not one of an item's vector nodes)."""
    if isinstance(node, ItemNode) and _VECTOR_OF not in node.metadata:
        return node
    return None


def _vector_count(node: ItemNode | None) -> int:
    count = None if node is None else node.metadata.get(_VECTORS)
    return count if isinstance(count, int) else 0


def _matches(value: Any, wanted: Any) -> bool:
    """LangGraph's filter semantics: nested equality and ``$eq $ne $gt $gte $lt $lte``."""
    if isinstance(wanted, Mapping):
        if any(str(k).startswith("$") for k in wanted):
            return all(_compare(value, op, arg) for op, arg in wanted.items())
        return isinstance(value, Mapping) and all(
            _matches(value.get(k), v) for k, v in wanted.items()
        )
    if isinstance(wanted, list | tuple):
        return (
            isinstance(value, list | tuple)
            and len(value) == len(wanted)
            and all(_matches(a, b) for a, b in zip(value, wanted, strict=True))
        )
    return bool(value == wanted)


def _compare(value: Any, op: str, arg: Any) -> bool:
    if op == "$eq":
        return bool(value == arg)
    if op == "$ne":
        return bool(value != arg)
    if value is None:
        return False
    try:
        left, right = float(value), float(arg)
    except (TypeError, ValueError):
        return False
    if op == "$gt":
        return left > right
    if op == "$gte":
        return left >= right
    if op == "$lt":
        return left < right
    if op == "$lte":
        return left <= right
    raise ValueError(f"unsupported filter operator {op!r}; use $eq $ne $gt $gte $lt $lte")


def _namespace_matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = condition.path
    if len(namespace) < len(path):
        return False
    part = (
        namespace[: len(path)]
        if condition.match_type == "prefix"
        else namespace[len(namespace) - len(path) :]
    )
    return all(p in ("*", n) for p, n in zip(path, part, strict=True))


class GmemStore(BaseStore):
    """A LangGraph ``BaseStore`` whose items live in a gmem graph store.

    ``embedder`` (a gmem :class:`~gmem.embedding.TextEmbedder` or a LangChain
    ``Embeddings``) turns on semantic ``search(query=...)`` through the store's vector
    index; ``fields`` are the JSON paths embedded by default (``"$"``: the whole value),
    as in LangGraph's ``IndexConfig``. TTLs are not supported.
    """

    supports_ttl = False

    def __init__(
        self,
        store: GraphStore | str | Path,
        *,
        embedder: TextEmbedder | Embeddings | None = None,
        fields: Sequence[str] = ("$",),
        prefix: str = "langgraph:",
    ) -> None:
        if not prefix:
            raise ValueError(
                "prefix must not be empty: it keeps store items apart from team memory"
            )
        self.store = store if isinstance(store, GraphStore) else open_store(store)
        self.embedder = embedder
        self.fields = list(fields)
        self.prefix = prefix

    # ---- namespace mapping -------------------------------------------------------------
    def gmem_namespace(self, namespace: tuple[str, ...]) -> str:
        """The gmem namespace that holds the items of a LangGraph namespace."""
        if not namespace or any(not label or "." in label for label in namespace):
            raise InvalidNamespaceError(
                f"invalid namespace {namespace!r}: labels must be non-empty and contain no '.'"
            )
        name = self.prefix + ".".join(namespace)
        if len(name) > MAX_NAMESPACE_LENGTH:
            raise InvalidNamespaceError(
                f"namespace {namespace!r} is too long for gmem ({len(name)} > "
                f"{MAX_NAMESPACE_LENGTH} characters with the prefix)"
            )
        return name

    def langgraph_namespace(self, name: str) -> tuple[str, ...] | None:
        if not name.startswith(self.prefix):
            return None
        return tuple(name[len(self.prefix) :].split("."))

    def _namespaces(self) -> dict[tuple[str, ...], str]:
        out = {}
        for name in self.store.namespaces():
            ns = self.langgraph_namespace(name)
            if ns is not None:
                out[ns] = name
        return out

    # ---- items -----------------------------------------------------------------------
    @staticmethod
    def _item(
        node: ItemNode, namespace: tuple[str, ...], score: float | None = None, scored: bool = False
    ) -> Item:
        if scored:
            return SearchItem(
                namespace, node.key, node.value, node.created_at, node.updated_at, score
            )
        return Item(
            value=node.value,
            key=node.key,
            namespace=namespace,
            created_at=node.created_at,
            updated_at=node.updated_at,
        )

    def _texts(self, op: PutOp) -> list[str]:
        if self.embedder is None or op.value is None or op.index is False:
            return []
        paths = self.fields if op.index is None else list(op.index)
        texts: list[str] = []
        for path in paths:
            texts.extend(get_text_at_path(op.value, path if path == "$" else tokenize_path(path)))
        return [t for t in texts if t]

    def _embed(self, texts: list[str], query: bool = False) -> npt.NDArray[np.float32]:
        embedder = self.embedder
        if isinstance(embedder, Embeddings):
            rows = [embedder.embed_query(texts[0])] if query else embedder.embed_documents(texts)
            return np.asarray(rows, dtype=np.float32)
        assert embedder is not None
        return np.asarray(embedder.embed(texts), dtype=np.float32)

    # ---- operations --------------------------------------------------------------------
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        results: list[Result] = [None] * len(ops)
        puts = [(i, op) for i, op in enumerate(ops) if isinstance(op, PutOp)]
        texts = {i: self._texts(op) for i, op in puts}
        flat = [t for i in sorted(texts) for t in texts[i]]
        matrix = self._embed(flat) if flat else np.zeros((0, 0), dtype=np.float32)
        vectors: dict[int, npt.NDArray[np.float32]] = {}
        row = 0
        for i in sorted(texts):
            vectors[i] = matrix[row : row + len(texts[i])]
            row += len(texts[i])
        for i, op in enumerate(ops):
            if isinstance(op, GetOp):
                results[i] = self._get(op)
            elif isinstance(op, PutOp):
                if op.value is None:
                    self._delete(op.namespace, op.key)
                else:
                    self._put(op, texts[i], vectors[i])
            elif isinstance(op, SearchOp):
                results[i] = self._search(op)
            elif isinstance(op, ListNamespacesOp):
                results[i] = self._list_namespaces(op)
            else:
                raise ValueError(f"unknown store operation {type(op).__name__}")
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await asyncio.to_thread(self.batch, list(ops))

    def _get(self, op: GetOp) -> Item | None:
        name = self.gmem_namespace(op.namespace)
        (nodes,) = self.store.batch([GetNodes([_item_id(name, op.key)])])
        node = _as_item(nodes[0])
        return None if node is None else self._item(node, op.namespace)

    def _put(self, op: PutOp, texts: list[str], vectors: npt.NDArray[np.float32]) -> None:
        name = self.gmem_namespace(op.namespace)
        item_id = _item_id(name, op.key)
        # Read first: the item keeps its creation time, and vector nodes of texts the
        # new value no longer has must go in the same transaction as the put.
        (old,) = self.store.batch([GetNodes([item_id])])
        previous = _as_item(old[0])
        now = datetime.now(UTC)
        created = now if previous is None else previous.created_at
        value = json.loads(json.dumps(dict(op.value or {})))
        item = ItemNode(
            id=item_id,
            namespace=name,
            key=op.key,
            value=value,
            created_at=created,
            updated_at=now,
            metadata={_VECTORS: len(texts)},
            embedding=vectors[0] if texts else None,
        )
        extra = [
            ItemNode(
                id=_vector_id(name, op.key, n),
                namespace=name,
                key=op.key,
                value={"text": texts[n]},
                created_at=created,
                updated_at=now,
                metadata={_VECTOR_OF: item_id},
                embedding=vectors[n],
            )
            for n in range(1, len(texts))
        ]
        stale = _vector_ids(name, op.key, len(texts), _vector_count(previous))
        self.store.batch([PutNodes([item, *extra]), DeleteNodes(stale)])

    def _delete(self, namespace: tuple[str, ...], key: str) -> None:
        name = self.gmem_namespace(namespace)
        item_id = _item_id(name, key)
        (found,) = self.store.batch([GetNodes([item_id])])
        node = _as_item(found[0])
        if node is not None:
            vectors = _vector_ids(name, key, 1, _vector_count(node))
            self.store.batch([DeleteNodes([item_id, *vectors])])

    def _search(self, op: SearchOp) -> list[SearchItem]:
        prefix = tuple(op.namespace_prefix)
        spaces = sorted(
            (ns, name) for ns, name in self._namespaces().items() if ns[: len(prefix)] == prefix
        )
        if not spaces:
            return []
        listed = self.store.batch([ListNodes(NodeKind.ITEM, name) for _, name in spaces])
        items: list[tuple[ItemNode, tuple[str, ...]]] = []
        vector_nodes: list[ItemNode] = []
        for (ns, _), nodes in zip(spaces, listed, strict=True):
            for node in nodes:
                if not isinstance(node, ItemNode):
                    continue
                if _VECTOR_OF in node.metadata:
                    vector_nodes.append(node)
                elif _matches(node.value, op.filter or {}):
                    items.append((node, ns))
        live = {node.id: node for node, _ in items}
        owner = {node.id: node.id for node in live.values()}
        for node in vector_nodes:
            item = live.get(str(node.metadata[_VECTOR_OF]))
            # A vector node is written with its item, so a different time means it was
            # left behind by a concurrent put of the same key and no longer belongs.
            if item is not None and item.updated_at == node.updated_at:
                owner[node.id] = item.id
        if not (op.query and self.embedder is not None):
            window = items[op.offset : op.offset + op.limit]
            return [self._item(node, ns, scored=True) for node, ns in window]  # type: ignore[misc]
        vector = self._embed([op.query], query=True)[0]
        hits = self.store.batch(
            [
                VectorSearch(NodeKind.ITEM, vector, max(1, len(nodes)), name)
                for (_, name), nodes in zip(spaces, listed, strict=True)
            ]
        )
        best: dict[str, float] = {}
        for hit in (h for group in hits for h in group):
            item_id = owner.get(hit.id)
            if item_id is not None:
                best[item_id] = max(best.get(item_id, -1.0), float(hit.score))
        scored = sorted(
            (pair for pair in items if pair[0].id in best), key=lambda pair: -best[pair[0].id]
        )
        unscored = [pair for pair in items if pair[0].id not in best]
        ranked = [*scored, *unscored][op.offset : op.offset + op.limit]
        return [
            self._item(node, ns, best.get(node.id), scored=True)  # type: ignore[misc]
            for node, ns in ranked
        ]

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        spaces = list(self._namespaces())
        for condition in op.match_conditions or ():
            spaces = [ns for ns in spaces if _namespace_matches(condition, ns)]
        if op.max_depth is not None:
            spaces = list({ns[: op.max_depth] for ns in spaces})
        return sorted(spaces)[op.offset : op.offset + op.limit]

    def close(self) -> None:
        self.store.close()
