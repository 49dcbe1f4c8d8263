"""OpenAIChat over real HTTP against a scripted OpenAI-compatible server.

The server (stdlib ``ThreadingHTTPServer`` on 127.0.0.1) is the only fake: the real
``openai`` client sends real requests, so retries, timeouts, status codes and usage
accounting are exercised the way they happen against vLLM, Ollama or llama.cpp.
"""

from __future__ import annotations

import json
import logging
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
    FallbackLLM,
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
    finish_reason: str = "stop"


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


@dataclass
class Drip:
    """A valid completion sent one byte every ``interval`` seconds."""

    reply: Reply
    interval: float = 0.05


@dataclass
class Cut:
    """A 200 JSON response whose body is ``body``; ``declared`` bytes are announced, so
    announcing more than is sent makes the connection close mid-body."""

    body: bytes
    declared: int | None = None


@dataclass
class Echo:
    """An error response that repeats the request's path and headers, as a careless
    proxy does."""

    code: int


Item = Reply | Status | Raw | Slow | Drip | Cut | Echo


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
                server.requests.append(
                    {"path": self.path, "body": body, "headers": dict(self.headers)}
                )
                item = server.script.popleft() if server.script else server.then
                if isinstance(item, Slow):
                    if server.stopping.wait(item.seconds):
                        return
                    item = item.then
                try:
                    if isinstance(item, Drip):
                        self._drip(_completion(body, item.reply), item.interval)
                    elif isinstance(item, Cut):
                        declared = item.declared if item.declared is not None else len(item.body)
                        self.send_response(200)
                        self.send_header("content-type", "application/json")
                        self.send_header("content-length", str(declared))
                        self.end_headers()
                        self.wfile.write(item.body)
                        self.close_connection = True
                    elif isinstance(item, Echo):
                        seen = f"{self.path} {dict(self.headers)}"
                        error = {"error": {"message": f"refused: {seen}", "type": "echo"}}
                        self._send(item.code, error)
                    elif isinstance(item, Status):
                        error = {"error": {"message": item.message, "type": "scripted"}}
                        self._send(item.code, error, item.headers)
                    elif isinstance(item, Raw):
                        self._send_raw(200, item.body.encode(), item.content_type)
                    else:
                        self._send(200, _completion(body, item))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout); nothing to answer

            def _drip(self, payload: Any, interval: float) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                for at in range(len(raw)):
                    if server.stopping.wait(interval):
                        return
                    self.wfile.write(raw[at : at + 1])

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
                "finish_reason": reply.finish_reason,
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
        "GMEM_LLM_DEADLINE_S",
        "GMEM_LLM_MAX_TOKENS",
        "GMEM_LLM_BREAKER_FAILURES",
        "GMEM_LLM_BREAKER_COOLDOWN_S",
        "GMEM_LLM_FALLBACK",
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


