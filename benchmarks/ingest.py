"""Ingest throughput: messages (utterances) stored per second, bulk and with full evolution.

Trajectories are demo-world episodes replayed with a numbered task text, so every one is
a new query (about 22 messages each). Phases, one store:

1. ``--full`` trajectories through ``Memory.ingest`` one by one (full evolution with the
   heuristic reasoner: insights derived, credited, merged every ``merge_every``);
2. ``--tasks`` trajectories through ``Memory.ingest_many(bulk=True)`` in batches of
   ``bulk_ingest_batch``; for each batch the task texts are embedded first (timed apart;
   the embedder's cache then answers the bulk writer), so each batch gives messages per
   second with and without embedding time, in wall time and in this process's CPU time;
3. a JSONL file of ``--jsonl`` more trajectories through ``Memory.ingest_jsonl(bulk=True)``,
   what ``gmem ingest FILE --bulk`` runs: reading, validating, embedding and writing.

The medians over the batches of phase 2 are the headline figures. On Neo4j the CPU
figures are the client's only (the server's work shows in wall time).

Run: ``python benchmarks/ingest.py [--store sqlite:///tmp/i.db | bolt://...]
[--embedder minilm] [--tasks 20000]``; one JSON object is printed and, with ``--out``,
written to a file. ``--copy-of FILE`` starts from a copy of an embedded store an earlier
run left (the job numbers go on after its tasks), so the rates are those of a store that
already holds data, and the same start serves runs of different code.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.scale import cpu_model, job, make_embedder, make_memory, revision
from gmem.demo.corpus import play
from gmem.trajectory import Trajectory
from graph_store import open_store
from graph_store.url import parse_store_url

POOL = 500  # distinct episodes replayed; task texts are made distinct by a number


class Clock:
    """Wall and CPU seconds of one timed step."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def messages(part: list[Trajectory]) -> int:
    return sum(len(t.steps) for t in part)


def rate(msgs: float, seconds: float) -> float:
    return round(msgs / seconds) if seconds > 0 else 0.0


def full_phase(mem: Any, pool: list[Trajectory], start: int, count: int) -> dict[str, Any]:
    part = [job(pool, i) for i in range(start, start + count)]
    clock = Clock()
    for traj in part:
        mem.ingest(traj)
    wall, cpu = clock.stop()
    msgs = messages(part)
    return {
        "trajectories": count,
        "messages": msgs,
        "msgs_per_s": rate(msgs, wall),
        "msgs_per_cpu_s": rate(msgs, cpu),
    }


def bulk_phase(mem: Any, pool: list[Trajectory], start: int, count: int) -> dict[str, Any]:
    step = mem.config.bulk_ingest_batch
    batches: list[dict[str, float]] = []
    for lo in range(start, start + count, step):
        part = [job(pool, i) for i in range(lo, min(start + count, lo + step))]
        clock = Clock()
        mem.embedder.embed([t.task for t in part])
        embed_wall, embed_cpu = clock.stop()
        clock = Clock()
        reports = mem.ingest_many(part, bulk=True)
        wall, cpu = clock.stop()
        assert all(r.stored for r in reports)
        msgs = messages(part)
        batches.append(
            {
                "stored_before": lo,
                "messages": msgs,
                "msgs_per_s": rate(msgs, wall),
                "msgs_per_s_with_embedding": rate(msgs, wall + embed_wall),
                "msgs_per_cpu_s": rate(msgs, cpu),
                "msgs_per_cpu_s_with_embedding": rate(msgs, cpu + embed_cpu),
            }
        )
        print(json.dumps(batches[-1]), file=sys.stderr, flush=True)

    def median(key: str) -> float:
        return round(statistics.median(b[key] for b in batches))

    return {
        "trajectories": count,
        "batch": step,
        "batches": len(batches),
        "median_msgs_per_s": median("msgs_per_s"),
        "median_msgs_per_s_with_embedding": median("msgs_per_s_with_embedding"),
        "median_msgs_per_cpu_s": median("msgs_per_cpu_s"),
        "median_msgs_per_cpu_s_with_embedding": median("msgs_per_cpu_s_with_embedding"),
        "per_batch": batches,
    }


def jsonl_phase(mem: Any, pool: list[Trajectory], start: int, count: int) -> dict[str, Any]:
    part = [job(pool, i) for i in range(start, start + count)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runs.jsonl"
        path.write_text(
            "".join(t.model_dump_json(exclude_none=True) + "\n" for t in part), encoding="utf-8"
        )
        clock = Clock()
        result = mem.ingest_jsonl(path, bulk=True)
        wall, cpu = clock.stop()
    assert result.ingested == count
    msgs = messages(part)
    return {
        "trajectories": count,
        "messages": msgs,
        "msgs_per_s": rate(msgs, wall),
        "msgs_per_cpu_s": rate(msgs, cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--store", default=None, help="store URL (default: a new temp file)")
    parser.add_argument("--embedder", choices=["minilm", "hashing"], default="hashing")
    parser.add_argument("--tasks", type=int, default=20_000, help="bulk-written trajectories")
    parser.add_argument("--full", type=int, default=200, help="trajectories fully evolved")
    parser.add_argument("--jsonl", type=int, default=2_000, help="trajectories from JSONL")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--copy-of", type=Path, default=None, help="start from a copy of it")
    args = parser.parse_args()
    url = args.store or f"sqlite:///{Path(tempfile.mkdtemp()) / 'ingest.db'}"
    if args.copy_of is not None:
        target = parse_store_url(url).file
        if target is None or target.exists():
            raise SystemExit("--copy-of needs a new sqlite:/// file to copy into")
        shutil.copyfile(args.copy_of, target)
    pool = play(POOL, seed=3)
    embedder = make_embedder(args.embedder)
    embedder.embed(["warm the model up"])
    mem = make_memory(open_store(url), embedder)
    done = 0
    if args.copy_of is not None:
        done = int(mem.store.count().nodes.get("Query", 0))
    elif mem.store.namespaces():
        raise SystemExit(f"{url} is not empty; give a new store")
    result: dict[str, Any] = {
        "machine": f"{cpu_model()}, {os.cpu_count()} cores",
        "store": parse_store_url(url).backend,
        "embedder": args.embedder,
        "code": revision(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "stored_at_start": done,
    }
    if args.full:
        result["full_evolution"] = full_phase(mem, pool, done, args.full)
        done += args.full
    result["bulk"] = bulk_phase(mem, pool, done, args.tasks)
    done += args.tasks
    if args.jsonl:
        result["jsonl_bulk"] = jsonl_phase(mem, pool, done, args.jsonl)
        done += args.jsonl
    result["stored_tasks"] = done
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    mem.close()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
