"""How the memory grows: reopen, peak memory, size, recall and finish() cost per store size.

One store is grown through the sizes in turn (default 1,000, 10,000, 30,000 and 100,000
tasks). The first ``--evolve`` tasks (default 10,000) go through the full evolution
(``Memory.ingest``: the reasoner's insights, merging and retirement, similarity and
used-memory edges), so the insight tier is real; the rest go through bulk ingest
(``Memory.ingest_many(bulk=True)``: each query with its embedding, its trace with
HAS_TRACE / NEXT / REPLIES_TO edges, SIMILAR_TO edges to its nearest earlier queries),
which is what evolution writes minus the reasoner's work. Trajectories are a pool of demo-world
episodes, replayed with a numbered task text so that every task is a distinct query.

At each size the store is closed and a fresh process measures it, so that its peak RSS
is that of a process that opened the store and served it:

- reopen: opening the store (and the Memory over it);
- recall p50/p95 with the task's embedding computed, and without it (the text's
  embedding already cached, so only the traversal is timed);
- ``finish()`` of new tasks through full evolution (p50/p95);
- live and retired insights; on-disk size (file plus write-ahead log).

The bulk phase reports messages (utterances) written per second, with and without the
time spent embedding task texts. Results go to ``docs/img/scale-<label>.json`` and a plot
to ``docs/img/scale-<label>.png``.

Run: ``python benchmarks/scale.py [--sizes 1000 10000] [--store sqlite:///tmp/s.db]``
(a ``neo4j://`` URL measures a Neo4j server the same way; it must start empty or hold
a store this benchmark grew). ``--embedder hashing`` skips MiniLM for a quick check.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gmem.config import MemoryConfig
from gmem.demo.corpus import play
from gmem.demo.world import make_tasks
from gmem.embedding import HashingEmbedder, MiniLMEmbedder, TextEmbedder, cached
from gmem.embedding.protocol import FloatMatrix, WrappedEmbedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from gmem.trajectory import Trajectory
from graph_store import (
    GraphStore,
    NodeKind,
    open_store,
)
from graph_store.model import Insight
from graph_store.url import parse_store_url

NAMESPACE = "default"
POOL = 2000  # distinct episodes replayed; task texts are made distinct by a number
ROOT = Path(__file__).resolve().parent.parent


def make_embedder(name: str, vectors: Sequence[Path] = ()) -> TextEmbedder:
    model: TextEmbedder = HashingEmbedder() if name == "hashing" else MiniLMEmbedder()
    return Precomputed(model, vectors) if vectors else model


class Precomputed(WrappedEmbedder):
    """``inner``'s vectors for the task texts ``--embed-jobs`` wrote ahead, and ``inner``
    itself for every other text.

    Embedding the bulk phase's task texts is about half its CPU; computed ahead by another
    process while the evolved phase runs, on a machine with a core to spare, the bulk
    phase then only reads them (same model, so the same vectors)."""

    def __init__(self, inner: TextEmbedder, paths: Sequence[Path]) -> None:
        super().__init__(inner)
        pool = play(POOL, seed=3)
        self.rows: dict[str, FloatMatrix] = {}
        for path in paths:
            data = np.load(path)
            if data["vectors"].shape[1] != inner.dim or str(data["model"]) != inner.name:
                raise SystemExit(f"{path} holds vectors of another embedder than {inner.name}")
            first = int(data["start"])
            for n, row in enumerate(data["vectors"]):
                self.rows[job(pool, first + n).task] = row

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        missing = [t for t in texts if t not in self.rows]
        fresh = dict(zip(missing, self.inner.embed(missing), strict=True)) if missing else {}
        return np.stack([self.rows.get(t, fresh.get(t)) for t in texts]).astype(np.float32)


def embed_jobs(start: int, stop: int, embedder: TextEmbedder, path: Path) -> None:
    """Write the embeddings of task texts ``start..stop-1`` for :class:`Precomputed`."""
    pool = play(POOL, seed=3)
    out = np.zeros((stop - start, embedder.dim), dtype=np.float32)
    for lo in range(start, stop, 500):
        hi = min(stop, lo + 500)
        out[lo - start : hi - start] = embedder.embed([job(pool, i).task for i in range(lo, hi)])
        if (lo - start) // 500 % 20 == 0:
            print(
                f"  {time.strftime('%H:%M:%S')} embedded {hi}/{stop}", file=sys.stderr, flush=True
            )
    np.savez(path, start=start, model=embedder.name, vectors=out)


def make_memory(store: GraphStore, embedder: TextEmbedder) -> Memory:
    """The heuristic reasoner over Memory's own embedding cache, as ``Memory(store)``
    builds it (a reasoner over the bare embedder keeps a second cache, and encodes every
    new insight text a second time at the next merge)."""
    cfg = MemoryConfig()
    shared = cached(embedder)
    return Memory(store, embedder=shared, llm=HeuristicLLM(shared, cfg), config=cfg)


def job(pool: list[Trajectory], i: int) -> Trajectory:
    base = pool[i % len(pool)]
    return base.model_copy(update={"task": f"{base.task} (job {i})"})


def stored_tasks(store: GraphStore) -> int:
    return int(store.count(NAMESPACE).nodes.get("Query", 0)) if store.namespaces() else 0


def grow(
    url: str, pool: list[Trajectory], start: int, stop: int, evolve: int, embedder: TextEmbedder
) -> dict[str, float]:
    """Add tasks ``start..stop-1``: evolved below ``evolve``, bulk-written above.

    The bulk phase is the product's bulk path (``Memory.ingest_many(bulk=True)``, one
    transaction per ``bulk_ingest_batch`` tasks); the task texts are embedded first, on
    their own clock, so the rate is reported with and without embedding."""
    store = open_store(url)
    mem = make_memory(store, embedder)
    stats = {"evolved": 0.0, "evolve_s": 0.0, "bulk_msgs": 0.0, "bulk_s": 0.0, "embed_s": 0.0}
    t0 = time.perf_counter()
    for i in range(start, min(stop, evolve)):
        mem.ingest(job(pool, i))
        stats["evolved"] += 1
        if (i + 1) % 250 == 0:
            print(
                f"  {time.strftime('%H:%M:%S')} evolved {i + 1}/{min(stop, evolve)}"
                f" load {os.getloadavg()[0]:.1f}",
                file=sys.stderr,
                flush=True,
            )
    stats["evolve_s"] = time.perf_counter() - t0
    chunk = mem.config.bulk_ingest_batch
    for lo in range(max(start, evolve), stop, chunk):
        part = [job(pool, i) for i in range(lo, min(stop, lo + chunk))]
        t = time.perf_counter()
        mem.embedder.embed([p.task for p in part])  # cached: the writer finds them there
        stats["embed_s"] += time.perf_counter() - t
        t = time.perf_counter()
        mem.ingest_many(part, NAMESPACE, bulk=True)
        stats["bulk_s"] += time.perf_counter() - t
        stats["bulk_msgs"] += sum(len(p.steps) for p in part)
        if lo // chunk % 10 == 0:
            print(
                f"  {time.strftime('%H:%M:%S')} bulk {lo + len(part)}/{stop}"
                f" load {os.getloadavg()[0]:.1f}",
                file=sys.stderr,
                flush=True,
            )
    mem.close()
    return stats


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def summary(xs: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(xs), 2),
        "p95": round(percentile(xs, 95), 2),
        "n": len(xs),
    }


def disk_bytes(url: str) -> int | None:
    file = parse_store_url(url).file
    if file is None:
        return None
    return sum(
        p.stat().st_size for p in (file, Path(f"{file}-wal"), Path(f"{file}-shm")) if p.exists()
    )


def measure(url: str, embedder_name: str, probes: int, finishes: int, pool_size: int) -> None:
    """Run in a fresh process: open, recall, finish; print one JSON line."""
    embedder = make_embedder(embedder_name)
    embedder.embed(["warm the model up"])
    t0, c0 = time.perf_counter(), time.process_time()
    store = open_store(url)
    store_open_s = time.perf_counter() - t0
    store_open_cpu_s = time.process_time() - c0
    mem = make_memory(store, embedder)
    reopen_s = time.perf_counter() - t0
    reopen_cpu_s = time.process_time() - c0
    tasks = stored_tasks(store)
    texts = [t.text for t in make_tasks(2 * probes + 1, seed=11)]
    t = time.perf_counter()
    mem.recall(f"{texts[0]} (first probe)")
    first_ms = (time.perf_counter() - t) * 1000
    for text in texts[1:11]:  # warm caches
        mem.recall(f"{text} (warm)")
    cached = [f"{text} (cached probe {i})" for i, text in enumerate(texts[1 : probes + 1])]
    fresh = [f"{text} (fresh probe {i})" for i, text in enumerate(texts[probes + 1 :])]
    mem.embedder.embed(cached)  # their embeddings are in the cache now
    # Wall time, and this process's CPU time: on a shared machine a process waits for a
    # core, and the CPU time says what a recall costs when it does not have to.
    without, with_, without_cpu, with_cpu = [], [], [], []
    for a, b in zip(cached, fresh, strict=True):
        t, c = time.perf_counter(), time.process_time()
        mem.recall(a)
        without.append((time.perf_counter() - t) * 1000)
        without_cpu.append((time.process_time() - c) * 1000)
        t, c = time.perf_counter(), time.process_time()
        mem.recall(b)
        with_.append((time.perf_counter() - t) * 1000)
        with_cpu.append((time.process_time() - c) * 1000)
    pool = play(min(pool_size, finishes), seed=5)
    finish_ms = []
    for i, traj in enumerate(pool[:finishes]):
        task = mem.task(f"{traj.task} (finish probe {tasks}-{i})", NAMESPACE)
        task.recall("actor")
        for s in traj.steps:
            task.record(s.agent, s.role, s.content, action=s.action, observation=s.observation)
        t = time.perf_counter()
        task.finish(traj.success, traj.score)
        finish_ms.append((time.perf_counter() - t) * 1000)
    insights = [n for n in store.list_nodes(NodeKind.INSIGHT, NAMESPACE) if isinstance(n, Insight)]
    counts = store.count(NAMESPACE)
    mem.close()
    on_disk = disk_bytes(url)
    result = {
        "tasks": tasks,
        "utterances": counts.nodes.get("Utterance", 0),
        "edges": counts.total_edges,
        "reopen_s": round(reopen_s, 3),
        "store_open_s": round(store_open_s, 3),
        "reopen_cpu_s": round(reopen_cpu_s, 3),
        "store_open_cpu_s": round(store_open_cpu_s, 3),
        "first_recall_ms": round(first_ms, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "disk_mib": None if on_disk is None else round(on_disk / 2**20, 1),
        "recall_ms_without_embedding": summary(without),
        "recall_ms_with_embedding": summary(with_),
        "recall_cpu_ms_without_embedding": summary(without_cpu),
        "recall_cpu_ms_with_embedding": summary(with_cpu),
        "finish_ms": summary(finish_ms),
        "insights_live": sum(not n.retired for n in insights),
        "insights_retired": sum(n.retired for n in insights),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result))


def plot(results: list[dict[str, Any]], png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["tasks"] for r in results]
    fig, axes = plt.subplots(2, 3, figsize=(14, 7))
    ax = axes[0][0]
    ax.plot(xs, [r["reopen_s"] for r in results], "o-", label="store + Memory")
    ax.plot(xs, [r["store_open_s"] for r in results], "s--", label="store alone")
    ax.set_ylabel("reopen (s)")
    ax.legend()
    ax = axes[0][1]
    ax.plot(xs, [r["peak_rss_mib"] for r in results], "o-", label="peak RSS")
    if all(r["disk_mib"] is not None for r in results):
        ax.plot(xs, [r["disk_mib"] for r in results], "s--", label="on disk")
    ax.set_ylabel("MiB")
    ax.legend()
    ax = axes[0][2]
    ax.plot(xs, [r["insights_live"] for r in results], "o-", label="live")
    ax.plot(
        xs,
        [r["insights_live"] + r["insights_retired"] for r in results],
        "s--",
        label="live + retired",
    )
    ax.set_ylabel("insights")
    ax.legend()
    ax = axes[1][0]
    for key, label in (
        ("recall_ms_without_embedding", "recall, embedding cached"),
        ("recall_ms_with_embedding", "recall, embedding computed"),
    ):
        ax.plot(xs, [r[key]["p50"] for r in results], "o-", label=f"{label} p50")
        ax.plot(xs, [r[key]["p95"] for r in results], "x:", label=f"{label} p95")
    ax.set_ylabel("ms")
    ax.legend(fontsize=7)
    ax = axes[1][1]
    ax.plot(xs, [r["finish_ms"]["p50"] for r in results], "o-", label="finish() p50")
    ax.plot(xs, [r["finish_ms"]["p95"] for r in results], "x:", label="finish() p95")
    ax.set_ylabel("ms")
    ax.legend()
    ax = axes[1][2]
    ax.plot(
        xs,
        [r["recall_cpu_ms_without_embedding"]["p50"] for r in results],
        "o-",
        label="recall CPU, embedding cached p50",
    )
    ax.plot(
        xs,
        [r["recall_cpu_ms_with_embedding"]["p50"] for r in results],
        "s--",
        label="recall CPU, embedding computed p50",
    )
    ax.set_ylabel("ms of CPU")
    ax.legend(fontsize=7)
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_xlabel("stored tasks")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)


def child(args: argparse.Namespace, url: str, *what: str) -> str:
    """Run one phase in a fresh process (its peak RSS is its own) and return its last line."""
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            *what,
            "--store",
            url,
            "--embedder",
            args.embedder,
            "--probes",
            str(args.probes),
            "--finishes",
            str(args.finishes),
            *(["--vectors", *map(str, args.vectors)] if args.vectors and "--grow" in what else []),
        ],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return out.stdout.strip().splitlines()[-1]


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def revision() -> str:
    """The commit that measured a row (a long run may span several)."""
    out = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "unknown"


def keep_copy(url: str, keep: Path, size: int) -> None:
    """A copy of an embedded store (and its approximate index) as ``keep/scale-<size>.db``."""
    file = parse_store_url(url).file
    if file is None:
        return
    keep.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(file) as src, sqlite3.connect(keep / f"scale-{size}.db") as dst:
        src.backup(dst)  # a consistent copy, write-ahead log included
    sidecar = Path(f"{file}.ann")
    if sidecar.is_dir():  # its approximate index, so the copy need not rebuild it
        shutil.copytree(sidecar, keep / f"scale-{size}.db.ann", dirs_exist_ok=True)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 30_000, 100_000])
    parser.add_argument("--evolve", type=int, default=10_000, help="tasks through evolution")
    parser.add_argument("--store", default=None, help="store URL (default: a new temp file)")
    parser.add_argument("--embedder", choices=["minilm", "hashing"], default="minilm")
    parser.add_argument("--probes", type=int, default=200, help="recalls per measurement")
    parser.add_argument("--finishes", type=int, default=30, help="finish() calls measured")
    parser.add_argument("--label", default=None, help="output name (default: the backend)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument(
        "--resume", action="store_true", help="keep the rows of the JSON for smaller sizes"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="keep a copy of the embedded store at each size here (scale-<size>.db), so a "
        "later commit can measure the same store again: --sizes N --store sqlite:///copy",
    )
    parser.add_argument(
        "--vectors",
        type=Path,
        nargs="+",
        default=[],
        help="task-text embeddings written ahead by --embed-jobs, read by the bulk phase",
    )
    parser.add_argument(
        "--embed-jobs",
        type=int,
        nargs=2,
        metavar=("START", "STOP"),
        help="only embed the task texts of jobs START..STOP-1 into --vectors, and exit",
    )
    parser.add_argument(
        "--replot", action="store_true", help="only draw the plot again from the saved JSON"
    )
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--grow", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.embed_jobs and len(args.vectors) != 1:
        parser.error("--embed-jobs needs one --vectors FILE")
    return args


def main() -> None:
    args = arguments()
    url = args.store or f"sqlite:///{Path(tempfile.mkdtemp()) / 'scale.db'}"
    if args.measure:
        measure(url, args.embedder, args.probes, args.finishes, POOL)
        return
    if args.embed_jobs:
        embed_jobs(*args.embed_jobs, make_embedder(args.embedder), args.vectors[0])
        return
    if args.grow:
        start, stop = args.grow
        embedder = make_embedder(args.embedder, args.vectors)
        stats = grow(url, play(POOL, seed=3), start, stop, args.evolve, embedder)
        print(json.dumps(stats))
        return
    label = args.label or parse_store_url(url).backend
    results: list[dict[str, Any]] = []
    saved = args.out / f"scale-{label}.json"
    if args.replot:
        report = json.loads(saved.read_text())
        plot(report["results"], saved.with_suffix(".png"), f"gmem {label} store growth")
        return
    if args.resume and saved.exists():
        first = min(args.sizes)
        results = [r for r in json.loads(saved.read_text())["results"] if r["tasks"] < first]
    store = open_store(url)
    done = stored_tasks(store)
    store.close()
    for size in sorted(args.sizes):
        if size > done:
            print(f"growing to {size} tasks", file=sys.stderr, flush=True)
            stats = json.loads(
                child(args, url, "--grow", str(done), str(size), "--evolve", str(args.evolve))
            )
            done = size
        else:
            stats = {}
        if args.keep is not None:
            keep_copy(url, args.keep, size)
        print(f"measuring at {size}", file=sys.stderr, flush=True)
        row = json.loads(child(args, url, "--measure"))
        row["code"] = revision()
        done = row["tasks"]  # the measured finishes added a few tasks
        if stats.get("bulk_s"):
            row["ingest_msgs_per_s"] = round(stats["bulk_msgs"] / stats["bulk_s"])
            row["ingest_msgs_per_s_with_embedding"] = round(
                stats["bulk_msgs"] / (stats["bulk_s"] + stats["embed_s"])
            )
        if stats.get("evolved"):
            row["evolve_ms_per_task"] = round(1000 * stats["evolve_s"] / stats["evolved"], 1)
        if stats:
            row["evolved_tasks"] = min(args.evolve, size)
        results.append(row)
        print(json.dumps(row), flush=True)
        report = {
            "machine": f"{cpu_model()}, {os.cpu_count()} cores",
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "store": label,
            "embedder": args.embedder,
            "evolved_tasks": args.evolve,
            "results": results,
        }
        args.out.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(report, indent=2) + "\n")
        plot(results, args.out / f"scale-{label}.png", f"gmem {label} store growth")


if __name__ == "__main__":
    main()
