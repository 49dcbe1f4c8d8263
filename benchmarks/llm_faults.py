"""How long a memory operation takes when the endpoint misbehaves, against its deadline.

Uses the scripted OpenAI-compatible HTTP server of ``tests/test_llm_openai.py`` (real
sockets, the real ``openai`` client) for each fault: 429 and 500 forever, a completion
dripped one byte every 0.2 s, a hung endpoint, a truncated 200 body, a 4 MB answer, and
an answer nested 20,000 levels deep. Each operation runs behind ``FallbackLLM``, so it
ends with the heuristic's answer; reported: wall time of that operation, requests made,
and the wall time of the next call, which the open circuit breaker refuses at once.

Run: ``.venv/bin/python benchmarks/llm_faults.py [--deadline 2]``
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from gmem.config import MemoryConfig
from gmem.embedding import HashingEmbedder
from gmem.llm import FallbackLLM, HeuristicLLM, OpenAIChat
from tests.test_llm_openai import RELEVANCE, Cut, Drip, Reply, ScriptedServer, Slow, Status

FAULTS: dict[str, Any] = {
    "429 forever (Retry-After 1)": Status(429, "slow down", {"retry-after": "1"}),
    "500 forever": Status(500, "internal error"),
    "drip, 1 byte / 0.2 s": Drip(Reply('{"scores": [1, 1, 1]}'), interval=0.2),
    "hang": Slow(600.0, Reply("{}")),
    "truncated 200 body": Cut(b'{"id": "chatcmpl-1", "choi'),
    "4 MB answer": Reply('{"scores": [0.1, 0.2, 0.3]}' + " " * 4_000_000),
    "nested 20,000 deep": Reply('{"a":' * 20000),
}


def run(name: str, item: Any, deadline: float) -> dict[str, Any]:
    server = ScriptedServer()
    server.start()
    try:
        server.respond(then=item)
        config = MemoryConfig(
            llm_deadline_s=deadline,
            llm_timeout_s=60.0,
            llm_max_retries=2,
            llm_breaker_failures=1,
        )
        chat = OpenAIChat(base_url=server.url, model="m", config=config, backoff_s=0.2)
        llm = FallbackLLM(chat, HeuristicLLM(HashingEmbedder(), config))
        started = time.perf_counter()
        llm.score_relevance(RELEVANCE)
        first = time.perf_counter() - started
        requests = len(server.requests)
        started = time.perf_counter()
        llm.score_relevance(RELEVANCE)
        second = time.perf_counter() - started
        return {
            "fault": name,
            "first_s": first,
            "requests": requests,
            "degraded": llm.fallbacks["score_relevance"],
            "breaker_open": chat.breaker.is_open,
            "next_s": second,
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deadline", type=float, default=2.0)
    args = parser.parse_args()
    print(f"deadline {args.deadline:g} s, 2 retries, breaker after 1 failed operation")
    print(
        "| fault | first call s | requests | of 2 calls, answered by the heuristic "
        "| breaker open after the first | next call |"
    )
    print("|---|---:|---:|---:|---|---:|")
    for name, item in FAULTS.items():
        r = run(name, item, args.deadline)
        print(
            f"| {r['fault']} | {r['first_s']:.2f} | {r['requests']} | {r['degraded']} | "
            f"{'yes' if r['breaker_open'] else 'no'} | {r['next_s'] * 1000:.1f} ms |"
        )


if __name__ == "__main__":
    main()