def make_chat(
    server: ScriptedServer,
    retries: int = 2,
    timeout: float = 5.0,
    *,
    max_backoff_s: float = 0.05,
    **config: Any,
) -> OpenAIChat:
    settings = MemoryConfig(llm_max_retries=retries, llm_timeout_s=timeout, **config)
    return OpenAIChat(
        base_url=server.url,
        model="test-model",
        api_key="sk-test",
        config=settings,
        backoff_s=0.01,
        max_backoff_s=max_backoff_s,
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
@pytest.mark.timeout(60)  # a deadline that failed to cut would wait out the server
def test_slow_response_times_out_and_raises(server: ScriptedServer) -> None:
    server.respond(then=Slow(600.0, Reply('{"scores": [1, 1, 1]}')))
    chat = make_chat(server, retries=1, timeout=0.3)

    with pytest.raises(LLMError, match=r"timed out after 0\.3 s") as info:
        chat.score_relevance(RELEVANCE)

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

    llm = make_llm(embedder=HashingEmbedder())

    # The chat model answers, behind the heuristic for degraded mode.
    assert isinstance(llm, FallbackLLM) and isinstance(llm, LLM)
    chat = llm.primary
    assert isinstance(chat, OpenAIChat) and isinstance(llm.fallback, HeuristicLLM)
    assert chat.timeout_s == 7.0
    assert chat.chat([{"role": "user", "content": "hi"}]) == "ok"
    assert server.requests[0]["body"]["model"] == "env-model"


def test_make_llm_without_fallback_is_the_bare_chat_model(server: ScriptedServer) -> None:
    llm = make_llm(MemoryConfig(llm_fallback=False), base_url=server.url, model="m")

    assert isinstance(llm, OpenAIChat)


def test_without_an_endpoint_make_llm_is_the_heuristic() -> None:
    llm = make_llm(MemoryConfig(), embedder=HashingEmbedder())

    assert isinstance(llm, HeuristicLLM)
    assert llm.name == "heuristic"


# ---- bounded faults: every operation ends within its deadline ------------------------
def _heuristic() -> HeuristicLLM:
    return HeuristicLLM(HashingEmbedder(), MemoryConfig())


def test_max_tokens_is_sent_from_config_and_chat_may_override_it(server: ScriptedServer) -> None:
    server.respond(Reply('{"scores": [0, 0, 0]}'), Reply("ok"))
    chat = make_chat(server, llm_max_tokens=321)

    chat.score_relevance(RELEVANCE)
    chat.chat([{"role": "user", "content": "hi"}], max_tokens=5)

    assert server.requests[0]["body"]["max_tokens"] == 321
    assert server.requests[1]["body"]["max_tokens"] == 5


def test_an_answer_cut_at_the_token_limit_says_so(server: ScriptedServer) -> None:
    server.respond(then=Reply('{"scores": [0.1, 0.2', finish_reason="length"))
    chat = make_chat(server, retries=1, llm_max_tokens=64)

    with pytest.raises(LLMError, match="token limit of 64"):
        chat.score_relevance(RELEVANCE)


def test_a_drip_fed_answer_is_cut_at_the_deadline(server: ScriptedServer) -> None:
    # Each byte arrives well within the read timeout, so only a total deadline ends it.
    server.respond(then=Drip(Reply('{"scores": [1, 1, 1]}'), interval=0.05))
    chat = make_chat(server, retries=3, timeout=5.0, llm_deadline_s=0.5)

    with pytest.raises(LLMError, match=r"deadline of 0\.5 s") as info:
        chat.score_relevance(RELEVANCE)

    assert "score_relevance" in str(info.value)
    assert len(server.requests) == 1  # no retry once the deadline has passed


def test_a_hung_endpoint_is_cut_at_the_deadline(server: ScriptedServer) -> None:
    server.respond(then=Slow(60.0, Reply("{}")))
    chat = make_chat(server, retries=5, timeout=30.0, llm_deadline_s=0.4)

    with pytest.raises(LLMError, match="deadline"):
        chat.score_relevance(RELEVANCE)
    assert len(server.requests) == 1


def test_retry_after_longer_than_the_deadline_ends_the_operation(server: ScriptedServer) -> None:
    server.respond(then=Status(429, "slow down", {"retry-after": "30"}))
    chat = make_chat(server, retries=5, max_backoff_s=60.0, llm_deadline_s=0.5)

    with pytest.raises(LLMError, match=r"deadline.*HTTP 429"):
        chat.score_relevance(RELEVANCE)
    assert len(server.requests) == 1  # it did not sleep 30 s to try again


@pytest.mark.parametrize(
    ("cut", "problem"),
    [
        (Cut(b""), "not valid JSON"),
        (Cut(b'{"id": "chatcmpl-1", "object": "chat.comp'), "not valid JSON"),
        (Cut(b'{"id": "chatcmpl-1", "choices": [', declared=400), "cannot connect"),
    ],
    ids=["empty", "truncated", "closed-mid-body"],
)
def test_empty_or_truncated_200_bodies_are_retried_then_an_llm_error(
    server: ScriptedServer, cut: Cut, problem: str
) -> None:
    server.respond(then=cut)
    chat = make_chat(server, retries=1)

    with pytest.raises(LLMError, match=problem):
        chat.score_relevance(RELEVANCE)
    assert len(server.requests) == 2


def test_a_truncated_body_then_a_good_one_recovers(server: ScriptedServer) -> None:
    server.respond(Cut(b'{"id": "x", "cho'), Reply('{"scores": [0.5, 0.5, 0.5]}'))
    chat = make_chat(server)

    assert chat.score_relevance(RELEVANCE).scores == [0.5, 0.5, 0.5]
    assert chat.usage.by_operation["score_relevance"].failures == 1


def test_a_huge_answer_is_rejected_unread_and_reasked(server: ScriptedServer) -> None:
    huge = '{"scores": [0.1, 0.2, 0.3]}' + " " * 4_000_000
    server.respond(Reply(huge), Reply('{"scores": [0.3, 0.2, 0.1]}'))
    chat = make_chat(server)

    assert chat.score_relevance(RELEVANCE).scores == [0.3, 0.2, 0.1]
    correction = _user_messages(server.requests[1])[-1]
    assert "over the limit of" in correction
    # The echo of the bad answer in the re-ask stays bounded.
    assert sum(len(m["content"]) for m in server.requests[1]["body"]["messages"]) < 100_000


def test_deeply_nested_json_is_refused_without_recursing(server: ScriptedServer) -> None:
    server.respond(then=Reply('{"a":' * 20000))
    chat = make_chat(server, retries=1)

    with pytest.raises(LLMError, match="nested deeper than 32 levels"):
        chat.score_relevance(RELEVANCE)


def test_json_extraction_finds_the_object_after_noise() -> None:
    from gmem.llm.answers import UnusableAnswer, first_json_object

    noise = "{x} [y] <think> " * 5000  # prose braces, brackets and unclosed think tags
    assert first_json_object(noise + '{"scores": [1]}') == {"scores": [1]}
    assert first_json_object('{"note": "a } in a string", "n": {"k": [1, {"v": 2}]}}') == {
        "note": "a } in a string",
        "n": {"k": [1, {"v": 2}]},
    }
    # A truncated outer object still yields a complete inner one.
    assert first_json_object('{"outer": 1, "inner": {"scores": [0.5]}') == {"scores": [0.5]}
    with pytest.raises(UnusableAnswer, match="no JSON object"):
        first_json_object('{"scores": [0.9, 0.1')
    with pytest.raises(UnusableAnswer, match="nested deeper"):
        first_json_object("[" * 10 + "{" * 40)


# ---- circuit breaker and degraded mode -----------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_consecutive_failures_and_retries_after_cooldown(
    server: ScriptedServer,
) -> None:
    clock = FakeClock()
    config = MemoryConfig(llm_max_retries=0, llm_breaker_failures=2, llm_breaker_cooldown_s=60.0)
    chat = OpenAIChat(base_url=server.url, model="m", config=config, clock=clock)
    server.respond(Status(500), Status(500), Reply('{"scores": [0, 0, 0]}'))

    for _ in range(2):
        with pytest.raises(LLMError, match="HTTP 500"):
            chat.score_relevance(RELEVANCE)
    assert chat.breaker.is_open
    with pytest.raises(LLMError, match=r"skipped.*tried again in 60 s"):
        chat.score_relevance(RELEVANCE)
    assert len(server.requests) == 2  # the open breaker made no request

    clock.now += 61.0
    assert chat.score_relevance(RELEVANCE).scores == [0.0, 0.0, 0.0]
    assert not chat.breaker.is_open and chat.breaker.consecutive_failures == 0


