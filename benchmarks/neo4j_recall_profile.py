"""One recall on Neo4j, batch by batch and statement by statement.

    eval "$(graph_store/neo4j/server.sh env)"
    python benchmarks/neo4j_recall_profile.py [--probes 100] [--server-pid PID]

Runs ``Memory.recall`` for unseen tasks against the store as it stands (grow one first
with ``benchmarks/neo4j_scale.py``) and reports, per recall: wall time and the recalling
process's CPU (p50), the store batches by their operations and the Cypher statements
with their rows, each with its wall time and the client CPU it took (p50). With
``--server-pid`` (the Neo4j JVM on this machine: ``server.sh status`` prints it) the
server's CPU per recall and per statement too (meaningful only while nothing else uses
that server; per statement only as a mean, the JVM's CPU counting in clock ticks), which
together with the client's says how much of a recall is work and how much is waiting for
a core. Heuristic reasoner, hashing embedder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gmem.config import MemoryConfig
from gmem.demo.world import make_tasks
from gmem.embedding import make_embedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from graph_store.neo4j import Neo4jStore, programs


def process_cpu_s(pid: int) -> float:
    """User plus system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ms(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:.1f}"


def p95(xs: list[float]) -> str:
    return f"{sorted(xs)[round(0.95 * (len(xs) - 1))] * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=os.environ.get("GMEM_NEO4J_URI", ""))
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--server-pid", type=int, default=None)
    args = parser.parse_args()
    if not args.store.startswith(("bolt", "neo4j")):
        raise SystemExit('give a Neo4j URL: --store bolt://... or eval "$(server.sh env)"')
    embedder = make_embedder("hashing:384")
    store = Neo4jStore(args.store)
    cfg = MemoryConfig()
    mem = Memory(store, embedder=embedder, llm=HeuristicLLM(embedder, cfg), config=cfg)
    texts = [t.text for t in make_tasks(args.probes + 20, seed=11)]
    for text in texts[:20]:
        mem.recall(f"{text} (profile warm-up)")

    stored = store.count().nodes
    statements: dict[str, list[tuple[float, float, int, float]]] = defaultdict(list)
    jvm = args.server_pid
    batches: dict[str, list[float]] = defaultdict(list)
    drive = programs.drive

    def timed_drive(tx: Any, program: Any) -> Any:
        """``programs.drive``, timing each statement (rows fetched included)."""
        try:
            text, params = next(program)
            while True:
                served = process_cpu_s(jvm) if jvm else 0.0
                wall, cpu = time.perf_counter(), time.process_time()
                result = tx.run(text, params)
                keys = result.keys()
                rows = [dict(zip(keys, record, strict=True)) for record in result]
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                served = process_cpu_s(jvm) - served if jvm else 0.0
                statements[" ".join(text.split())[:140]].append((wall, cpu, len(rows), served))
                text, params = program.send(rows)
        except StopIteration as done:
            return done.value

    batch = store.batch

    def timed_batch(ops: Any) -> list[Any]:
        started = time.perf_counter()
        try:
            return batch(ops)
        finally:
            batches[" + ".join(type(op).__name__ for op in ops)].append(
                time.perf_counter() - started
            )

    programs.drive = timed_drive
    store.batch = timed_batch  # type: ignore[method-assign]
    server = process_cpu_s(args.server_pid) if args.server_pid else 0.0
    walls, cpus = [], []
    for i, text in enumerate(texts[20:]):
        wall, cpu = time.perf_counter(), time.process_time()
        mem.recall(f"{text} (profile {i})")
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    server = process_cpu_s(args.server_pid) - server if args.server_pid else 0.0
    programs.drive = drive
    n = len(walls)

    print(f"stored: {stored}; load average {os.getloadavg()}")
    line = f"recall p50 {ms(walls)} ms (p95 {p95(walls)}), client CPU p50 {ms(cpus)} ms"
    if args.server_pid:
        line += f", server CPU {server / n * 1000:.1f} ms per recall"
    per_recall = sum(map(len, statements.values())) / n
    print(
        line + f"; {sum(map(len, batches.values())) / n:.1f} batches and "
        f"{per_recall:.1f} statements per recall"
    )
    for ops, times in batches.items():
        print(f"  batch {ops}: {len(times) / n:.2f} per recall, p50 {ms(times)} ms")
    for text, runs in statements.items():
        wall_s, cpu_s, rows, served_s = zip(*runs, strict=True)
        # The JVM's CPU counts in clock ticks (10 ms here): only its mean over many
        # statements means anything, and it includes whatever else the server did.
        server_ms = f", server CPU mean {sum(served_s) / len(runs) * 1000:.1f} ms" if jvm else ""
        print(
            f"  {len(runs) / n:.2f} per recall, p50 {ms(list(wall_s))} ms, client CPU "
            f"{ms(list(cpu_s))} ms{server_ms}, {statistics.median(rows):.0f} rows: {text}"
        )
    mem.close()


if __name__ == "__main__":
    main()
