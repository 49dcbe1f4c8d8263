"""Memory operations answered by any OpenAI-compatible chat endpoint.

Only plain ``/chat/completions`` is used, so OpenAI, vLLM, Ollama and llama.cpp servers
all work. ``response_format={"type": "json_object"}`` is requested because it helps where
it exists, but never relied on: the reply is scanned for its first JSON object, validated
against the operation's result model and checked against the request, and re-asked with
the problem spelled out when any of that fails.

Retries are counted here, not in the ``openai`` client (it is built with
``max_retries=0``), so that one budget covers both kinds of failure and the usage ledger
sees every request: one operation call makes at most ``1 + config.llm_max_retries``
requests, whether they fail on transport (timeout, connection, HTTP 408/409/429/5xx, a
200 body that is not JSON; retried after an exponential backoff that honours
``Retry-After``) or on content (unparseable, invalid or inconsistent JSON, re-asked at
once). Other HTTP errors (a bad key, an unknown model) are not retried.

Every operation also runs under one total deadline (``config.llm_deadline_s``), backoff
waits and model discovery included. A timeout per read cannot give that: a server that
sends one byte a second never lets a read time out. So each synchronous request runs in
a daemon thread that the caller stops waiting for at the deadline (the HTTP read still
ends at its own timeout). Async callers go through ``Memory``'s ``a*`` twins, which run
this code in a worker thread (see docs/architecture.md). Operations that keep
failing on the endpoint open a :class:`~gmem.llm.breaker.CircuitBreaker`, after which
calls fail at once until its cool-down has passed. Every failure ends in one
:class:`~gmem.errors.LLMError` that names the operation and the last problem on one
line, with the endpoint's credentials masked (see :mod:`gmem.llm.endpoint`).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import openai
from openai.types.chat import ChatCompletion
from pydantic import BaseModel

from gmem.config import MemoryConfig
from gmem.errors import ConfigError, LLMError
from gmem.llm import answers, prompts
from gmem.llm.breaker import CircuitBreaker
from gmem.llm.endpoint import Endpoint, guard_logs, parse_endpoint
from gmem.llm.protocol import (
    InsightRequest,
    InsightResult,
    KeyStepsRequest,
    KeyStepsResult,
    MergeRequest,
    MergeResult,
    OperationName,
    ProjectionRequest,
    ProjectionResult,
    RelevanceRequest,
    RelevanceResult,
    UsageLedger,
)

_LOG = logging.getLogger("gmem.llm")

T = TypeVar("T")
R = TypeVar("R", bound=BaseModel)
M = TypeVar("M", bound=BaseModel)

_RETRYABLE_STATUS = frozenset({408, 409, 429})
# How much of a bad answer is echoed back in the re-ask: enough for the model to see its
# mistake, bounded so a runaway answer does not double the next prompt.
_ECHO_CHARS = 4000
# Local servers accept any key, but the openai client refuses to start without one.
_PLACEHOLDER_KEY = "not-needed"


@dataclass(frozen=True)
class _Done(Generic[T]):
    value: T


class _DeadlinePassed(Exception):
    """The operation's deadline passed while a request was still unanswered."""


def _call_within(seconds: float, call: Callable[[], T]) -> T:
    """``call()`` in a daemon thread, given up on after ``seconds``.

    The thread cannot be stopped from outside; it ends when its HTTP read does (each
    read has its own timeout), and being a daemon it never holds up interpreter exit.
    """
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()  # tracing and logging context follow the call

    def run() -> None:
        try:
            outcome["value"] = context.run(call)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="gmem-llm-request", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise _DeadlinePassed
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


