"""GmemStore (LangGraph's BaseStore over gmem) on the embedded store, beside LangGraph's
InMemoryStore: puts one call at a time, puts in one batch, a filter-only search, and
concurrent async calls (the mix of LangGraph's ``test_large_batches_async``). Prints one
line per measurement and store: wall-clock time and the CPU time of this process (all its
threads), which a machine shared with other jobs inflates far less.

    python benchmarks/langgraph_store.py [--items 2000] [--batch 10000] [--concurrent 6000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from langgraph.store.base import BaseStore, PutOp
from langgraph.store.memory import InMemoryStore

from graph_store import EmbeddedStore
from integrations.langgraph import GmemStore


class Clock:
    """Wall-clock and process CPU seconds since it was made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def spent(self, per: int = 1, unit: float = 1.0, digits: int = 2) -> str:
        wall = (time.perf_counter() - self.wall) / per * unit
        cpu = (time.process_time() - self.cpu) / per * unit
        return f"{wall:.{digits}f} wall, {cpu:.{digits}f} CPU"


def measure(name: str, store: BaseStore, args: argparse.Namespace) -> None:
    clock = Clock()
    for i in range(args.items):
        store.put(("bench",), f"k{i}", {"i": i, "tag": "a" if i % 2 else "b"})
    print(f"{name}: {args.items} put() calls: {clock.spent(args.items, 1000)} ms per put")
    for label, offset in (("new keys", 0), ("the same keys again", 1)):
        clock = Clock()
        store.batch([PutOp(("bulk",), f"k{i}", {"i": i + offset}) for i in range(args.batch)])
        print(f"{name}: {args.batch} puts in one batch(), {label}: {clock.spent()} s")
    clock = Clock()
    for _ in range(10):
        store.search(("bench",), filter={"tag": "a"}, limit=10)
    print(f"{name}: filter-only search over {args.items} items: {clock.spent(10, 1000, 1)} ms")
    clock = Clock()
    asyncio.run(concurrent_calls(store, args.concurrent // 6))
    print(f"{name}: {args.concurrent // 6 * 6} concurrent async calls: {clock.spent()} s")


async def concurrent_calls(store: BaseStore, rounds: int) -> None:
    """Puts, gets, namespace listings, searches and deletes, all in flight at once."""
    calls = []
    for i in range(rounds):
        ns = ("test", "foo", "bar", "baz", str(i % 2))
        calls += [
            store.aput(ns, f"key{i}", {"foo": f"bar{i}"}),
            store.aget(ns, f"key{i}"),
            store.alist_namespaces(prefix=None, max_depth=i % 10 + 1),
            store.asearch(("test",), limit=10),
            store.aput(ns, f"key{i}", {"foo": f"bar{i}"}),
            store.adelete(ns, f"key{i}"),
        ]
    await asyncio.gather(*calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=10000)
    parser.add_argument("--concurrent", type=int, default=6000)
    args = parser.parse_args()
    measure("InMemoryStore", InMemoryStore(), args)
    with tempfile.TemporaryDirectory() as folder:
        store = GmemStore(EmbeddedStore(Path(folder) / "store.db"))
        measure("GmemStore", store, args)
        store.close()


if __name__ == "__main__":
    main()
