"""The five memory operations through a real model: validity and latency per operation.

Talks to the local llama.cpp server that ``gmem/llm/local_server.sh`` starts (SmolLM2-135M-
Instruct), or any endpoint named by ``GMEM_LLM_BASE_URL`` / ``GMEM_LLM_MODEL``. Each
operation is asked ``--rounds`` times on a small request from the demo world's kind of
task, for each ``response_format`` given; reported per operation: requests, the share of
answers that were usable (valid JSON, schema and request checks passed), the share of
operations that ended with a model answer (the rest fell back to the heuristic), and
median and worst latency per operation. The model is tiny: this measures the plumbing.

Run: ``bash gmem/llm/local_server.sh start && eval "$(bash gmem/llm/local_server.sh env)"``
then ``.venv/bin/python benchmarks/llm_real.py [--rounds 5] [--formats json_object,...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

from gmem.config import MemoryConfig
from gmem.errors import LLMError
from gmem.llm import (
    CandidateView,
    InsightRequest,
    InsightView,
    KeyStepsRequest,
    MergeRequest,
    OpenAIChat,
    ProjectionRequest,
    RelevanceRequest,
    StepView,
    TrajectoryView,
)

STEPS = [
    StepView(index=0, agent="p", role="planner", content="Plan: find the mug, clean it, store it."),
    StepView(
        index=1, agent="a", role="actor", content="go to countertop 1", action="go to countertop 1"
    ),
    StepView(index=2, agent="a", role="actor", content="look", observation="Nothing happens."),
    StepView(index=3, agent="a", role="actor", content="take mug 1", action="take mug 1"),
    StepView(index=4, agent="a", role="actor", content="clean mug 1 with sinkbasin 1"),
    StepView(index=5, agent="a", role="actor", content="put mug 1 in cabinet 2", reward=1.0),
]
INSIGHTS = [
    InsightView(id="i1", text="Clean an object at the sinkbasin before putting it away.", score=3),
    InsightView(id="i2", text="Wash the object in the sink before placing it.", score=2),
    InsightView(id="i3", text="Open a closed receptacle before taking from it.", score=1),
]

REQUESTS: dict[str, Any] = {
    "score_relevance": RelevanceRequest(
        task="put a clean mug in the cabinet",
        candidates=[
            CandidateView(id="q1", task="put a clean cup in the cabinet", outcome="success"),
            CandidateView(id="q2", task="heat an egg in the microwave", outcome="failure"),
            CandidateView(id="q3", task="clean a mug and put it on the shelf", outcome="success"),
        ],
    ),
    "extract_key_steps": KeyStepsRequest(
        task="put a clean mug in the cabinet", outcome="success", steps=STEPS
    ),
    "derive_insights": InsightRequest(
        trajectory=TrajectoryView(
            task="put a clean mug in the cabinet", outcome="success", steps=STEPS
        ),
        existing=INSIGHTS[:1],
        roles=["planner", "actor"],
    ),
    "project_insights": ProjectionRequest(
        role="actor", task="put a clean mug in the cabinet", insights=INSIGHTS
    ),
    "merge_insights": MergeRequest(insights=INSIGHTS),
}


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return os.uname().machine
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    name = fields.get("Model name", "?").strip()
    return f"{name}, {os.cpu_count()} CPUs"


def measure(chat: OpenAIChat, op: str, rounds: int) -> dict[str, Any]:
    call: Callable[[Any], Any] = getattr(chat, op)
    latencies: list[float] = []
    answered = 0
    for _ in range(rounds):
        started = time.perf_counter()
        try:
            call(REQUESTS[op])
            answered += 1
        except LLMError:
            pass
        latencies.append(time.perf_counter() - started)
    usage = chat.usage.by_operation.get(op)
    requests = usage.calls if usage else 0
    usable = requests - (usage.failures if usage else 0)
    return {
        "op": op,
        "rounds": rounds,
        "requests": requests,
        "valid_answers": usable / requests if requests else 0.0,
        "model_answered": answered / rounds,
        "median_s": statistics.median(latencies),
        "max_s": max(latencies),
        "completion_tokens": usage.completion_tokens if usage else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--formats", default="json_object,json_object+schema")
    parser.add_argument("--deadline", type=float, default=120.0)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    rows = []
    for kind in args.formats.split(","):
        config = MemoryConfig(
            llm_response_format=kind,  # type: ignore[arg-type]
            llm_deadline_s=args.deadline,
            llm_breaker_failures=1000,  # measure every round, even after failures
        )
        with OpenAIChat(config=config) as chat:
            for op in REQUESTS:
                row = measure(chat, op, args.rounds)
                row["format"] = kind
                rows.append(row)
    if args.json:
        print(json.dumps({"machine": machine(), "rows": rows}, indent=2))
        return
    print(f"machine: {machine()}; model: {os.environ.get('GMEM_LLM_MODEL', '?')}")
    print(
        "| response_format | operation | requests | valid answers | model answered "
        "| median s | max s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['format']} | {r['op']} | {r['requests']} | {r['valid_answers']:.0%} | "
            f"{r['model_answered']:.0%} | {r['median_s']:.2f} | {r['max_s']:.2f} |"
        )


if __name__ == "__main__":
    main()