class _Exchange(Generic[T]):
    """One operation call across its attempts.

    Holds the attempt budget, the deadline, what to send next and what went wrong last,
    so the request loop stays a few lines.
    """

    def __init__(
        self,
        chat: OpenAIChat,
        op: OperationName,
        messages: prompts.Messages,
        parse: Callable[[str], T],
        *,
        wants_json: bool,
        options: dict[str, Any],
        schema: dict[str, Any] | None = None,
    ) -> None:
        self.chat = chat
        self.schema = schema
        self.op = op
        self.base = messages
        self.messages = messages
        self.parse = parse
        self.wants_json = wants_json
        self.options = options
        self.attempts = 0
        self.transport_failures = 0
        self.pause_s = 0.0
        self.deadline = chat.clock() + chat.deadline_s
        self.last_problem = "no request was made"
        # Whether the last failure was the endpoint's (counts for the circuit breaker)
        # rather than the model's answer.
        self.endpoint_failed = True

    def remaining_s(self) -> float:
        return self.deadline - self.chat.clock()

    def wants_attempt(self) -> bool:
        return self.attempts <= self.chat.max_retries and self.remaining_s() > 0

    def read_timeout_s(self) -> float:
        return max(0.001, min(self.chat.timeout_s, self.remaining_s()))

    def request(self, model: str) -> dict[str, Any]:
        self.attempts += 1
        params: dict[str, Any] = {
            "model": model,
            "messages": self.messages,
            "timeout": self.read_timeout_s(),
            self.chat.max_tokens_param: self.chat.max_tokens,
            **self.options,
        }
        if self.wants_json and self.chat.json_mode:
            response_format = self.chat.response_format(self.op, self.schema)
            if response_format is not None:
                params["response_format"] = response_format
        return params

    def answered(self, response: ChatCompletion | object) -> _Done[T] | None:
        if not isinstance(response, ChatCompletion):
            # The client hands back the raw body when it is not JSON: usually a web page
            # because base_url points at the server root instead of its API.
            self.chat.usage.add(self.op, failed=True)
            body = _short(self.chat.endpoint.redact(str(response)), 60)
            self.last_problem = f"the endpoint did not answer with a chat completion ({body!r})"
            self.endpoint_failed = True
            raise self.error("check GMEM_LLM_BASE_URL (it usually ends in /v1)")
        self.endpoint_failed = False
        usage = getattr(response, "usage", None)
        prompt = getattr(usage, "prompt_tokens", 0) or 0
        completion = getattr(usage, "completion_tokens", 0) or 0
        choices = getattr(response, "choices", None) or []
        message = getattr(choices[0], "message", None) if choices else None
        cut_off = bool(choices) and getattr(choices[0], "finish_reason", None) == "length"
        raw = getattr(message, "content", None)
        content = raw if isinstance(raw, str) else None
        self.pause_s = 0.0
        try:
            if not content or not content.strip():
                raise answers.UnusableAnswer("the answer was empty")
            value = self.parse(content)
        except answers.UnusableAnswer as exc:
            self.chat.usage.add(self.op, prompt, completion, failed=True)
            self.last_problem = str(exc)
            if cut_off:
                self.last_problem += (
                    f" (the answer stopped at the token limit of {self.chat.max_tokens})"
                )
            _LOG.debug("%s: unusable answer (%s)", self.op, self.last_problem)
            if self.wants_json and content:
                self.messages = [
                    *self.base,
                    {"role": "assistant", "content": content[:_ECHO_CHARS]},
                    {"role": "user", "content": prompts.correction(str(exc))},
                ]
            return None
        self.chat.usage.add(self.op, prompt, completion)
        return _Done(value)

    def failed(self, exc: openai.APIError) -> None:
        """Record a transport failure; raise at once when retrying cannot help."""
        self.chat.usage.add(self.op, failed=True)
        self.endpoint_failed = True
        if isinstance(exc, openai.APITimeoutError):
            self.last_problem = f"the request timed out after {self.read_timeout_s():g} s"
        elif isinstance(exc, openai.APIConnectionError):
            self.last_problem = f"cannot connect to {self.chat.base_url}"
        elif isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            self.last_problem = _status_problem(status, exc.message, self.chat.endpoint)
            if status == 400 and self._drop_unsupported(exc.message):
                return
            if status not in _RETRYABLE_STATUS and status < 500:
                raise self.error(_status_hint(status)) from None
            self.pause_s = self.chat.backoff(self.transport_failures, exc.response)
        elif isinstance(exc, openai.APIResponseValidationError):
            self.last_problem = "the endpoint's 200 body is not a chat completion"
            self.pause_s = self.chat.backoff(self.transport_failures)
        else:
            self.last_problem = _short(self.chat.endpoint.redact(str(exc)))
            raise self.error() from None
        self.transport_failures += 1
        _LOG.debug("%s: attempt %d failed (%s)", self.op, self.attempts, self.last_problem)

    def unreadable(self) -> None:
        """A 200 response whose body is empty or cut off (the client cannot decode it)."""
        self.chat.usage.add(self.op, failed=True)
        self.endpoint_failed = True
        self.last_problem = "the endpoint's 200 body is not valid JSON (empty or cut off)"
        self.pause_s = self.chat.backoff(self.transport_failures)
        self.transport_failures += 1
        _LOG.debug("%s: attempt %d failed (%s)", self.op, self.attempts, self.last_problem)

    def _drop_unsupported(self, message: str) -> bool:
        """Some servers reject ``response_format`` or ``max_tokens``; ask again without
        what they reject, at no cost to the budget."""
        lowered = message.lower()
        if self.wants_json and self.chat.json_mode and "response_format" in lowered:
            _LOG.warning("%s rejected response_format; continuing without it", self.op)
            self.chat.json_mode = False
        elif "max_tokens" in lowered and self.chat.max_tokens_param == "max_tokens":
            _LOG.info("the endpoint rejected max_tokens; sending max_completion_tokens")
            self.chat.max_tokens_param = "max_completion_tokens"
        elif self.wants_json and self.chat.json_mode and "max_tokens" not in lowered:
            # A 400 that names nothing: response_format is the usual culprit.
            _LOG.warning("%s rejected the request; retrying without response_format", self.op)
            self.chat.json_mode = False
        else:
            return False
        self.attempts -= 1
        self.pause_s = 0.0
        return True

    def out_of_time(self) -> None:
        self.endpoint_failed = True
        if self.attempts:
            self.chat.usage.add(self.op, failed=True)
        before = "" if self.last_problem == "no request was made" else f"; {self.last_problem}"
        self.last_problem = (
            f"no usable answer within the deadline of {self.chat.deadline_s:g} s{before}"
        )

    def error(self, hint: str = "") -> LLMError:
        message = (
            f"LLM operation {self.op} failed after {self.attempts} request(s) to "
            f"{self.chat.base_url} (model {self.chat.model or '?'}): {self.last_problem}"
            + (f"; {hint}" if hint else "")
        )
        return LLMError(self.chat.endpoint.redact(message))


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _status_problem(status: int, message: str, endpoint: Endpoint) -> str:
    if status in (401, 403, 407):
        # Auth failures are where an echoing proxy hands the credentials back: say what
        # happened and nothing the server wrote.
        return f"HTTP {status} (the endpoint refused the credentials; its reply is not shown)"
    return f"HTTP {status}: {_short(endpoint.redact(message))}"


