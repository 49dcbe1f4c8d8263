"""`gmem demo` end to end, as a newcomer runs it: a fresh folder, no terminal, no stdin."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gmem.embedding import HashingEmbedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory


@pytest.mark.slow
def test_demo_runs_both_conditions_and_writes_store_and_pictures(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GMEM_", "OPENAI_")) and k not in ("TERM", "COLUMNS")
    }
    # One BLAS thread: on a busy shared CI machine OpenBLAS's thread pool makes each small
    # MiniLM batch take ~1 s instead of ~10 ms (see the report on issue 4).
    env.update({"CI": "true", "OPENBLAS_NUM_THREADS": "1"})
    done = subprocess.run(
        # Lessons need several attempts of one procedure: 20 tasks is the least that yields some.
        [sys.executable, "-m", "gmem.cli", "demo", "--tasks", "20"],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=540,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "Traceback" not in done.stderr

    # The summary: both conditions measured on the same tasks, printed side by side.
    assert "Success rate, same tasks and seed" in out
    rates = re.search(r"Success without memory: (\d+)% · with gmem memory: (\d+)%", out)
    assert rates is not None, out[-2000:]
    assert "Memory size per tier" in out and "Reasoner usage per memory operation" in out
    assert "recalled" in out and "insights: added" in out  # per-task recall and evolution

    store = tmp_path / ".gmem" / "demo.db"
    assert str(store.resolve()) in out
    summary = json.loads((tmp_path / ".gmem" / "demo-summary.json").read_text())
    assert summary["tasks"] == 20
    assert round(summary["success_without_memory"] * 100) == int(rates[1])
    assert round(summary["success_with_memory"] * 100) == int(rates[2])

    # The store reopens with the public API and holds all three tiers.
    with Memory(store, embedder=HashingEmbedder(), llm=HeuristicLLM(HashingEmbedder())) as memory:
        counts = memory.stats()
        assert counts.nodes["Query"] > 0 and counts.nodes["Utterance"] > 0
        assert counts.nodes.get("Insight", 0) > 0
        assert len(memory.queries()) == counts.nodes["Query"]

    png = tmp_path / ".gmem" / "demo-tiers.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / ".gmem" / "demo-tiers.html").read_text(encoding="utf-8")
    data = re.search(r'<script type="application/json" id="gmem-data">(.*?)</script>', page, re.S)
    assert data is not None
    graph = json.loads(data[1])
    kinds = {n["kind"] for n in graph["nodes"]}
    assert kinds == {"Insight", "Query", "Utterance"} and graph["edges"]
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # no CDN
