"""Turning a chat model's reply into a result gmem can trust.

A reply can fail in three ways: it holds no JSON (prose, a truncated object, a reasoning
model's ``<think>`` block and nothing after it), its JSON does not match the result
model, or it matches but contradicts the request (three scores for four candidates, a
step index that does not exist). The first two and the hard cases of the third raise
:class:`UnusableAnswer`, whose message goes back to the model in the re-ask; harmless
slips such as an insight operation naming an unknown id are dropped instead, because
re-asking for them costs a round trip and rarely fixes anything.
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gmem.llm.protocol import (
    InsightOp,
    InsightRequest,
    InsightResult,
    KeyStepsRequest,
    KeyStepsResult,
    MergedInsight,
    MergeRequest,
    MergeResult,
    ProjectedInsight,
    ProjectionRequest,
    ProjectionResult,
    RelevanceRequest,
    RelevanceResult,
)

_LOG = logging.getLogger("gmem.llm")

ResultT = TypeVar("ResultT", bound=BaseModel)

# Reasoning models served by vLLM/Ollama often put their chain of thought inline.
_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_OPEN_BRACE = re.compile(r"\{")


class UnusableAnswer(Exception):
    """The reply cannot be used; the message says why, in words the model can act on."""


def first_json_object(text: str) -> dict[str, Any]:
    """The first complete JSON object in ``text``, wherever it sits.

    Scanning for a decodable object (rather than stripping fences by pattern) copes with
    fenced blocks, leading prose and trailing commentary alike.
    """
    text = _THINKING.sub("", text)
    decoder = json.JSONDecoder()
    for match in _OPEN_BRACE.finditer(text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    snippet = " ".join(text.split())[:80]
    raise UnusableAnswer(f"no JSON object found in the answer (it began: {snippet!r})")


def validated(text: str, model: type[ResultT]) -> ResultT:
    data = first_json_object(text)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise UnusableAnswer(f"the JSON does not match the schema: {_one_line(exc)}") from None


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


# ---- checks against the request ------------------------------------------------------
def check_relevance(request: RelevanceRequest, result: RelevanceResult) -> RelevanceResult:
    want, got = len(request.candidates), len(result.scores)
    if got != want:
        raise UnusableAnswer(f"`scores` has {got} numbers but there are {want} candidates")
    for i, score in enumerate(result.scores):
        if not math.isfinite(score) or not 0.0 <= score <= 1.0:
            raise UnusableAnswer(f"scores[{i}] is {score}, but every score must be in [0, 1]")
    return result


def check_key_steps(request: KeyStepsRequest, result: KeyStepsResult) -> KeyStepsResult:
    known = {step.index for step in request.steps}
    unknown = sorted(set(result.keep) - known)
    if unknown:
        raise UnusableAnswer(
            f"`keep` names step indices {unknown} that are not in the trajectory; "
            f"valid indices are {sorted(known)}"
        )
    order = {step.index: pos for pos, step in enumerate(request.steps)}
    return KeyStepsResult(keep=sorted(set(result.keep), key=order.__getitem__))


def check_insights(request: InsightRequest, result: InsightResult) -> InsightResult:
    known_ids = {insight.id for insight in request.existing}
    known_roles = set(request.roles)
    kept: list[InsightOp] = []
    for proposed in result.operations:
        text = (proposed.text or "").strip() or None
        if proposed.op == "add":
            if text is None:
                _LOG.debug("dropping an add without text")
                continue
            op = proposed.model_copy(update={"insight_id": None, "text": text})
        else:
            if proposed.insight_id not in known_ids:
                _LOG.debug("dropping %s of unknown insight id %r", proposed.op, proposed.insight_id)
                continue
            if proposed.op == "edit" and text is None:
                _LOG.debug("dropping an edit of %s without text", proposed.insight_id)
                continue
            op = proposed.model_copy(update={"text": text if proposed.op == "edit" else None})
        if known_roles:
            roles = [role for role in dict.fromkeys(op.roles) if role in known_roles]
            if len(roles) != len(op.roles):
                _LOG.debug("dropping unknown roles from %s: %s", op.op, op.roles)
            op = op.model_copy(update={"roles": roles})
        kept.append(op)
    return InsightResult(operations=kept)


def check_projection(request: ProjectionRequest, result: ProjectionResult) -> ProjectionResult:
    by_id = {insight.id: insight for insight in request.insights}
    kept: dict[str, ProjectedInsight] = {}
    for item in result.insights:
        if item.id not in by_id or item.id in kept:
            _LOG.debug("dropping projected insight with unknown or repeated id %r", item.id)
            continue
        text = item.text.strip() or by_id[item.id].text
        kept[item.id] = item.model_copy(update={"text": text})
    ranked = sorted(kept.values(), key=lambda item: -item.relevance)
    return ProjectionResult(insights=ranked)


def check_merge(request: MergeRequest, result: MergeResult) -> MergeResult:
    known = {insight.id for insight in request.insights}
    claimed: set[str] = set()
    groups: list[MergedInsight] = []
    for group in result.groups:
        ids = [i for i in dict.fromkeys(group.source_ids) if i in known and i not in claimed]
        text = group.text.strip()
        if len(ids) < 2 or not text:
            _LOG.debug("dropping merge group %s (unknown ids, too small or no text)", group)
            continue
        claimed.update(ids)
        groups.append(MergedInsight(source_ids=ids, text=text))
    return MergeResult(groups=groups)
