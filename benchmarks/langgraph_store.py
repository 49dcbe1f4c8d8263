"""GmemStore (LangGraph's BaseStore over gmem) on the embedded store: puts one call at a
time, puts in one batch, and a filter-only search. Prints one line per measurement.

    python benchmarks/langgraph_store.py [--items 2000] [--batch 10000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from langgraph.store.base import PutOp

from graph_store import EmbeddedStore
from integrations.langgraph import GmemStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=10000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = GmemStore(EmbeddedStore(Path(folder) / "store.db"))
        started = time.perf_counter()
        for i in range(args.items):
            store.put(("bench",), f"k{i}", {"i": i, "tag": "a" if i % 2 else "b"})
        each = (time.perf_counter() - started) / args.items
        print(f"{args.items} put() calls: {each * 1000:.2f} ms per put")
        started = time.perf_counter()
        store.batch([PutOp(("bulk",), f"k{i}", {"i": i}) for i in range(args.batch)])
        print(f"{args.batch} puts in one batch(): {time.perf_counter() - started:.2f} s")
        started = time.perf_counter()
        for _ in range(10):
            store.search(("bench",), filter={"tag": "a"}, limit=10)
        per = (time.perf_counter() - started) / 10
        print(f"filter-only search over {args.items} items: {per * 1000:.0f} ms")
        store.close()


if __name__ == "__main__":
    main()
