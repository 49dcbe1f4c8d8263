"""OpenAIChat over real HTTP against a scripted OpenAI-compatible server.

The server (stdlib ``ThreadingHTTPServer`` on 127.0.0.1) is the only fake: the real
``openai`` client sends real requests, so retries, timeouts, status codes and usage
accounting are exercised the way they happen against vLLM, Ollama or llama.cpp.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from gmem.config import MemoryConfig
from gmem.embedding import HashingEmbedder
from gmem.errors import LLMError
from gmem.llm import (
    LLM,
    CandidateView,
    HeuristicLLM,
    InsightRequest,
    InsightView,
    KeyStepsRequest,
    MergeRequest,
    OpenAIChat,
    ProjectionRequest,
    RelevanceRequest,
    StepView,
    TrajectoryView,
    make_llm,
)


# ---- the scripted server -------------------------------------------------------------
@dataclass
class Reply:
    content: str | None
    prompt_tokens: int = 11
    completion_tokens: int = 7


@dataclass
class Status:
    code: int
    message: str = "scripted error"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Raw:
    body: str
    content_type: str = "text/html"


@dataclass
class Slow:
    seconds: float
    then: Reply | Status | Raw


Item = Reply | Status | Raw | Slow


class ScriptedServer:
    """Answers each POST with the next scripted item, then with ``then`` forever."""

    def __init__(self) -> None:  # noqa: C901  counts the request handler class it defines
        self.script: deque[Item] = deque()
        self.then: Item = Status(500, "script exhausted")
        self.requests: list[dict[str, Any]] = []
        self.models = ["served-model"]
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    data = [
                        {"id": m, "object": "model", "created": 0, "owned_by": "t"}
                        for m in server.models
                    ]
                    self._send(200, {"object": "list", "data": data})
                else:
                    self._send(404, {"error": {"message": "no such path"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length))
                server.requests.append({"path": self.path, "body": body})
                item = server.script.popleft() if server.script else server.then
                if isinstance(item, Slow):
                    if server.stopping.wait(item.seconds):
                        return
                    item = item.then
                try:
                    if isinstance(item, Status):
                        error = {"error": {"message": item.message, "type": "scripted"}}
                        self._send(item.code, error, item.headers)
                    elif isinstance(item, Raw):
                        self._send_raw(200, item.body.encode(), item.content_type)
                    else:
                        self._send(200, _completion(body, item))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout); nothing to answer

            def _send(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                self._send_raw(code, json.dumps(payload).encode(), "application/json", headers)

            def _send_raw(
                self,
                code: int,
                raw: bytes,
                content_type: str,
                headers: dict[str, str] | None = None,
            ) -> None:
                self.send_response(code)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(raw)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def respond(self, *items: Item, then: Item | None = None) -> None:
        self.script.extend(items)
        if then is not None:
            self.then = then

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _completion(request: dict[str, Any], reply: Reply) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "?"),
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": reply.content},
            }
        ],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }


@pytest.fixture(autouse=True)
def _no_endpoint_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "GMEM_LLM_BASE_URL",
        "GMEM_LLM_MODEL",
        "GMEM_LLM_API_KEY",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "GMEM_LLM_MAX_RETRIES",
        "GMEM_LLM_TIMEOUT_S",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def make_chat(server: ScriptedServer, retries: int = 2, timeout: float = 5.0) -> OpenAIChat:
    config = MemoryConfig(llm_max_retries=retries, llm_timeout_s=timeout)
    return OpenAIChat(
        base_url=server.url,
        model="test-model",
        api_key="sk-test",
        config=config,
        backoff_s=0.01,
        max_backoff_s=0.05,
    )


RELEVANCE = RelevanceRequest(
    task="put a clean mug in the cabinet",
    candidates=[
        CandidateView(id="q1", task="put a clean cup in the cabinet", outcome="success"),
        CandidateView(id="q2", task="heat an egg", outcome="failure"),
        CandidateView(id="q3", task="clean a mug", outcome="success"),
    ],
)


def _user_messages(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["body"]["messages"] if m["role"] == "user"]


# ---- the happy path ------------------------------------------------------------------
def test_valid_json_is_validated_and_usage_counted(server: ScriptedServer) -> None:
    server.respond(Reply('{"scores": [0.9, 0.1, 0.6]}', prompt_tokens=120, completion_tokens=9))
    chat = make_chat(server)

    result = chat.score_relevance(RELEVANCE)

    assert result.scores == [0.9, 0.1, 0.6]
    usage = chat.usage.by_operation["score_relevance"]
    assert (usage.calls, usage.prompt_tokens, usage.completion_tokens, usage.failures) == (
        1,
        120,
        9,
        0,
    )
    body = server.requests[0]["body"]
    assert server.requests[0]["path"] == "/v1/chat/completions"
    assert body["model"] == "test-model"
    assert body["response_format"] == {"type": "json_object"}
    system, user = body["messages"]
    assert system["role"] == "system" and "score" in system["content"].lower()
    # The request is shown as compact JSON and the schema is included.
    assert RELEVANCE.model_dump_json(exclude_none=True) in user["content"]
    assert '"scores"' in user["content"] and '"type":"array"' in user["content"]


def test_fenced_json_with_prose_and_thinking_is_parsed(server: ScriptedServer) -> None:
    server.respond(
        Reply(
            "<think>the first {is} a cup</think>Sure! Here it is:\n```json\n"
            '{"scores": [1, 0, 0.5]}\n```\nHope that helps {really}.'
        )
    )
    chat = make_chat(server)

    assert chat.score_relevance(RELEVANCE).scores == [1.0, 0.0, 0.5]
    assert len(server.requests) == 1


# ---- content failures ----------------------------------------------------------------
def test_malformed_json_is_reasked_and_both_calls_are_counted(server: ScriptedServer) -> None:
    server.respond(
        Reply('{"scores": [0.9, 0.1', prompt_tokens=100, completion_tokens=5),
        Reply('{"scores": [0.9, 0.1, 0.2]}', prompt_tokens=130, completion_tokens=8),
    )
    chat = make_chat(server)

    assert chat.score_relevance(RELEVANCE).scores == [0.9, 0.1, 0.2]

    usage = chat.usage.by_operation["score_relevance"]
    assert (usage.calls, usage.failures) == (2, 1)
    assert (usage.prompt_tokens, usage.completion_tokens) == (230, 13)
    retry = server.requests[1]["body"]["messages"]
    assert retry[-2] == {"role": "assistant", "content": '{"scores": [0.9, 0.1'}
    assert "no JSON object" in retry[-1]["content"]


def test_always_malformed_raises_after_the_retry_budget(server: ScriptedServer) -> None:
    server.respond(then=Reply("I think the first one is most relevant."))
    chat = make_chat(server, retries=2)

    with pytest.raises(LLMError) as info:
        chat.score_relevance(RELEVANCE)

    message = str(info.value)
    assert len(server.requests) == 3
    assert "score_relevance" in message and "no JSON object" in message
    assert "\n" not in message
    usage = chat.usage.by_operation["score_relevance"]
    assert (usage.calls, usage.failures) == (3, 3)


def test_schema_violation_is_reasked_with_the_validation_error(server: ScriptedServer) -> None:
    server.respond(
        Reply('{"scores": "high"}'),
        Reply('{"scores": [0.5, 0.5, 0.5]}'),
    )
    chat = make_chat(server)

    assert chat.score_relevance(RELEVANCE).scores == [0.5, 0.5, 0.5]
    correction = _user_messages(server.requests[1])[-1]
    assert "scores" in correction and "schema" in correction


def test_wrong_number_of_scores_is_reasked(server: ScriptedServer) -> None:
    server.respond(
        Reply('{"scores": [0.9, 0.1]}'),
        Reply('{"scores": [0.9, 0.1, 0.3]}'),
    )
    chat = make_chat(server)

    assert chat.score_relevance(RELEVANCE).scores == [0.9, 0.1, 0.3]
    assert "2 numbers but there are 3 candidates" in _user_messages(server.requests[1])[-1]


def test_out_of_range_scores_are_rejected(server: ScriptedServer) -> None:
    server.respond(then=Reply('{"scores": [9, 1, 3]}'))
    chat = make_chat(server, retries=1)

    with pytest.raises(LLMError, match=r"must be in \[0, 1\]"):
        chat.score_relevance(RELEVANCE)
    assert len(server.requests) == 2


def test_unknown_key_step_index_is_reasked(server: ScriptedServer) -> None:
    steps = [StepView(index=i, agent="a", role="actor", content=f"step {i}") for i in (3, 4, 5)]
    request = KeyStepsRequest(task="t", outcome="success", steps=steps)
    server.respond(Reply('{"keep": [4, 9]}'), Reply('{"keep": [5, 3, 5]}'))
    chat = make_chat(server)

    assert chat.extract_key_steps(request).keep == [3, 5]
    assert "[9]" in _user_messages(server.requests[1])[-1]


def test_insight_ops_on_unknown_ids_are_dropped_without_retry(server: ScriptedServer) -> None:
    trajectory = TrajectoryView(task="t", outcome="success", steps=[])
    request = InsightRequest(
        trajectory=trajectory,
        existing=[InsightView(id="i1", text="open before take")],
        roles=["actor"],
    )
    server.respond(
        Reply(
            json.dumps(
                {
                    "operations": [
                        {"op": "agree", "insight_id": "i1", "roles": ["actor", "ghost"]},
                        {"op": "remove", "insight_id": "nope"},
                        {"op": "add", "text": "  "},
                        {"op": "add", "text": "Check the goal before acting.", "insight_id": "zzz"},
                    ]
                }
            )
        )
    )
    chat = make_chat(server)

    ops = chat.derive_insights(request).operations

    assert [(o.op, o.insight_id, o.roles) for o in ops] == [
        ("agree", "i1", ["actor"]),
        ("add", None, []),
    ]
    assert ops[1].text == "Check the goal before acting."
    assert len(server.requests) == 1


def test_projection_and_merge_are_checked_against_the_request(server: ScriptedServer) -> None:
    insights = [InsightView(id=f"i{n}", text=f"lesson {n}") for n in range(3)]
    server.respond(
        Reply(
            json.dumps(
                {
                    "insights": [
                        {"id": "i0", "text": "lesson 0", "relevance": 0.2},
                        {"id": "x", "text": "made up", "relevance": 0.9},
                        {"id": "i2", "text": "", "relevance": 0.7},
                    ]
                }
            )
        ),
        Reply(
            json.dumps(
                {
                    "groups": [
                        {"source_ids": ["i0", "i1", "ghost"], "text": "lesson zero and one"},
                        {"source_ids": ["i1", "i2"], "text": "claimed twice"},
                    ]
                }
            )
        ),
    )
    chat = make_chat(server)

    projected = chat.project_insights(ProjectionRequest(role="actor", task="t", insights=insights))
    merged = chat.merge_insights(MergeRequest(insights=insights))

    assert [(p.id, p.text) for p in projected.insights] == [("i2", "lesson 2"), ("i0", "lesson 0")]
    assert [(g.source_ids, g.text) for g in merged.groups] == [
        (["i0", "i1"], "lesson zero and one")
    ]


def test_requests_with_nothing_to_judge_make_no_call(server: ScriptedServer) -> None:
    chat = make_chat(server)

    assert chat.score_relevance(RelevanceRequest(task="t", candidates=[])).scores == []
    assert chat.merge_insights(MergeRequest(insights=[InsightView(id="a", text="x")])).groups == []
    assert server.requests == []
    assert chat.usage.total_tokens == 0


# ---- transport failures --------------------------------------------------------------
def test_slow_response_times_out_and_raises(server: ScriptedServer) -> None:
    server.respond(then=Slow(5.0, Reply('{"scores": [1, 1, 1]}')))
    chat = make_chat(server, retries=1, timeout=0.3)

    started = time.monotonic()
    with pytest.raises(LLMError, match=r"timed out after 0\.3 s") as info:
        chat.score_relevance(RELEVANCE)

    assert time.monotonic() - started < 4.0
    assert "score_relevance" in str(info.value)
    assert len(server.requests) == 2
    assert chat.usage.by_operation["score_relevance"].failures == 2


def test_slow_then_fast_recovers(server: ScriptedServer) -> None:
    server.respond(Slow(5.0, Reply("{}")), Reply('{"scores": [0, 0, 1]}'))
    chat = make_chat(server, retries=1, timeout=0.3)

    assert chat.score_relevance(RELEVANCE).scores == [0.0, 0.0, 1.0]


def test_rate_limit_then_success_is_retried(server: ScriptedServer) -> None:
    server.respond(
        Status(429, "slow down", {"retry-after": "0"}),
        Reply('{"scores": [0.3, 0.2, 0.1]}', prompt_tokens=50, completion_tokens=4),
    )
    chat = make_chat(server)

    assert chat.score_relevance(RELEVANCE).scores == [0.3, 0.2, 0.1]
    usage = chat.usage.by_operation["score_relevance"]
    assert (usage.calls, usage.failures, usage.prompt_tokens) == (2, 1, 50)


def test_rate_limit_forever_raises_after_the_retry_budget(server: ScriptedServer) -> None:
    server.respond(then=Status(429, "rate limit reached"))
    chat = make_chat(server, retries=2)

    with pytest.raises(LLMError, match="HTTP 429") as info:
        chat.score_relevance(RELEVANCE)

    assert len(server.requests) == 3
    assert "after 3 request(s)" in str(info.value)


def test_server_error_is_retried(server: ScriptedServer) -> None:
    server.respond(Status(503, "loading model"), Reply('{"scores": [1, 1, 1]}'))
    chat = make_chat(server)

    assert chat.score_relevance(RELEVANCE).scores == [1.0, 1.0, 1.0]
    assert len(server.requests) == 2


def test_bad_key_is_not_retried_and_says_what_to_check(server: ScriptedServer) -> None:
    server.respond(then=Status(401, "invalid api key"))
    chat = make_chat(server)

    with pytest.raises(LLMError, match="GMEM_LLM_API_KEY"):
        chat.score_relevance(RELEVANCE)
    assert len(server.requests) == 1


def test_server_rejecting_response_format_is_asked_again_without_it(
    server: ScriptedServer,
) -> None:
    server.respond(
        Status(400, "response_format is not supported"),
        Reply('{"scores": [0.1, 0.1, 0.1]}'),
        Reply('{"scores": [0.2, 0.2, 0.2]}'),
    )
    chat = make_chat(server, retries=0)

    assert chat.score_relevance(RELEVANCE).scores == [0.1, 0.1, 0.1]
    assert chat.score_relevance(RELEVANCE).scores == [0.2, 0.2, 0.2]
    assert "response_format" in server.requests[0]["body"]
    assert all("response_format" not in r["body"] for r in server.requests[1:])


def test_a_web_page_instead_of_the_api_is_reported_at_once(server: ScriptedServer) -> None:
    server.respond(then=Raw("<html>Open WebUI</html>"))
    chat = make_chat(server)

    with pytest.raises(LLMError, match=r"not answer with a chat completion.*/v1"):
        chat.score_relevance(RELEVANCE)
    assert len(server.requests) == 1


def test_an_empty_answer_is_reasked(server: ScriptedServer) -> None:
    server.respond(Reply(None), Reply('{"scores": [0, 1, 0]}'))
    chat = make_chat(server)

    assert chat.score_relevance(RELEVANCE).scores == [0.0, 1.0, 0.0]
    assert chat.usage.by_operation["score_relevance"].failures == 1


def test_unreachable_endpoint_raises_llm_error() -> None:
    srv = ScriptedServer()  # bound but never serving, then closed: nothing listens
    url = srv.url
    srv.httpd.server_close()
    config = MemoryConfig(llm_max_retries=1, llm_timeout_s=1.0)
    chat = OpenAIChat(base_url=url, model="m", config=config, backoff_s=0.01)

    with pytest.raises(LLMError, match="cannot connect"):
        chat.score_relevance(RELEVANCE)


# ---- chat, async, configuration ------------------------------------------------------
def test_plain_chat_passes_options_and_counts_under_chat(server: ScriptedServer) -> None:
    server.respond(Reply("go to cabinet 1", prompt_tokens=30, completion_tokens=6))
    chat = make_chat(server)

    answer = chat.chat([{"role": "user", "content": "what next?"}], temperature=0.7)

    assert answer == "go to cabinet 1"
    body = server.requests[0]["body"]
    assert body["temperature"] == 0.7 and "response_format" not in body
    assert chat.usage.by_operation["chat"].total_tokens == 36


async def test_async_twins_share_the_retry_logic(server: ScriptedServer) -> None:
    server.respond(
        Status(429),
        Reply("not json"),
        Reply('{"scores": [0.4, 0.5, 0.6]}'),
        Reply("hello"),
    )
    chat = make_chat(server)
    try:
        result = await chat.ascore_relevance(RELEVANCE)
        answer = await chat.achat([{"role": "user", "content": "hi"}])
    finally:
        await chat.aclose()

    assert result.scores == [0.4, 0.5, 0.6]
    assert answer == "hello"
    usage = chat.usage.by_operation["score_relevance"]
    assert (usage.calls, usage.failures) == (3, 2)


def test_model_is_discovered_from_the_server_when_not_set(server: ScriptedServer) -> None:
    server.respond(Reply('{"scores": [0, 0, 0]}'))
    chat = OpenAIChat(base_url=server.url, config=MemoryConfig(llm_max_retries=0))

    chat.score_relevance(RELEVANCE)

    assert server.requests[0]["body"]["model"] == "served-model"
    assert chat.name == "openai-chat:served-model"


def test_environment_configures_the_endpoint(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GMEM_LLM_BASE_URL", server.url)
    monkeypatch.setenv("GMEM_LLM_MODEL", "env-model")
    monkeypatch.setenv("GMEM_LLM_TIMEOUT_S", "7")
    server.respond(Reply("ok"))

    llm = make_llm()

    assert isinstance(llm, OpenAIChat) and isinstance(llm, LLM)
    assert llm.timeout_s == 7.0
    assert llm.chat([{"role": "user", "content": "hi"}]) == "ok"
    assert server.requests[0]["body"]["model"] == "env-model"


def test_without_an_endpoint_make_llm_is_the_heuristic() -> None:
    llm = make_llm(MemoryConfig(), embedder=HashingEmbedder())

    assert isinstance(llm, HeuristicLLM)
    assert llm.name == "heuristic"
