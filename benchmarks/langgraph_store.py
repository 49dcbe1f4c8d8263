"""GmemStore (LangGraph's BaseStore over gmem) on the embedded store, beside LangGraph's
InMemoryStore: puts one call at a time, puts in one batch, a filter-only search, and
concurrent async calls (the mix of LangGraph's ``test_large_batches_async``). Prints one
line per measurement and store.

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


def measure(name: str, store: BaseStore, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    for i in range(args.items):
        store.put(("bench",), f"k{i}", {"i": i, "tag": "a" if i % 2 else "b"})
    each = (time.perf_counter() - started) / args.items
    print(f"{name}: {args.items} put() calls: {each * 1000:.2f} ms per put")
    started = time.perf_counter()
    store.batch([PutOp(("bulk",), f"k{i}", {"i": i}) for i in range(args.batch)])
    print(f"{name}: {args.batch} puts in one batch(): {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    for _ in range(10):
        store.search(("bench",), filter={"tag": "a"}, limit=10)
    per = (time.perf_counter() - started) / 10
    print(f"{name}: filter-only search over {args.items} items: {per * 1000:.1f} ms")
    elapsed = asyncio.run(concurrent_calls(store, args.concurrent // 6))
    print(f"{name}: {args.concurrent // 6 * 6} concurrent async calls: {elapsed:.2f} s")


async def concurrent_calls(store: BaseStore, rounds: int) -> float:
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
    started = time.perf_counter()
    await asyncio.gather(*calls)
    return time.perf_counter() - started


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
