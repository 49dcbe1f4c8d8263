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
from collections.abc import Iterator
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gmem.config import MemoryConfig
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

# The characters that shape JSON; everything between them is skipped at C speed.
_STRUCTURE = re.compile(r'[{}\[\]"]')
# The rest of a JSON string after its opening quote, escapes included.
_STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# What a JSON object can begin with; other braces (prose, templates) are not decoded.
_OBJECT_START = re.compile(r'\{\s*["}]')
_DEFAULTS = MemoryConfig.model_fields
DEFAULT_MAX_DEPTH: int = _DEFAULTS["llm_json_max_depth"].default
DEFAULT_MAX_CHARS: int = _DEFAULTS["llm_max_answer_chars"].default


class UnusableAnswer(Exception):
    """The reply cannot be used; the message says why, in words the model can act on."""


def without_thinking(text: str) -> str:
    """``text`` with every closed ``<think>...</think>`` block removed.

    Reasoning models served by vLLM/Ollama put their chain of thought inline, braces
    included. Found with ``str.find`` so that a reply full of unclosed ``<think>`` tags
    costs one pass, not one pass per tag.
    """
    lowered = text.lower()
    if "<think>" not in lowered:
        return text
    kept: list[str] = []
    pos = 0
    while True:
        opened = lowered.find("<think>", pos)
        if opened < 0:
            break
        closed = lowered.find("</think>", opened)
        if closed < 0:
            break
        kept.append(text[pos:opened])
        pos = closed + len("</think>")
    kept.append(text[pos:])
    return "".join(kept)


def _object_spans(text: str, max_depth: int) -> Iterator[tuple[int, int]]:
    """Start and end of the balanced ``{...}`` spans of ``text``, in reading order, each
    top-level span before the spans nested in it.

    One pass over the structural characters, strings skipped whole: quotes only count
    inside a brace (prose around the JSON may hold stray ones), and nesting deeper than
    ``max_depth`` is refused here, so the decoder never recurses deeply. Spans are handed
    out as soon as their top-level span closes, so a reply that starts with its JSON is
    not scanned to the end.
    """
    group: list[tuple[int, int]] = []
    stack: list[tuple[str, int]] = []
    pos = 0
    while (match := _STRUCTURE.search(text, pos)) is not None:
        at, char = match.start(), match.group()
        pos = at + 1
        if char == '"' and stack:
            rest = _STRING_REST.match(text, pos)
            if rest is None:  # the string never ends: nothing closes after it
                break
            pos = rest.end()
        elif char == "{" or (char == "[" and stack):  # a bracket in prose opens nothing
            stack.append((char, at))
            if len(stack) > max_depth:
                raise UnusableAnswer(
                    f"the JSON is nested deeper than {max_depth} levels; answer with a "
                    "flat object that follows the schema"
                )
        elif char in "}]" and stack:
            opener, start = stack.pop()
            if opener == "{" and char == "}":
                group.append((start, at + 1))
            if not stack:
                yield from sorted(group)
                group.clear()
    # Spans closed inside a top-level brace that never closed (a truncated answer).
    yield from sorted(group)


def first_json_object(
    text: str, *, max_depth: int = DEFAULT_MAX_DEPTH, max_chars: int = DEFAULT_MAX_CHARS
) -> dict[str, Any]:
    """The first complete JSON object in ``text``, wherever it sits.

    Looking for a decodable object (rather than stripping fences by pattern) copes with
    fenced blocks, leading prose and trailing commentary alike. The work is linear in
    the answer: one scan finds the balanced spans, each is decoded at most once, and
    every character lies in at most ``max_depth`` of them.
    """
    if len(text) > max_chars:
        raise UnusableAnswer(
            f"the answer is {len(text)} characters long, over the limit of {max_chars}; "
            "answer with one short JSON object"
        )
    text = without_thinking(text)
    for start, end in _object_spans(text, max_depth):
        if not _OBJECT_START.match(text, start):
            continue
        try:
            value = json.loads(text[start:end])
        except ValueError:  # JSONDecodeError, and out-of-range numbers
            continue
        if isinstance(value, dict):
            return value
    snippet = " ".join(text[:400].split())[:80]
    raise UnusableAnswer(f"no JSON object found in the answer (it began: {snippet!r})")


def validated(
    text: str,
    model: type[ResultT],
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> ResultT:
    data = first_json_object(text, max_depth=max_depth, max_chars=max_chars)
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


# ---- schemas narrowed to the request ---------------------------------------------------
# Grammar-constrained decoding (llama.cpp) can bound counts and choices but not the range
# of a float, so a relevance is asked for on this scale when a schema is sent.
RELEVANCE_LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)


def narrowed_schema(request: BaseModel, schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (the result model's) narrowed to what this request allows: as many
    scores as candidates, step indices and insight ids that exist, relevances on
    :data:`RELEVANCE_LEVELS`. A server that decodes under the schema then cannot produce
    most of the answers the checks above would reject; the checks still run."""
    narrowed: dict[str, Any] = json.loads(json.dumps(schema))  # a deep copy of plain JSON
    props = narrowed.get("properties", {})
    defs = narrowed.get("$defs", {})
    levels = {"type": "number", "enum": list(RELEVANCE_LEVELS)}
    if isinstance(request, RelevanceRequest) and "scores" in props:
        count = len(request.candidates)
        props["scores"].update(items=levels, minItems=count, maxItems=count)
    elif isinstance(request, KeyStepsRequest) and "keep" in props:
        props["keep"]["items"] = {"enum": [step.index for step in request.steps]}
    elif isinstance(request, ProjectionRequest) and "ProjectedInsight" in defs:
        fields = defs["ProjectedInsight"]["properties"]
        fields["id"] = {"enum": [insight.id for insight in request.insights]}
        fields["relevance"] = levels
    elif isinstance(request, MergeRequest) and "MergedInsight" in defs:
        ids = {"enum": [insight.id for insight in request.insights]}
        defs["MergedInsight"]["properties"]["source_ids"]["items"] = ids
    return narrowed
