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
import concurrent.futures
import functools
import hashlib
import json
import random
import re
import threading
import time
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from langchain_core.embeddings import Embeddings
from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
)
from langgraph.store.base.embed import ensure_embeddings, get_text_at_path, tokenize_path

from gmem.embedding import TextEmbedder
from gmem.errors import ConfigError
from graph_store import GraphStore, open_store
from graph_store.errors import ConflictError
from graph_store.model import MAX_NAMESPACE_LENGTH, NodeKind
from graph_store.model import Item as ItemNode
from graph_store.ops import (
    Count,
    DeleteNodes,
    ExpectNodes,
    GetNodes,
    ListNodes,
    PutNodes,
    VectorSearch,
    Where,
)

#: Metadata keys: the number of indexed texts of an item, and a vector node's item id.
_VECTORS = "vectors"
_VECTOR_OF = "vector_of"
#: Metadata keys of an item with a time to live: its TTL in minutes, and when it expires.
_TTL = "ttl_minutes"
_EXPIRES = "expires_at"
#: Filter keys the SQL stores accept: field names, dotted for nested fields.
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")
_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
#: How often a batch is redone (after a short random wait, doubling) when another writer
#: changed an item it read.
_ATTEMPTS = 8
#: How many namespace mappings a store remembers before it starts again.
_NAMES_KEPT = 4096
_ESCAPE = re.compile(r"%(u[0-9A-F]{4}|[0-9A-F]{2})")


