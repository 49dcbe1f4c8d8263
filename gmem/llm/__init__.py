"""The reasoner behind gmem's memory operations: a chat model, or the offline heuristic.

:func:`make_llm` picks :class:`OpenAIChat` when an endpoint is configured and
:class:`HeuristicLLM` otherwise, so the same engine runs with a hosted model, a local
server, or no model at all; with an endpoint, the heuristic also answers while the
endpoint fails (:class:`FallbackLLM`, degraded mode).
"""

from __future__ import annotations

import os

from gmem.config import MemoryConfig
from gmem.embedding import TextEmbedder, make_embedder
from gmem.llm.fallback import FallbackLLM
from gmem.llm.heuristic import NO_OP_OBSERVATION_MARKERS, HeuristicLLM
from gmem.llm.openai_chat import OpenAIChat
from gmem.llm.protocol import (
    LLM,
    CandidateView,
    InsightOp,
    InsightRequest,
    InsightResult,
    InsightView,
    KeyStepsRequest,
    KeyStepsResult,
    MergedInsight,
    MergeRequest,
    MergeResult,
    OperationName,
    OperationUsage,
    ProjectedInsight,
    ProjectionRequest,
    ProjectionResult,
    RelevanceRequest,
    RelevanceResult,
    StepView,
    TrajectoryView,
    UsageLedger,
)


def make_llm(
    config: MemoryConfig | None = None,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    embedder: TextEmbedder | None = None,
) -> LLM:
    """:class:`OpenAIChat` when a base URL or model is given (arguments, then
    ``GMEM_LLM_BASE_URL`` / ``GMEM_LLM_MODEL``), behind :func:`with_fallback` unless
    ``config.llm_fallback`` is off; otherwise :class:`HeuristicLLM` over ``embedder``
    (by default the one :func:`gmem.embedding.make_embedder` picks)."""
    config = config or MemoryConfig.from_env()
    base_url = base_url or os.environ.get("GMEM_LLM_BASE_URL") or None
    model = model or os.environ.get("GMEM_LLM_MODEL") or None
    if base_url is not None or model is not None:
        chat = OpenAIChat(base_url=base_url, model=model, api_key=api_key, config=config)
        return with_fallback(chat, config, embedder)
    return HeuristicLLM(embedder if embedder is not None else make_embedder(), config)


def with_fallback(
    llm: LLM, config: MemoryConfig | None = None, embedder: TextEmbedder | None = None
) -> LLM:
    """``llm`` answering in degraded mode (the heuristic) when it fails, if
    ``config.llm_fallback`` is on; the heuristic itself and an already wrapped reasoner
    are returned as they are."""
    config = config or MemoryConfig.from_env()
    if not config.llm_fallback or isinstance(llm, HeuristicLLM | FallbackLLM):
        return llm
    heuristic = HeuristicLLM(embedder if embedder is not None else make_embedder(), config)
    return FallbackLLM(llm, heuristic)


__all__ = [
    "LLM",
    "NO_OP_OBSERVATION_MARKERS",
    "CandidateView",
    "FallbackLLM",
    "HeuristicLLM",
    "InsightOp",
    "InsightRequest",
    "InsightResult",
    "InsightView",
    "KeyStepsRequest",
    "KeyStepsResult",
    "MergeRequest",
    "MergeResult",
    "MergedInsight",
    "OpenAIChat",
    "OperationName",
    "OperationUsage",
    "ProjectedInsight",
    "ProjectionRequest",
    "ProjectionResult",
    "RelevanceRequest",
    "RelevanceResult",
    "StepView",
    "TrajectoryView",
    "UsageLedger",
    "make_llm",
    "with_fallback",
]
