"""Degraded mode: the heuristic reasoner answers while the chat endpoint cannot.

A memory that stops working when its LLM endpoint is down, hung or rate-limited takes
the agent team down with it. :class:`FallbackLLM` asks the primary reasoner first and,
when it raises :class:`~gmem.errors.LLMError`, answers the same request with
:class:`~gmem.llm.heuristic.HeuristicLLM`. Entering the degraded state logs one warning
(not one per call: a recall and a finish make several operations, and the primary's
circuit breaker makes the following ones fail at once); leaving it logs at INFO.
Only ``LLMError`` is caught: any other exception is a bug and propagates.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

from gmem.errors import LLMError
from gmem.llm.protocol import (
    LLM,
    InsightRequest,
    InsightResult,
    KeyStepsRequest,
    KeyStepsResult,
    MergeRequest,
    MergeResult,
    ProjectionRequest,
    ProjectionResult,
    RelevanceRequest,
    RelevanceResult,
    UsageLedger,
)

_LOG = logging.getLogger("gmem.llm")

Req = TypeVar("Req")
Res = TypeVar("Res")


class FallbackLLM:
    """``primary``, or ``fallback`` for the calls where ``primary`` fails.

    ``usage`` is the primary's ledger (what the endpoint was asked and answered);
    ``fallbacks`` counts, per operation, the calls the fallback answered instead.
    """

    def __init__(self, primary: LLM, fallback: LLM) -> None:
        self.primary = primary
        self.fallback = fallback
        self.name = primary.name
        self.usage: UsageLedger = primary.usage
        self.fallbacks: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._degraded = False

    @property
    def degraded(self) -> bool:
        """Whether the last call was answered by the fallback."""
        return self._degraded

    def __repr__(self) -> str:
        return f"FallbackLLM(primary={self.primary!r}, fallback={self.fallback.name!r})"

    def _ask(
        self,
        op: str,
        request: Req,
        primary: Callable[[Req], Res],
        fallback: Callable[[Req], Res],
    ) -> Res:
        try:
            result = primary(request)
        except LLMError as exc:
            with self._lock:
                entering = not self._degraded
                self._degraded = True
                self.fallbacks[op] += 1
            if entering:
                _LOG.warning("memory runs degraded on the %s reasoner: %s", self.fallback.name, exc)
            else:
                _LOG.debug("%s answered by %s: %s", op, self.fallback.name, exc)
            return fallback(request)
        with self._lock:
            leaving = self._degraded
            self._degraded = False
        if leaving:
            _LOG.info("memory runs on %s again (degraded mode over)", self.name)
        return result

    def score_relevance(self, request: RelevanceRequest) -> RelevanceResult:
        return self._ask(
            "score_relevance",
            request,
            self.primary.score_relevance,
            self.fallback.score_relevance,
        )

    def extract_key_steps(self, request: KeyStepsRequest) -> KeyStepsResult:
        return self._ask(
            "extract_key_steps",
            request,
            self.primary.extract_key_steps,
            self.fallback.extract_key_steps,
        )

    def derive_insights(self, request: InsightRequest) -> InsightResult:
        return self._ask(
            "derive_insights",
            request,
            self.primary.derive_insights,
            self.fallback.derive_insights,
        )

    def project_insights(self, request: ProjectionRequest) -> ProjectionResult:
        return self._ask(
            "project_insights",
            request,
            self.primary.project_insights,
            self.fallback.project_insights,
        )

    def merge_insights(self, request: MergeRequest) -> MergeResult:
        return self._ask(
            "merge_insights",
            request,
            self.primary.merge_insights,
            self.fallback.merge_insights,
        )