def test_unusable_answers_do_not_open_the_breaker(server: ScriptedServer) -> None:
    server.respond(then=Reply("prose only"))
    chat = make_chat(server, retries=0, llm_breaker_failures=1)

    for _ in range(3):
        with pytest.raises(LLMError, match="no JSON object"):
            chat.score_relevance(RELEVANCE)
    assert not chat.breaker.is_open
    assert len(server.requests) == 3


def test_degraded_mode_answers_with_the_heuristic_and_warns_once(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.respond(then=Status(503, "overloaded"))
    chat = make_chat(server, retries=1, llm_breaker_failures=2)
    heuristic = _heuristic()
    llm = FallbackLLM(chat, heuristic)

    with caplog.at_level(logging.DEBUG, logger="gmem"):
        answers = [llm.score_relevance(RELEVANCE) for _ in range(4)]

    expected = heuristic.score_relevance(RELEVANCE)
    assert all(a == expected for a in answers)
    assert llm.degraded and llm.fallbacks["score_relevance"] == 4
    assert chat.breaker.is_open
    assert len(server.requests) == 4  # two operations of two requests, then none
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "degraded" in warnings[0].getMessage()


def test_degraded_mode_ends_when_the_endpoint_answers(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.respond(Status(500), Reply('{"scores": [0.7, 0.7, 0.7]}'))
    llm = FallbackLLM(make_chat(server, retries=0), _heuristic())

    with caplog.at_level(logging.INFO, logger="gmem"):
        llm.score_relevance(RELEVANCE)
        assert llm.degraded
        assert llm.score_relevance(RELEVANCE).scores == [0.7, 0.7, 0.7]

    assert not llm.degraded
    assert any("degraded mode over" in r.getMessage() for r in caplog.records)


def test_a_fallback_does_not_swallow_bugs() -> None:
    class Broken(HeuristicLLM):
        def score_relevance(self, request: RelevanceRequest) -> Any:
            raise KeyError("a bug, not an outage")

    llm = FallbackLLM(Broken(HashingEmbedder()), _heuristic())

    with pytest.raises(KeyError):
        llm.score_relevance(RELEVANCE)


def test_memory_keeps_working_when_its_endpoint_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from gmem.memory import Memory

    srv = ScriptedServer()  # bound, then closed: nothing listens
    url = srv.url
    srv.httpd.server_close()
    config = MemoryConfig(llm_max_retries=0, llm_deadline_s=5.0)
    embedder = HashingEmbedder()
    chat = OpenAIChat(base_url=url, model="m", config=config, backoff_s=0.01)

    with Memory(":memory:", embedder=embedder, llm=chat, config=config) as memory:
        assert isinstance(memory.llm, FallbackLLM)
        for text in ("put a clean mug in the cabinet", "put a clean cup in the cabinet"):
            with caplog.at_level(logging.WARNING, logger="gmem"), memory.task(text) as task:
                task.recall("actor")
                task.record(agent="a", role="actor", content="go to sinkbasin 1")
                task.record(agent="a", role="actor", content="clean mug 1 with sinkbasin 1")
                task.finish(success=True)
        assert memory.store.count().nodes.get("Query") == 2
        assert memory.llm.fallbacks.total() >= 2
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "cannot connect" in warnings[0].getMessage()


# ---- secrets -------------------------------------------------------------------------
PASSWORD = "pw-MARKER-7f3a9c"
API_KEY = "sk-MARKERKEY-2b8e41d0"
QUERY_KEY = "qk-MARKER-55e1"


def _leaks(text: str) -> list[str]:
    import base64

    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    return [m for m in (PASSWORD, API_KEY, QUERY_KEY, basic) if m in text]


def test_credentials_never_reach_reprs_errors_or_logs(
    server: ScriptedServer,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    host, port = server.httpd.server_address[:2]
    url = f"http://alice:{PASSWORD}@{host!s}:{port}/v1?key={QUERY_KEY}"
    server.respond(
        Reply('{"scores": [0, 0, 0]}'),
        Echo(401),
        Echo(500),
        Echo(500),
    )
    config = MemoryConfig(llm_max_retries=1, llm_breaker_failures=10)
    caplog.set_level(logging.DEBUG)  # every logger: httpx, httpcore, openai, gmem
    chat = OpenAIChat(base_url=url, model="m", api_key=API_KEY, config=config, backoff_s=0.01)
    messages = [repr(chat), chat.base_url, chat.breaker.what]

    chat.score_relevance(RELEVANCE)  # the credentials still work
    for _ in range(2):
        with pytest.raises(LLMError) as info:
            chat.score_relevance(RELEVANCE)
        messages.append(str(info.value))
    degraded = FallbackLLM(chat, _heuristic())
    server.respond(then=Echo(500))
    degraded.score_relevance(RELEVANCE)

    first = server.requests[0]
    assert first["path"] == f"/v1/chat/completions?key={QUERY_KEY}"
    assert {k.lower(): v for k, v in first["headers"].items()}["authorization"].startswith("Basic ")
    assert "401" in messages[3] and "refused the credentials" in messages[3]
    assert "HTTP 500" in messages[4] and "***" in messages[4]
    out, err = capfd.readouterr()
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "HTTP Request" in logged  # the client's own request log was captured...
    assert _leaks("\n".join(messages)) == []
    assert _leaks(logged) == []  # ...and masked
    assert _leaks(out + err) == []


def test_a_bearer_token_echoed_by_a_proxy_is_masked(server: ScriptedServer) -> None:
    server.respond(then=Echo(502))
    chat = OpenAIChat(
        base_url=server.url,
        model="m",
        api_key=API_KEY,
        config=MemoryConfig(llm_max_retries=0),
    )

    with pytest.raises(LLMError) as info:
        chat.score_relevance(RELEVANCE)

    assert API_KEY not in str(info.value)
    assert "***" in str(info.value)


# ---- response formats ------------------------------------------------------------------
def test_json_mode_is_the_default_response_format(server: ScriptedServer) -> None:
    server.respond(Reply('{"scores": [0, 0, 0]}'))
    make_chat(server).score_relevance(RELEVANCE)

    assert server.requests[0]["body"]["response_format"] == {"type": "json_object"}


def test_a_schema_narrowed_to_the_request_can_be_sent(server: ScriptedServer) -> None:
    steps = [StepView(index=i, agent="a", role="actor", content=f"step {i}") for i in (3, 4)]
    server.respond(
        Reply('{"scores": [0.5, 0, 1]}'),
        Reply('{"keep": [4]}'),
    )
    chat = make_chat(server, llm_response_format="json_object+schema")

    chat.score_relevance(RELEVANCE)
    chat.extract_key_steps(KeyStepsRequest(task="t", outcome="success", steps=steps))

    relevance = server.requests[0]["body"]["response_format"]
    assert relevance["type"] == "json_object"
    scores = relevance["schema"]["properties"]["scores"]
    assert scores["minItems"] == scores["maxItems"] == 3
    assert scores["items"]["enum"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    keep = server.requests[1]["body"]["response_format"]["schema"]["properties"]["keep"]
    assert keep["items"] == {"enum": [3, 4]}


def test_openai_json_schema_and_no_format_are_supported(server: ScriptedServer) -> None:
    server.respond(Reply('{"scores": [0, 0, 0]}'), Reply('{"scores": [0, 0, 0]}'))

    make_chat(server, llm_response_format="json_schema").score_relevance(RELEVANCE)
    make_chat(server, llm_response_format="none").score_relevance(RELEVANCE)

    sent = server.requests[0]["body"]["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["name"] == "score_relevance"
    assert "scores" in sent["json_schema"]["schema"]["properties"]
    assert "response_format" not in server.requests[1]["body"]
