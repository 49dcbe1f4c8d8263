"""An approximate nearest-neighbour index (HNSW, from usearch) over one node kind's vectors,
kept in a file beside the store, for stores where exact search is too slow for a recall.

It only proposes candidates. Its keys are the node rows' ``seq`` (never reused, since the
column is AUTOINCREMENT), and every candidate is read back from SQLite, id, namespace and
stored vector, and scored exactly, so an approximate or out-of-date entry can at worst
cost a neighbour, never return a wrong id, namespace or score. It follows the store's
change log: its file records the store it belongs to and the last log entry it reflects,
and on opening it replays the log from there (a writer in another process included), or is
rebuilt from the rows when the log no longer reaches back that far, the file belongs to
another store, or it is missing or unreadable.

usearch is an optional dependency (the ``ann`` extra); without it the store searches
exactly, whatever its size.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt


@functools.cache
def _index_class() -> Any:
    """usearch's ``Index``, imported on first use (only stores past the size threshold
    need it).

    Once usearch's compiled module is loaded, TorchScript compilation never returns, and
    PyG compiles classes when it is imported, so a process that opened a large store
    could never train the GNN afterwards. Loading torch first (when it is installed)
    avoids the clash; it is paid once, by the first index a process opens.
    """
    if importlib.util.find_spec("torch") is not None:
        import torch  # noqa: F401
    from usearch.index import Index

    return Index


#: File format of the saved index (a JSON header line, then usearch's own bytes).
FORMAT = 1
#: Scalar type the index keeps its vectors in: half the memory of float32, and candidates
#: are rescored from the stored float32 vectors anyway.
DTYPE = "f16"
#: HNSW graph degree and build/search breadths (usearch's names).
CONNECTIVITY = 16
EXPANSION_ADD = 128
EXPANSION_SEARCH = 128
#: First key of the stand-in rows that overwrite a deleted node's slot: above any row's
#: ``seq``, so a stand-in never shadows a node.
_STAND_IN_KEY = 2**63


def available() -> bool:
    """Whether the ``ann`` extra (usearch) is installed (without importing it)."""
    return importlib.util.find_spec("usearch") is not None


class ApproximateIndex:
    """The HNSW graph of one (kind, field), which row each key is, and the log entry it
    reflects."""

    def __init__(
        self,
        file: Path,
        store_id: str,
        dim: int,
        index: Any,
        through: int,
        key_of: dict[str, int],
    ) -> None:
        self.file = file
        self.store_id = store_id
        self.dim = dim
        self.through = through
        self._index = index
        # Which row each node's entry was made from: a node deleted or replaced elsewhere
        # is found in the log by its id, and its entry removed by key.
        self._key_of = key_of
        self.unsaved = 0

    @classmethod
    def empty(cls, file: Path, store_id: str, dim: int) -> ApproximateIndex:
        index = _index_class()(
            ndim=dim,
            metric="cos",
            dtype=DTYPE,
            connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD,
            expansion_search=EXPANSION_SEARCH,
        )
        return cls(file, store_id, dim, index, through=0, key_of={})

    @classmethod
    def load(cls, file: Path, store_id: str, dim: int) -> ApproximateIndex | None:
        """The saved index, or None if it is missing, unreadable or not this store's."""
        if not available() or not file.exists():
            return None
        try:
            data = file.read_bytes()
            end = data.index(b"\n")
            head = json.loads(data[:end])
            if (head.get("format"), head.get("store"), head.get("dim")) != (
                FORMAT,
                store_id,
                dim,
            ):
                return None
            index = _index_class().restore(
                data[end + 1 :],
                connectivity=CONNECTIVITY,
                expansion_add=EXPANSION_ADD,
                expansion_search=EXPANSION_SEARCH,
            )
            key_of = dict(zip(head["ids"], head["keys"], strict=True))
            through = int(head["through"])
        except (OSError, ValueError, RuntimeError, KeyError, TypeError):
            return None
        if index is None or index.ndim != dim or len(index) != len(key_of):
            return None
        return cls(file, store_id, dim, index, through=through, key_of=key_of)

    def __len__(self) -> int:
        return len(self._key_of)

    def upsert(self, ids: list[str], keys: list[int], vectors: npt.NDArray[np.float32]) -> None:
        """Add rows, replacing the entries the same nodes had."""
        if not ids:
            return
        # The new rows take the freed slots, overwriting the old vectors, so nothing of
        # them needs erasing.
        self.remove(ids, erase=False)
        self._index.add(np.asarray(keys, dtype=np.uint64), vectors)
        self._key_of.update(zip(ids, keys, strict=True))
        self.unsaved += len(ids)

    def remove(self, ids: list[str], *, erase: bool = True) -> None:
        old = [key for node_id in ids if (key := self._key_of.pop(node_id, None)) is not None]
        if old:
            self._index.remove(np.asarray(old, dtype=np.uint64))
            if erase:
                self._erase(len(old))
            self.unsaved += len(old)

    def _erase(self, count: int) -> None:
        """usearch only marks a removed entry: its vector stays in the slot, and so in the
        saved file, until another entry takes the slot. A forgotten node's vector must
        not outlive it on disk, so stand-in rows (one constant vector) take the freed
        slots and are removed in turn, leaving only the stand-in's bytes behind."""
        keys = np.arange(_STAND_IN_KEY, _STAND_IN_KEY + count, dtype=np.uint64)
        filler = np.full((count, self.dim), 1.0 / np.sqrt(self.dim), dtype=np.float32)
        self._index.add(keys, filler)
        self._index.remove(keys)

    def candidates(self, vec: npt.NDArray[np.float32], count: int) -> list[int]:
        """Keys of about the ``count`` rows nearest to ``vec`` (in no promised order)."""
        if count <= 0 or not self._key_of:
            return []
        found = self._index.search(vec, min(count, len(self._key_of)), threads=1)
        return [int(k) for k in found.keys]

    def save(self) -> None:
        """Write the index, its keys and what it reflects as one file, replaced atomically:
        a crash leaves the previous file, which the change log then brings up to date."""
        head = {
            "format": FORMAT,
            "store": self.store_id,
            "dim": self.dim,
            "through": self.through,
            "ids": list(self._key_of),
            "keys": list(self._key_of.values()),
        }
        tmp = self.file.with_name(f"{self.file.name}.{os.getpid()}.tmp")
        try:
            self.file.parent.mkdir(exist_ok=True)
            with tmp.open("wb") as out:
                out.write(json.dumps(head, separators=(",", ":")).encode() + b"\n")
                out.write(self._index.save())
            os.replace(tmp, self.file)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            return  # kept in memory; the next save (or a rebuild) tries again
        self.unsaved = 0