def _status_hint(status: int) -> str:
    if status in (401, 403, 407):
        return "check GMEM_LLM_API_KEY (or OPENAI_API_KEY) and the credentials in the URL"
    if status == 404:
        return "check GMEM_LLM_MODEL and GMEM_LLM_BASE_URL (it usually ends in /v1)"
    return "the endpoint rejected the request"


def _retry_after_s(response: Any) -> float | None:
    try:
        value = response.headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


class OpenAIChat:
    """An OpenAI-compatible chat model answering gmem's memory operations.

    ``base_url``, ``model`` and ``api_key`` default to ``GMEM_LLM_BASE_URL``,
    ``GMEM_LLM_MODEL`` and ``GMEM_LLM_API_KEY`` (then ``OPENAI_API_KEY``). Without a
    base URL the client talks to OpenAI (or ``OPENAI_BASE_URL``). With a base URL and no
    model, the first model the server lists is used, which is what single-model local
    servers (llama.cpp, a one-model vLLM) expect.

    This class raises :class:`~gmem.errors.LLMError` when the endpoint fails;
    :func:`gmem.llm.make_llm` and :class:`gmem.Memory` put it behind a
    :class:`~gmem.llm.fallback.FallbackLLM` so that memory keeps working, degraded.
    """

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        config: MemoryConfig | None = None,
        *,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or MemoryConfig.from_env()
        base_url = (
            base_url
            or os.environ.get("GMEM_LLM_BASE_URL")
            or os.environ.get("OPENAI_BASE_URL")
            or None
        )
        self.model = model or os.environ.get("GMEM_LLM_MODEL") or None
        if self.model is None and base_url is None:
            raise ConfigError(
                "OpenAIChat needs a model: pass model= or set GMEM_LLM_MODEL "
                "(or a base_url / GMEM_LLM_BASE_URL of a server that lists its model)"
            )
        given_key = (
            api_key or os.environ.get("GMEM_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
        )
        self._api_key = given_key or _PLACEHOLDER_KEY
        self.endpoint = parse_endpoint(base_url, given_key)
        guard_logs(self.endpoint.secrets)
        self.max_retries = self.config.llm_max_retries
        self.timeout_s = self.config.llm_timeout_s
        self.deadline_s = self.config.llm_deadline_s
        self.max_tokens = self.config.llm_max_tokens
        self.max_tokens_param = "max_tokens"
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.clock = clock
        self.json_mode = True
        self.usage = UsageLedger()
        self._client = openai.OpenAI(**self._client_options())
        self.base_url = self.endpoint.shown if self.endpoint.url else str(self._client.base_url)
        self.breaker = CircuitBreaker(
            self.config.llm_breaker_failures,
            self.config.llm_breaker_cooldown_s,
            what=f"the LLM endpoint {self.base_url}",
            clock=clock,
        )
        self.name = f"openai-chat:{self.model or '(server default)'}"

    def _client_options(self) -> dict[str, Any]:
        return {
            "base_url": self.endpoint.url,
            "api_key": self._api_key,
            "timeout": self.timeout_s,
            "max_retries": 0,
            "default_headers": self.endpoint.headers or None,
            "default_query": self.endpoint.query or None,
        }

    def __repr__(self) -> str:
        return f"OpenAIChat(base_url={self.base_url!r}, model={self.model!r})"

    # ---- lifecycle --------------------------------------------------------------------
    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIChat:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def response_format(
        self, op: OperationName, schema: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """What to send as ``response_format`` (``config.llm_response_format``).

        A schema lets servers that support it constrain decoding to valid results (a
        grammar in llama.cpp, guided decoding in vLLM); the answer is validated anyway.
        """
        kind = self.config.llm_response_format
        if kind == "none":
            return None
        if kind == "json_object" or schema is None:
            return {"type": "json_object"}
        if kind == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": op, "schema": schema}}
        return {"type": "json_object", "schema": schema}

    def backoff(self, failures_so_far: int, response: Any = None) -> float:
        wait = min(self.backoff_s * 2.0**failures_so_far, self.max_backoff_s)
        retry_after = _retry_after_s(response)
        if retry_after is not None:
            wait = min(max(wait, retry_after), self.max_backoff_s)
        return wait

    # ---- model discovery --------------------------------------------------------------
    def _adopt_model(self, listed: list[str]) -> str:
        if not listed:
            raise LLMError(f"{self.base_url} lists no models; set GMEM_LLM_MODEL")
        self.model = listed[0]
        self.name = f"openai-chat:{self.model}"
        return self.model

    def _listing_failed(self, exc: openai.APIError) -> LLMError:
        if isinstance(exc, openai.APIStatusError):
            problem = _status_problem(exc.status_code, exc.message, self.endpoint)
        else:
            problem = _short(self.endpoint.redact(str(exc)))
        return LLMError(
            self.endpoint.redact(
                f"cannot list the models of {self.base_url} ({problem}); set GMEM_LLM_MODEL"
            )
        )

    def _resolve_model(self, exchange: _Exchange[Any]) -> str:
        if self.model is not None:
            return self.model
        timeout = exchange.read_timeout_s()
        try:
            listed = _call_within(
                exchange.remaining_s(),
                lambda: [m.id for m in self._client.models.list(timeout=timeout)],
            )
        except openai.APIError as exc:
            raise self._listing_failed(exc) from None
        return self._adopt_model(listed)

    # ---- request loops ----------------------------------------------------------------
    def _admit(self, op: OperationName) -> None:
        """Refuse at once while the circuit breaker is open."""
        if self.breaker.is_open:
            raise LLMError(
                self.endpoint.redact(
                    f"LLM operation {op} skipped: {self.base_url} failed "
                    f"{self.breaker.failures} operation(s) in a row "
                    f"(last: {self.breaker.last_problem}); it is tried again in "
                    f"{self.breaker.wait_left_s():.0f} s"
                )
            )

    def _settle(self, exchange: _Exchange[Any], failed: bool) -> None:
        if failed and exchange.endpoint_failed:
            self.breaker.failed(exchange.last_problem)
        else:  # an answer came back, usable or not: the endpoint is alive
            self.breaker.succeeded()

    def _run(self, exchange: _Exchange[T]) -> T:
        self._admit(exchange.op)
        try:
            value = self._attempts(exchange)
        except LLMError:
            self._settle(exchange, failed=True)
            raise
        self._settle(exchange, failed=False)
        return value

    def _attempts(self, exchange: _Exchange[T]) -> T:
        try:
            model = self._resolve_model(exchange)
            while exchange.wants_attempt():
                if exchange.pause_s:
                    if exchange.pause_s >= exchange.remaining_s():
                        break  # the wait alone would outlast the deadline
                    time.sleep(exchange.pause_s)
                params = exchange.request(model)
                try:
                    response = _call_within(
                        exchange.remaining_s(),
                        functools.partial(self._client.chat.completions.create, **params),
                    )
                except openai.APIError as exc:
                    exchange.failed(exc)
                    continue
                except ValueError:  # the client's JSONDecodeError on a cut-off 200 body
                    exchange.unreadable()
                    continue
                done = exchange.answered(response)
                if done is not None:
                    return done.value
        except _DeadlinePassed:
            exchange.out_of_time()
        else:
            if exchange.attempts <= self.max_retries:  # the deadline stopped it, not the budget
                exchange.out_of_time()
        raise exchange.error()

    def _json_exchange(
        self,
        op: OperationName,
        request: R,
        prompt: Callable[[R], prompts.Messages],
        model: type[M],
        check: Callable[[R, M], M],
    ) -> _Exchange[M]:
        """One memory operation: its prompt, then validate the reply and check it against
        the request (lengths, known ids) before accepting it."""
        limits = {
            "max_depth": self.config.llm_json_max_depth,
            "max_chars": self.config.llm_max_answer_chars,
        }

        def parse(text: str) -> M:
            return check(request, answers.validated(text, model, **limits))

        return _Exchange(
            self,
            op,
            prompt(request),
            parse,
            wants_json=True,
            options={"temperature": 0},
            schema=answers.narrowed_schema(request, prompts.result_schema_dict(model)),
        )

    # ---- the memory operations (each built once) -------------------
    def _relevance(self, request: RelevanceRequest) -> _Exchange[RelevanceResult]:
        return self._json_exchange(
            "score_relevance",
            request,
            prompts.score_relevance,
            RelevanceResult,
            answers.check_relevance,
        )

    def _key_steps(self, request: KeyStepsRequest) -> _Exchange[KeyStepsResult]:
        return self._json_exchange(
            "extract_key_steps",
            request,
            prompts.extract_key_steps,
            KeyStepsResult,
            answers.check_key_steps,
        )

    def _insights(self, request: InsightRequest) -> _Exchange[InsightResult]:
        return self._json_exchange(
            "derive_insights",
            request,
            prompts.derive_insights,
            InsightResult,
            answers.check_insights,
        )

    def _projection(self, request: ProjectionRequest) -> _Exchange[ProjectionResult]:
        return self._json_exchange(
            "project_insights",
            request,
            prompts.project_insights,
            ProjectionResult,
            answers.check_projection,
        )

    def _merge(self, request: MergeRequest) -> _Exchange[MergeResult]:
        return self._json_exchange(
            "merge_insights", request, prompts.merge_insights, MergeResult, answers.check_merge
        )

    def _chat(self, messages: list[dict[str, str]], options: dict[str, Any]) -> _Exchange[str]:
        return _Exchange(self, "chat", messages, str, wants_json=False, options=options)

    # Requests with nothing to judge are answered without a round trip.
    def score_relevance(self, request: RelevanceRequest) -> RelevanceResult:
        if not request.candidates:
            return RelevanceResult(scores=[])
        return self._run(self._relevance(request))

    def extract_key_steps(self, request: KeyStepsRequest) -> KeyStepsResult:
        if not request.steps:
            return KeyStepsResult(keep=[])
        return self._run(self._key_steps(request))

    def derive_insights(self, request: InsightRequest) -> InsightResult:
        return self._run(self._insights(request))

    def project_insights(self, request: ProjectionRequest) -> ProjectionResult:
        if not request.insights:
            return ProjectionResult(insights=[])
        return self._run(self._projection(request))

    def merge_insights(self, request: MergeRequest) -> MergeResult:
        if len(request.insights) < 2:
            return MergeResult(groups=[])
        return self._run(self._merge(request))

    def chat(self, messages: list[dict[str, str]], **options: Any) -> str:
        """A plain completion for agents built on gmem, counted under ``chat``.

        ``options`` go to the endpoint as they are (``temperature``, ``max_tokens``...).
        """
        return self._run(self._chat(messages, options))
