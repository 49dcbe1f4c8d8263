"""``GmemStore``: LangGraph's long-term ``BaseStore`` kept in a gmem ``GraphStore``.

Namespace mapping. A LangGraph namespace ``("users", "alice", "prefs")`` is the gmem
namespace ``"langgraph:users.alice.prefs"`` (``prefix`` plus the labels joined by ``.``).
LangGraph forbids ``.`` inside a label, so the mapping is reversible, and the prefix keeps
store items apart from team memory: a team's retrieval never sees them, and
``Memory.forget_namespace("langgraph:users.alice.prefs")`` removes exactly that
namespace's items. gmem caps a namespace at 200 characters, so longer namespaces fail.

Item storage. The ``GraphStore`` protocol has no key-value records, so an item is kept as
an ``Utterance`` node that no task links to (no ``HAS_TRACE`` edge, so no traversal
reaches it): id = hash of (namespace, key), the value in its metadata, the first indexed
text's embedding as its vector; further texts of the same item (several ``index`` paths,
``[*]`` arrays) are extra nodes of the same kind pointing at the item, so that search takes
the best of an item's vectors as LangGraph's own stores do. The protocol also cannot
delete one node, so a deleted item becomes a tombstone (no value, no vector); a namespace
whose last item goes is dropped whole with ``DeleteNamespace``, and one that collects more
tombstones than live nodes is rewritten. See docs/langgraph.md for the ``Item`` node kind
and ``DeleteNodes`` operation that would remove these workarounds.
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
from graph_store.model import NodeKind, Utterance
from graph_store.ops import (
    DeleteNamespace,
    GetNodes,
    ListNodes,
    PutNodes,
    VectorSearch,
)

AGENT = "langgraph-store"
ITEM_ROLE = "store-item"
VECTOR_ROLE = "store-vector"
_MAX_NAMESPACE = 200


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def _vector_count(node: object) -> int:
    count = node.metadata.get("vectors") if isinstance(node, Utterance) else None
    return count if isinstance(count, int) else 0


def _matches(value: Any, wanted: Any) -> bool:
    """LangGraph's filter semantics: nested equality and ``$eq $ne $gt $gte $lt $lte``."""
    if isinstance(wanted, Mapping):
        if any(str(k).startswith("$") for k in wanted):
            return all(_compare(value, op, arg) for op, arg in wanted.items())
        return isinstance(value, Mapping) and all(
            _matches(value.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list | tuple):
        return (isinstance(value, list | tuple) and len(value) == len(wanted)
                and all(_matches(a, b) for a, b in zip(value, wanted, strict=True)))
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
    part = namespace[:len(path)] if condition.match_type == "prefix" else namespace[
        len(namespace) - len(path):]
    return all(p == "*" or p == n for p, n in zip(path, part, strict=True))


class GmemStore(BaseStore):
    """A LangGraph ``BaseStore`` whose items live in a gmem graph store.

    ``embedder`` (a gmem :class:`~gmem.embedding.TextEmbedder` or a LangChain
    ``Embeddings``) turns on semantic ``search(query=...)`` through the store's vector
    index; ``fields`` are the JSON paths embedded by default (``"$"``: the whole value),
    as in LangGraph's ``IndexConfig``. TTLs are not supported.
    """

    supports_ttl = False

    def __init__(self, store: GraphStore | str | Path, *,
                 embedder: TextEmbedder | Embeddings | None = None,
                 fields: Sequence[str] = ("$",), prefix: str = "langgraph:") -> None:
        if not prefix:
            raise ValueError("prefix must not be empty: it keeps store items apart from "
                             "team memory")
        self.store = store if isinstance(store, GraphStore) else open_store(store)
        self.embedder = embedder
        self.fields = list(fields)
        self.prefix = prefix

    # ---- namespace mapping -------------------------------------------------------------
    def gmem_namespace(self, namespace: tuple[str, ...]) -> str:
        """The gmem namespace that holds the items of a LangGraph namespace."""
        if not namespace or any(not label or "." in label for label in namespace):
            raise InvalidNamespaceError(
                f"invalid namespace {namespace!r}: labels must be non-empty and contain no '.'")
        name = self.prefix + ".".join(namespace)
        if len(name) > _MAX_NAMESPACE:
            raise InvalidNamespaceError(
                f"namespace {namespace!r} is too long for gmem ({len(name)} > "
                f"{_MAX_NAMESPACE} characters with the prefix)")
        return name

    def langgraph_namespace(self, name: str) -> tuple[str, ...] | None:
        if not name.startswith(self.prefix):
            return None
        return tuple(name[len(self.prefix):].split("."))

    def _namespaces(self) -> dict[tuple[str, ...], str]:
        out = {}
        for name in self.store.namespaces():
            ns = self.langgraph_namespace(name)
            if ns is not None:
                out[ns] = name
        return out

    # ---- nodes -------------------------------------------------------------------------
    @staticmethod
    def _is_item(node: object) -> bool:
        return (isinstance(node, Utterance) and node.role == ITEM_ROLE
                and bool(node.metadata.get("live")))

    def _item(self, node: Utterance, namespace: tuple[str, ...],
              score: float | None = None, scored: bool = False) -> Item:
        meta = node.metadata
        value = meta["value"]
        assert isinstance(value, dict)
        updated = datetime.fromisoformat(str(meta["updated_at"]))
        if scored:
            return SearchItem(namespace, str(meta["key"]), value, node.created_at, updated,
                              score)
        return Item(value=value, key=str(meta["key"]), namespace=namespace,
                    created_at=node.created_at, updated_at=updated)

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
            rows = ([embedder.embed_query(texts[0])] if query
                    else embedder.embed_documents(texts))
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
            vectors[i] = matrix[row:row + len(texts[i])]
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
        (nodes,) = self.store.batch([GetNodes([_hash(name, op.key)])])
        node = nodes[0]
        return self._item(node, op.namespace) if self._is_item(node) else None

    def _put(self, op: PutOp, texts: list[str], vectors: npt.NDArray[np.float32]) -> None:
        name = self.gmem_namespace(op.namespace)
        item_id = _hash(name, op.key)
        (old,) = self.store.batch([GetNodes([item_id])])
        previous = old[0]
        now = datetime.now(UTC)
        created = previous.created_at if self._is_item(previous) else now
        old_count = _vector_count(previous)
        collection = _hash(name)
        value = json.loads(json.dumps(dict(op.value or {})))
        item = Utterance(
            id=item_id, namespace=name, query_id=collection, step=0, agent=AGENT,
            role=ITEM_ROLE, content=texts[0] if texts else "", created_at=created,
            metadata={"key": op.key, "value": value, "updated_at": now.isoformat(),
                      "vectors": len(texts), "live": True},
            embedding=vectors[0] if len(texts) else None)
        extra = [Utterance(
            id=_hash(name, op.key, str(n)), namespace=name, query_id=collection, step=n,
            agent=AGENT, role=VECTOR_ROLE, content=texts[n], created_at=created,
            metadata={"item": item_id, "live": True}, embedding=vectors[n])
            for n in range(1, len(texts))]
        self.store.batch([PutNodes([item, *extra, *self._dead_vectors(
            name, op.key, item_id, len(texts), old_count)])])

    @staticmethod
    def _dead_vectors(name: str, key: str, item_id: str, keep: int, old: int
                      ) -> list[Utterance]:
        return [Utterance(id=_hash(name, key, str(n)), namespace=name, query_id=_hash(name),
                          step=n, agent=AGENT, role=VECTOR_ROLE, content="",
                          metadata={"item": item_id, "live": False})
                for n in range(max(keep, 1), old)]

    def _delete(self, namespace: tuple[str, ...], key: str) -> None:
        name = self.gmem_namespace(namespace)
        item_id = _hash(name, key)
        (found,) = self.store.batch([GetNodes([item_id])])
        node = found[0]
        if not self._is_item(node):
            return
        assert isinstance(node, Utterance)
        tomb = Utterance(id=item_id, namespace=name, query_id=_hash(name), step=0,
                         agent=AGENT, role=ITEM_ROLE, content="", created_at=node.created_at,
                         metadata={"key": key, "live": False})
        dead = self._dead_vectors(name, key, item_id, 1, _vector_count(node))
        _, nodes = self.store.batch([PutNodes([tomb, *dead]), ListNodes(NodeKind.UTTERANCE,
                                                                        name)])
        live = [n for n in nodes if isinstance(n, Utterance) and n.metadata.get("live")]
        if not any(n.role == ITEM_ROLE for n in live):
            self.store.batch([DeleteNamespace(name)])
        elif len(nodes) - len(live) > len(live):
            (full,) = self.store.batch([ListNodes(NodeKind.UTTERANCE, name, with_vectors=True)])
            keep = [n for n in full if isinstance(n, Utterance) and n.metadata.get("live")]
            self.store.batch([DeleteNamespace(name), PutNodes(keep)])

    def _search(self, op: SearchOp) -> list[SearchItem]:
        prefix = tuple(op.namespace_prefix)
        spaces = sorted((ns, name) for ns, name in self._namespaces().items()
                        if ns[:len(prefix)] == prefix)
        if not spaces:
            return []
        listed = self.store.batch([ListNodes(NodeKind.UTTERANCE, name) for _, name in spaces])
        items: list[tuple[Utterance, tuple[str, ...]]] = []
        owner: dict[str, str] = {}
        for (ns, _), nodes in zip(spaces, listed, strict=True):
            for node in nodes:
                if not isinstance(node, Utterance):
                    continue
                if self._is_item(node) and _matches(node.metadata["value"], op.filter or {}):
                    items.append((node, ns))
                    owner[node.id] = node.id
                elif node.role == VECTOR_ROLE and node.metadata.get("live"):
                    owner[node.id] = str(node.metadata["item"])
        if not (op.query and self.embedder is not None):
            window = items[op.offset:op.offset + op.limit]
            return [self._item(node, ns, scored=True) for node, ns in window]  # type: ignore[misc]
        vector = self._embed([op.query], query=True)[0]
        hits = self.store.batch([
            VectorSearch(NodeKind.UTTERANCE, vector, max(1, len(nodes)), name)
            for (_, name), nodes in zip(spaces, listed, strict=True)])
        best: dict[str, float] = {}
        for hit in (h for group in hits for h in group):
            item_id = owner.get(hit.id)
            if item_id is not None:
                best[item_id] = max(best.get(item_id, -1.0), float(hit.score))
        wanted = {node.id for node, _ in items}
        scored = sorted((pair for pair in items if pair[0].id in best),
                        key=lambda pair: -best[pair[0].id])
        unscored = [pair for pair in items if pair[0].id not in best and pair[0].id in wanted]
        ranked = [*scored, *unscored][op.offset:op.offset + op.limit]
        return [self._item(node, ns, best.get(node.id), scored=True)  # type: ignore[misc]
                for node, ns in ranked]

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        spaces = list(self._namespaces())
        for condition in op.match_conditions or ():
            spaces = [ns for ns in spaces if _namespace_matches(condition, ns)]
        if op.max_depth is not None:
            spaces = list({ns[:op.max_depth] for ns in spaces})
        return sorted(spaces)[op.offset:op.offset + op.limit]

    def close(self) -> None:
        self.store.close()
