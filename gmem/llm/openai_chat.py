"""Memory operations answered by any OpenAI-compatible chat endpoint.

Only plain ``/chat/completions`` is used, so OpenAI, vLLM, Ollama and llama.cpp servers
all work. ``response_format={"type": "json_object"}`` is requested because it helps where
it exists, but never relied on: the reply is scanned for its first JSON object, validated
against the operation's result model and checked against the request, and re-asked with
the problem spelled out when any of that fails.

Retries are counted here, not in the ``openai`` client (it is built with
``max_retries=0``), so that one budget covers both kinds of failure and the usage ledger
sees every request: one operation call makes at most ``1 + config.llm_max_retries``
requests, whether they fail on transport (timeout, connection, HTTP 408/409/429/5xx,
retried after an exponential backoff that honours ``Retry-After``) or on content
(unparseable, invalid or inconsistent JSON, re-asked at once). Other HTTP errors (a bad
key, an unknown model) are not retried. After the budget, :class:`~gmem.errors.LLMError`
names the operation and the last problem on one line.
"""

from __future__ import annotations

import asyncio
import logging
import os
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


class _Exchange(Generic[T]):
    """One operation call across its attempts.

    Holds the attempt budget, what to send next and what went wrong last, so the sync and
    async request loops stay a few lines each and cannot drift apart.
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
    ) -> None:
        self.chat = chat
        self.op = op
        self.base = messages
        self.messages = messages
        self.parse = parse
        self.wants_json = wants_json
        self.options = options
        self.attempts = 0
        self.transport_failures = 0
        self.pause_s = 0.0
        self.last_problem = "no request was made"

    def wants_attempt(self) -> bool:
        return self.attempts <= self.chat.max_retries

    def request(self, model: str) -> dict[str, Any]:
        self.attempts += 1
        params: dict[str, Any] = {
            "model": model,
            "messages": self.messages,
            "timeout": self.chat.timeout_s,
            **self.options,
        }
        if self.wants_json and self.chat.json_mode:
            params["response_format"] = {"type": "json_object"}
        return params

    def answered(self, response: ChatCompletion | object) -> _Done[T] | None:
        if not isinstance(response, ChatCompletion):
            # The client hands back the raw body when it is not JSON: usually a web page
            # because base_url points at the server root instead of its API.
            self.chat.usage.add(self.op, failed=True)
            body = _short(str(response), 60)
            self.last_problem = f"the endpoint did not answer with a chat completion ({body!r})"
            raise self.error("check GMEM_LLM_BASE_URL (it usually ends in /v1)")
        usage = getattr(response, "usage", None)
        prompt = getattr(usage, "prompt_tokens", 0) or 0
        completion = getattr(usage, "completion_tokens", 0) or 0
        choices = getattr(response, "choices", None) or []
        message = getattr(choices[0], "message", None) if choices else None
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
            _LOG.debug("%s: unusable answer (%s)", self.op, exc)
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
        if isinstance(exc, openai.APITimeoutError):
            self.last_problem = f"the request timed out after {self.chat.timeout_s:g} s"
        elif isinstance(exc, openai.APIConnectionError):
            self.last_problem = f"cannot connect to {self.chat.base_url}"
        elif isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            self.last_problem = f"HTTP {status}: {_short(exc.message)}"
            if status == 400 and self.wants_json and self.chat.json_mode:
                # Some servers reject response_format; ask once more without it, free.
                _LOG.warning("%s rejected response_format; continuing without it", self.op)
                self.chat.json_mode = False
                self.attempts -= 1
                self.pause_s = 0.0
                return
            if status not in _RETRYABLE_STATUS and status < 500:
                raise self.error(_status_hint(status)) from None
            self.pause_s = self.chat.backoff(self.transport_failures, exc.response)
        else:
            self.last_problem = _short(str(exc))
            raise self.error() from None
        self.transport_failures += 1
        _LOG.debug("%s: attempt %d failed (%s)", self.op, self.attempts, self.last_problem)

    def error(self, hint: str = "") -> LLMError:
        return LLMError(
            f"LLM operation {self.op} failed after {self.attempts} request(s) to "
            f"{self.chat.base_url} (model {self.chat.model or '?'}): {self.last_problem}"
            + (f"; {hint}" if hint else "")
        )


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _status_hint(status: int) -> str:
    if status in (401, 403):
        return "check GMEM_LLM_API_KEY (or OPENAI_API_KEY)"
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
    ) -> None:
        self.config = config or MemoryConfig.from_env()
        base_url = base_url or os.environ.get("GMEM_LLM_BASE_URL") or None
        self.model = model or os.environ.get("GMEM_LLM_MODEL") or None
        if self.model is None and base_url is None:
            raise ConfigError(
                "OpenAIChat needs a model: pass model= or set GMEM_LLM_MODEL "
                "(or a base_url / GMEM_LLM_BASE_URL of a server that lists its model)"
            )
        self._api_key = (
            api_key
            or os.environ.get("GMEM_LLM_API_KEY")
            or os.environ.get("OPENAI_API_KEY")
            or _PLACEHOLDER_KEY
        )
        self.max_retries = self.config.llm_max_retries
        self.timeout_s = self.config.llm_timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.json_mode = True
        self.usage = UsageLedger()
        self._client = openai.OpenAI(
            base_url=base_url, api_key=self._api_key, timeout=self.timeout_s, max_retries=0
        )
        self.base_url = str(self._client.base_url)
        self._async_client: openai.AsyncOpenAI | None = None
        self.name = f"openai-chat:{self.model or '(server default)'}"

    def __repr__(self) -> str:
        return f"OpenAIChat(base_url={self.base_url!r}, model={self.model!r})"

    # ---- lifecycle --------------------------------------------------------------------
    def close(self) -> None:
        self._client.close()

    async def aclose(self) -> None:
        if self._async_client is not None:
            await self._async_client.close()

    def __enter__(self) -> OpenAIChat:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def async_client(self) -> openai.AsyncOpenAI:
        # Built on first use: an async client made outside a running loop in sync-only
        # programs would hold resources for nothing.
        if self._async_client is None:
            self._async_client = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=self._api_key,
                timeout=self.timeout_s,
                max_retries=0,
            )
        return self._async_client

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

    def _resolve_model(self) -> str:
        if self.model is not None:
            return self.model
        try:
            listed = [m.id for m in self._client.models.list()]
        except openai.APIError as exc:
            raise LLMError(
                f"cannot list the models of {self.base_url} ({_short(str(exc))}); "
                "set GMEM_LLM_MODEL"
            ) from None
        return self._adopt_model(listed)

    async def _aresolve_model(self) -> str:
        if self.model is not None:
            return self.model
        try:
            listed = [m.id async for m in self.async_client.models.list()]
        except openai.APIError as exc:
            raise LLMError(
                f"cannot list the models of {self.base_url} ({_short(str(exc))}); "
                "set GMEM_LLM_MODEL"
            ) from None
        return self._adopt_model(listed)

    # ---- request loops ----------------------------------------------------------------
    def _run(self, exchange: _Exchange[T]) -> T:
        model = self._resolve_model()
        while exchange.wants_attempt():
            if exchange.pause_s:
                time.sleep(exchange.pause_s)
            try:
                response = self._client.chat.completions.create(**exchange.request(model))
            except openai.APIError as exc:
                exchange.failed(exc)
                continue
            done = exchange.answered(response)
            if done is not None:
                return done.value
        raise exchange.error()

    async def _arun(self, exchange: _Exchange[T]) -> T:
        model = await self._aresolve_model()
        while exchange.wants_attempt():
            if exchange.pause_s:
                await asyncio.sleep(exchange.pause_s)
            try:
                response = await self.async_client.chat.completions.create(
                    **exchange.request(model)
                )
            except openai.APIError as exc:
                exchange.failed(exc)
                continue
            done = exchange.answered(response)
            if done is not None:
                return done.value
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

        def parse(text: str) -> M:
            return check(request, answers.validated(text, model))

        return _Exchange(
            self, op, prompt(request), parse, wants_json=True, options={"temperature": 0}
        )

    # ---- the memory operations (each built once, run sync or async) -------------------
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

    async def ascore_relevance(self, request: RelevanceRequest) -> RelevanceResult:
        if not request.candidates:
            return RelevanceResult(scores=[])
        return await self._arun(self._relevance(request))

    async def aextract_key_steps(self, request: KeyStepsRequest) -> KeyStepsResult:
        if not request.steps:
            return KeyStepsResult(keep=[])
        return await self._arun(self._key_steps(request))

    async def aderive_insights(self, request: InsightRequest) -> InsightResult:
        return await self._arun(self._insights(request))

    async def aproject_insights(self, request: ProjectionRequest) -> ProjectionResult:
        if not request.insights:
            return ProjectionResult(insights=[])
        return await self._arun(self._projection(request))

    async def amerge_insights(self, request: MergeRequest) -> MergeResult:
        if len(request.insights) < 2:
            return MergeResult(groups=[])
        return await self._arun(self._merge(request))

    async def achat(self, messages: list[dict[str, str]], **options: Any) -> str:
        return await self._arun(self._chat(messages, options))