def _encode_label(label: str) -> str:
    out = []
    for ch in label:
        if ch == "%" or unicodedata.category(ch) == "Cc":
            out.append(f"%{ord(ch):02X}")
        elif unicodedata.category(ch) == "Cs":
            out.append(f"%u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def _decode_label(text: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m[1].removeprefix("u"), 16)), text)


def _check_filter(filter: Mapping[str, Any] | None) -> None:
    """Raise ``ValueError`` for what the SQL stores refuse, before anything is read."""
    for key, wanted in (filter or {}).items():
        if not isinstance(key, str) or not _PLAIN_KEY.match(key):
            raise ValueError(
                # LangGraph's SQL stores word it so; callers match on the capital.
                f"Invalid filter key {key!r}: use a field name, dotted for a nested field "
                "(letters, digits, _ and -)"
            )
        _check_operators(wanted)


def _check_operators(wanted: Any) -> None:
    if not isinstance(wanted, Mapping):
        return
    if any(str(k).startswith("$") for k in wanted):
        for op in wanted:
            if op not in _OPERATORS:
                raise ValueError(f"unsupported filter operator {op!r}; use {' '.join(_OPERATORS)}")
        return
    for value in wanted.values():
        _check_operators(value)


def _field(value: Mapping[str, Any], key: str) -> Any:
    """A filter key's value: the field of that name, else the dotted path into nested maps."""
    if key in value or "." not in key:
        return value.get(key)
    found: Any = value
    for part in key.split("."):
        if not isinstance(found, Mapping):
            return None
        found = found.get(part)
    return found


def _passes(value: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    return all(_matches(_field(value, k), v) for k, v in (filter or {}).items())


def _now() -> datetime:
    """The store's clock (one place, so that tests can move time instead of waiting)."""
    return datetime.now(UTC)


#: Conditions of the graph store's listings: an item (not one of its vector nodes), a
#: vector node. ``expires_at`` is always written in UTC by ``isoformat``, so its text
#: order is its time order.
_IS_ITEM = Where(("metadata", _VECTOR_OF), "eq", None)
_IS_VECTOR = Where(("metadata", _VECTOR_OF), "ne", None)


def _live(now: datetime) -> Where:
    return Where(("metadata", _EXPIRES), "gt", now.isoformat(), or_none=True)


def _pushed_filter(filter: Mapping[str, Any] | None) -> tuple[list[Where], bool]:
    """The part of a LangGraph filter the graph store decides exactly as :func:`_passes`
    does, and whether that is all of it (only then may the store page the results)."""
    pushed: list[Where] = []
    exact = True
    for key, wanted in (filter or {}).items():
        path = ("value", key)
        if "." in key:
            exact = False  # a field named "a.b" or the path a -> b, whichever exists
        elif isinstance(wanted, Mapping) and wanted and all(k in _OPERATORS for k in wanted):
            for op, arg in wanted.items():
                if op in ("$eq", "$ne") or isinstance(arg, int | float):
                    pushed.append(Where(path, op[1:], arg))
                else:
                    exact = False
        elif wanted is None or isinstance(wanted, str | int | float):
            pushed.append(Where(path, "eq", wanted))
        else:
            exact = False  # nested maps and lists match part by part
    return pushed, exact


def _owners(
    items: Sequence[tuple[ItemNode, tuple[str, ...]]], vector_nodes: Sequence[ItemNode]
) -> dict[str, str]:
    """Node id -> the id of the item it holds a text of (an item holds its own)."""
    live = {node.id: node for node, _ in items}
    owner = {node_id: node_id for node_id in live}
    for node in vector_nodes:
        item = live.get(str(node.metadata[_VECTOR_OF]))
        # A vector node is written with its item, so a different time means it was
        # left behind by a concurrent put of the same key and no longer belongs.
        if item is not None and item.updated_at == node.updated_at:
            owner[node.id] = item.id
    return owner


def _expires(node: ItemNode) -> datetime | None:
    text = node.metadata.get(_EXPIRES)
    return datetime.fromisoformat(text) if isinstance(text, str) else None


def _expired(node: ItemNode, now: datetime) -> bool:
    when = _expires(node)
    return when is not None and when <= now


@functools.lru_cache(maxsize=2**16)  # a batch asks for one item's id up to four times
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

    ``index`` is LangGraph's ``IndexConfig`` (``{"dims", "embed", "fields"}``), as the
    LangGraph stores take it; ``embed`` may be a LangChain ``Embeddings``, an embedding
    function, a ``"provider:model"`` string (resolved here, so an unusable one fails at
    construction) or a gmem :class:`~gmem.embedding.TextEmbedder`. ``embedder`` and
    ``fields`` are the older spelling of the same. ``ttl`` is LangGraph's ``TTLConfig``.
    """

    supports_ttl = True

    def __init__(
        self,
        store: GraphStore | str | Path,
        *,
        embedder: TextEmbedder | Embeddings | str | None = None,
        fields: Sequence[str] = ("$",),
        prefix: str = "langgraph:",
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
    ) -> None:
        if not prefix:
            raise ValueError(
                "prefix must not be empty: it keeps store items apart from team memory"
            )
        self.dims: int | None = None
        if index is not None:
            if embedder is not None:
                raise ValueError("give the embedder once: as embedder= or as index['embed']")
            embedder = index.get("embed")  # type: ignore[assignment]
            fields = index.get("fields") or ("$",)
            self.dims = index.get("dims")
        self.embedder = _resolve_embedder(embedder)
        self.fields = list(fields)
        #: The index configuration in effect, as LangGraph's stores expose it (``None``
        #: without an embedder); ``embed`` is the resolved embedder.
        self.index_config: dict[str, Any] | None = (
            None
            if self.embedder is None
            else {"dims": self.dims, "embed": self.embedder, "fields": list(self.fields)}
        )
        #: The embedder under the name LangGraph's stores give it.
        self.embeddings = self.embedder
        self.prefix = prefix
        self.ttl_config = ttl
        self.store = store if isinstance(store, GraphStore) else open_store(store)
        self._names: dict[tuple[str, ...], str] = {}
        self._sweeper: threading.Thread | None = None
        self._stop = threading.Event()
        self._queue_lock = threading.Lock()
        self._writing = threading.Lock()
        self._queues: dict[
            asyncio.AbstractEventLoop, list[tuple[list[Op], asyncio.Future[list[Result]]]]
        ] = {}
        self._draining: set[asyncio.AbstractEventLoop] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- namespace mapping -------------------------------------------------------------
    def gmem_namespace(self, namespace: tuple[str, ...]) -> str:
        """The gmem namespace that holds the items of a LangGraph namespace."""
        # Remembered, since every operation of a batch asks for it several times; bounded,
        # since an application may name a namespace per user or per thread.
        name = self._names.get(namespace) if isinstance(namespace, tuple) else None
        if name is None:
            name = self._gmem_namespace(namespace)
            if len(self._names) >= _NAMES_KEPT:
                self._names.clear()
            self._names[namespace] = name
        return name

    def _gmem_namespace(self, namespace: tuple[str, ...]) -> str:
        if not namespace or any(
            not isinstance(label, str) or not label or "." in label or "\x00" in label
            for label in namespace
        ):
            raise InvalidNamespaceError(
                f"invalid namespace {namespace!r}: labels must be non-empty strings without "
                "'.' or NUL"
            )
        name = self.prefix + ".".join(_encode_label(label) for label in namespace)
        if len(name) > MAX_NAMESPACE_LENGTH:
            raise InvalidNamespaceError(
                f"namespace {namespace!r} is too long for gmem ({len(name)} > "
                f"{MAX_NAMESPACE_LENGTH} characters with the prefix)"
            )
        return name

    def langgraph_namespace(self, name: str) -> tuple[str, ...] | None:
        if not name.startswith(self.prefix):
            return None
        return tuple(_decode_label(label) for label in name[len(self.prefix) :].split("."))

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
            matrix = np.asarray(rows, dtype=np.float32)
        else:
            assert embedder is not None
            matrix = np.asarray(embedder.embed(texts), dtype=np.float32)
        if self.dims is not None and matrix.ndim == 2 and matrix.shape[1] != self.dims:
            raise ValueError(
                f"the embedder returned {matrix.shape[1]} dimensions, but index['dims'] is "
                f"{self.dims}"
            )
        return matrix

    # ---- operations --------------------------------------------------------------------
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        # 1. Validate every operation, so that a bad one fails the batch before any I/O.
        final = self._validate(ops)
        texts = [self._texts(op) for op in final]
        flat = [t for group in texts for t in group]
        matrix = self._embed(flat) if flat else np.zeros((0, 0), dtype=np.float32)
        # Writers of this store object take turns, so that only another process (or
        # another GmemStore on the same graph store) can change what they read. A batch
        # of reads runs without waiting; if the TTL refresh it writes meets a concurrent
        # put, it is redone taking its turn too.
        take_turns = bool(final)
        for attempt in range(_ATTEMPTS):
            try:
                if not take_turns:
                    return self._attempt(ops, final, texts, matrix)
                with self._writing:
                    return self._attempt(ops, final, texts, matrix)
            except ConflictError:
                # Another writer changed an item this batch read: read again and redo it,
                # so that the batch behaves as one transaction.
                take_turns = True
                if attempt == _ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0, 0.002 * 2**attempt))
        raise AssertionError("unreachable")

    def _attempt(
        self,
        ops: Sequence[Op],
        final: Sequence[PutOp],
        texts: Sequence[list[str]],
        matrix: npt.NDArray[np.float32],
    ) -> list[Result]:
        now = _now()
        # 2. Reads, all against the state before the batch.
        wanted = {
            _item_id(self.gmem_namespace(op.namespace), op.key)
            for op in ops
            if isinstance(op, GetOp | PutOp)
        }
        before = self._read(sorted(wanted))
        refresh: dict[str, ItemNode] = {}
        results: list[Result] = [None] * len(ops)
        listing = any(isinstance(op, SearchOp | ListNamespacesOp) for op in ops)
        spaces = self._namespaces() if listing else {}
        for i, op in enumerate(ops):
            if isinstance(op, GetOp):
                results[i] = self._get(op, before, now, refresh)
            elif isinstance(op, SearchOp):
                results[i] = self._search(op, spaces, now, refresh)
            elif isinstance(op, ListNamespacesOp):
                results[i] = self._list_namespaces(op, spaces)
        # 3. Writes, one transaction, which commits only if every item the writes were
        # computed from is still as it was read.
        nodes, deletes = self._writes(final, texts, matrix, before, now)
        written = {n.id for n in nodes} | set(deletes)
        refreshed = self._refreshed([n for i, n in refresh.items() if i not in written], now)
        if nodes or deletes or refreshed:
            seen = {**refresh, **before}
            expected = [
                (NodeKind.ITEM, node_id, seen[node_id].updated_at if node_id in seen else None)
                for node_id in sorted(
                    {_item_id(self.gmem_namespace(op.namespace), op.key) for op in final}
                    | {n.id for n in refreshed}
                )
            ]
            self.store.batch(
                [ExpectNodes(expected), PutNodes([*nodes, *refreshed]), DeleteNodes(deletes)]
            )
        return results

    def _validate(self, ops: Sequence[Op]) -> list[PutOp]:
        """Check every operation; the puts that take effect (the last one per key)."""
        puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for op in ops:
            if isinstance(op, GetOp | PutOp):
                self.gmem_namespace(op.namespace)
            if isinstance(op, PutOp):
                if op.value is not None and not isinstance(op.value, Mapping):
                    raise ValueError(f"a store value must be a dict, got {type(op.value).__name__}")
                puts[(op.namespace, op.key)] = op
            elif isinstance(op, SearchOp):
                _check_filter(op.filter)
            elif not isinstance(op, GetOp | ListNamespacesOp):
                raise ValueError(f"unknown store operation {type(op).__name__}")
        return list(puts.values())

    def _writes(
        self,
        puts: Sequence[PutOp],
        texts: Sequence[list[str]],
        matrix: npt.NDArray[np.float32],
        before: dict[str, ItemNode],
        now: datetime,
    ) -> tuple[list[ItemNode], list[str]]:
        nodes: list[ItemNode] = []
        deletes: list[str] = []
        row = 0
        for op, group in zip(puts, texts, strict=True):
            vectors = matrix[row : row + len(group)]
            row += len(group)
            name = self.gmem_namespace(op.namespace)
            previous = before.get(_item_id(name, op.key))
            if op.value is None:
                if previous is not None:
                    deletes += [previous.id, *_vector_ids(name, op.key, 1, _vector_count(previous))]
                else:
                    # Nothing to delete, but the batch expects the item absent, which a
                    # backend claims until commit (Neo4j with a placeholder node): the
                    # delete releases the claim, and removes an item put meanwhile.
                    deletes.append(_item_id(name, op.key))
                continue
            nodes += self._put_nodes(op, name, previous, group, vectors, now)
            deletes += _vector_ids(name, op.key, len(group), _vector_count(previous))
        return nodes, deletes

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Concurrent calls on one event loop are answered by one :meth:`batch` (one
        transaction of the graph store), formed while the previous one runs."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[Result]] = loop.create_future()
        with self._queue_lock:
            queue = self._queues.setdefault(loop, [])
            queue.append((list(ops), answer))
            start = len(queue) == 1 and loop not in self._draining
            if start:
                self._draining.add(loop)
        if start:
            task = loop.create_task(self._drain(loop))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await answer

    async def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while True:
                await asyncio.sleep(0)  # let the calls made in this tick join
                with self._queue_lock:
                    group = self._queues.pop(loop, [])
                    if not group:
                        self._draining.discard(loop)
                        return
                await self._answer(group)
        except BaseException:
            with self._queue_lock:
                self._draining.discard(loop)
            raise

    async def _answer(self, group: list[tuple[list[Op], asyncio.Future[list[Result]]]]) -> None:
        flat = [op for ops, _ in group for op in ops]
        try:
            results = await asyncio.to_thread(self.batch, flat) if len(group) > 1 else None
        except Exception:  # noqa: BLE001 - each caller gets its own error below
            results = None
        if results is None:
            # Alone, or one caller's operations failed the shared batch: each call is
            # then its own batch, so an error reaches only the caller that caused it.
            for ops, answer in group:
                try:
                    mine = await asyncio.to_thread(self.batch, ops)
                except Exception as exc:  # noqa: BLE001 - handed to the caller
                    if not answer.done():
                        answer.set_exception(exc)
                else:
                    if not answer.done():
                        answer.set_result(mine)
            return
        start = 0
        for ops, answer in group:
            if not answer.done():
                answer.set_result(results[start : start + len(ops)])
            start += len(ops)

    def _read(self, ids: list[str]) -> dict[str, ItemNode]:
        if not ids:
            return {}
        (nodes,) = self.store.batch([GetNodes(ids)])
        return {n.id: n for n in map(_as_item, nodes) if n is not None}

    def _refresh_wanted(self, refresh_ttl: bool, node: ItemNode) -> bool:
        return refresh_ttl and isinstance(node.metadata.get(_TTL), int | float)

    def _get(
        self, op: GetOp, before: dict[str, ItemNode], now: datetime, refresh: dict[str, ItemNode]
    ) -> Item | None:
        node = before.get(_item_id(self.gmem_namespace(op.namespace), op.key))
        if node is None or _expired(node, now):
            return None
        if self._refresh_wanted(op.refresh_ttl, node):
            refresh[node.id] = node
        return self._item(node, op.namespace)

    def _refreshed(self, nodes: list[ItemNode], now: datetime) -> list[ItemNode]:
        """The nodes with their expiry moved to now plus their TTL (read with their
        vectors, since a put replaces the whole node)."""
        if not nodes:
            return []
        (full,) = self.store.batch([GetNodes([n.id for n in nodes], with_vectors=True)])
        out = []
        for node in map(_as_item, full):
            # Gone, or put again without a TTL, since the batch read it: nothing to move.
            if node is None or not isinstance(node.metadata.get(_TTL), int | float):
                continue
            minutes = float(node.metadata[_TTL])  # type: ignore[arg-type]
            expiry = (now + timedelta(minutes=minutes)).isoformat()
            out.append(node.model_copy(update={"metadata": {**node.metadata, _EXPIRES: expiry}}))
        return out

    def _put_nodes(
        self,
        op: PutOp,
        name: str,
        previous: ItemNode | None,
        texts: list[str],
        vectors: npt.NDArray[np.float32],
        now: datetime,
    ) -> list[ItemNode]:
        item_id = _item_id(name, op.key)
        created = now if previous is None else previous.created_at
        value = json.loads(json.dumps(dict(op.value or {})))
        metadata: dict[str, Any] = {_VECTORS: len(texts)}
        if op.ttl is not None:
            metadata[_TTL] = float(op.ttl)
            metadata[_EXPIRES] = (now + timedelta(minutes=float(op.ttl))).isoformat()
        item = ItemNode(
            id=item_id,
            namespace=name,
            key=op.key,
            value=value,
            created_at=created,
            updated_at=now,
            metadata=metadata,
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
        return [item, *extra]

    def _search(
        self,
        op: SearchOp,
        namespaces: Mapping[tuple[str, ...], str],
        now: datetime,
        refresh: dict[str, ItemNode],
    ) -> list[SearchItem]:
        prefix = tuple(op.namespace_prefix)
        spaces = sorted(
            (ns, name) for ns, name in namespaces.items() if ns[: len(prefix)] == prefix
        )
        if not spaces:
            return []
        pushed, exact = _pushed_filter(op.filter)
        where = (_IS_ITEM, _live(now), *pushed)
        semantic = bool(op.query) and self.embedder is not None
        # The graph store pages only when it decides the whole filter; the rest of the
        # filter (dotted keys, nested maps, lists) is decided here, on every item.
        page = op.offset + op.limit if exact and not semantic else None
        reads: list[Any] = [
            ListNodes(NodeKind.ITEM, name, limit=page, where=where) for _, name in spaces
        ]
        if semantic:
            reads += [ListNodes(NodeKind.ITEM, name, where=(_IS_VECTOR,)) for _, name in spaces]
            reads += [Count(name) for _, name in spaces]
        listed = self.store.batch(reads)
        items = [
            (node, ns)
            for (ns, _), nodes in zip(spaces, listed, strict=False)
            for node in map(_as_item, nodes)
            if node is not None and not _expired(node, now) and _passes(node.value, op.filter)
        ]
        best: dict[str, float] = {}
        if semantic:
            assert op.query is not None
            vector_nodes = [
                n
                for nodes in listed[len(spaces) : 2 * len(spaces)]
                for n in nodes
                if isinstance(n, ItemNode)
            ]
            sizes = [
                (name, counts.nodes.get(NodeKind.ITEM.value, 0))
                for (_, name), counts in zip(spaces, listed[2 * len(spaces) :], strict=True)
            ]
            best = self._similarities(op.query, sizes, _owners(items, vector_nodes))
            scored = sorted(
                (pair for pair in items if pair[0].id in best), key=lambda pair: -best[pair[0].id]
            )
            items = [*scored, *(pair for pair in items if pair[0].id not in best)]
        window = items[op.offset : op.offset + op.limit]
        for node, _ in window:
            if self._refresh_wanted(op.refresh_ttl, node):
                refresh[node.id] = node
        return [
            self._item(node, ns, best.get(node.id), scored=True)  # type: ignore[misc]
            for node, ns in window
        ]

    def _similarities(
        self, query: str, sizes: list[tuple[str, int]], owner: dict[str, str]
    ) -> dict[str, float]:
        """Each item's best similarity to ``query`` over its indexed texts."""
        vector = self._embed([query], query=True)[0]
        hits = self.store.batch(
            [VectorSearch(NodeKind.ITEM, vector, max(1, size), name) for name, size in sizes]
        )
        best: dict[str, float] = {}
        for hit in (h for group in hits for h in group):
            item_id = owner.get(hit.id)
            if item_id is not None:
                best[item_id] = max(best.get(item_id, -1.0), float(hit.score))
        return best

    def _list_namespaces(
        self, op: ListNamespacesOp, namespaces: Mapping[tuple[str, ...], str]
    ) -> list[tuple[str, ...]]:
        spaces = list(namespaces)
        for condition in op.match_conditions or ():
            spaces = [ns for ns in spaces if _namespace_matches(condition, ns)]
        if op.max_depth is not None:
            spaces = list({ns[: op.max_depth] for ns in spaces})
        return sorted(spaces)[op.offset : op.offset + op.limit]

    # ---- time to live ------------------------------------------------------------------
    def sweep_ttl(self) -> int:
        """Delete every expired item (with its vector nodes); returns how many."""
        now = _now()
        names = list(self._namespaces().values())
        if not names:
            return 0
        where = (_IS_ITEM, Where(("metadata", _EXPIRES), "lte", now.isoformat()))
        listed = self.store.batch([ListNodes(NodeKind.ITEM, name, where=where) for name in names])
        expired = [
            node
            for nodes in listed
            for node in map(_as_item, nodes)
            if node is not None and _expired(node, now)
        ]
        ids = [
            i
            for node in expired
            for i in (node.id, *_vector_ids(node.namespace, node.key, 1, _vector_count(node)))
        ]
        if ids:
            self.store.batch([DeleteNodes(ids)])
        return len(expired)

    async def asweep_ttl(self) -> int:
        return await asyncio.to_thread(self.sweep_ttl)

    def start_ttl_sweeper(
        self, sweep_interval_minutes: float | None = None
    ) -> concurrent.futures.Future[None]:
        """Sweep in a background thread every ``sweep_interval_minutes`` (default: the
        ``TTLConfig``'s ``sweep_interval_minutes``, else 5) until :meth:`stop_ttl_sweeper`."""
        minutes = sweep_interval_minutes or (self.ttl_config or {}).get("sweep_interval_minutes")
        interval = 60.0 * float(minutes or 5)
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        if self._sweeper is not None and self._sweeper.is_alive():
            done.set_result(None)
            return done
        self._stop.clear()

        def loop() -> None:
            try:
                while not self._stop.wait(interval):
                    self.sweep_ttl()
                done.set_result(None)
            except Exception as exc:  # noqa: BLE001 - handed to the caller's future
                done.set_exception(exc)

        self._sweeper = threading.Thread(target=loop, name="gmem-ttl-sweeper", daemon=True)
        self._sweeper.start()
        return done

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper thread; True when it has stopped within ``timeout``."""
        if self._sweeper is None:
            return True
        self._stop.set()
        self._sweeper.join(timeout)
        stopped = not self._sweeper.is_alive()
        if stopped:
            self._sweeper = None
        return stopped

    def close(self) -> None:
        self.stop_ttl_sweeper(timeout=5)
        self.store.close()


def _resolve_embedder(
    embed: TextEmbedder | Embeddings | str | Any | None,
) -> TextEmbedder | Embeddings | None:
    """The embedder as the store uses it; a ``"provider:model"`` string or a function is
    made a LangChain ``Embeddings`` now, so that an unusable one fails here."""
    if embed is None or isinstance(embed, Embeddings | TextEmbedder):
        return embed
    try:
        return ensure_embeddings(embed)
    except Exception as exc:  # noqa: BLE001 - any provider failure means the same to the user
        raise ConfigError(
            f"cannot use the embedder {embed!r}: {exc}; pass an Embeddings object, an "
            "embedding function, or a provider:model whose package is installed"
        ) from None
