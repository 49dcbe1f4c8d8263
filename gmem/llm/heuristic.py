"""Deterministic algorithms for the memory operations, used when no LLM is configured.

:class:`HeuristicLLM` is not a language model and never pretends to be one: it answers
the same typed requests as :class:`~gmem.llm.OpenAIChat` with embedding similarity and
counting, so gmem works offline, in tests and in CI, and gives the same answer to the
same input every time. Every text it returns is either an existing insight's text or a
sentence assembled from the trajectories it was shown (their tasks, action skeletons and
roles); it holds no lessons of its own.

How each operation is answered:

- relevance: ``max(0, cos)`` between the task and each candidate task (``(cos+1)/2``
  would squeeze unrelated and identical tasks into [0.5, 1]);
- key steps: drop no-op, penalised and looping steps, keep a success's final step;
- insights: procedural lessons (:mod:`gmem.llm.lessons`): the step or order that the
  successes of one procedure share and its failures lack, or the step several failures
  take and no success does, as a typed rule with a sentence built from it; a lesson an
  existing insight already holds (same rule) is agreed with;
- projection: role filter, then similarity to "role task" weighted by the insight score;
- merge: union-find over pairs of insights with the same rule over overlapping scopes,
  or, for insights without a rule, near-identical embeddings.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from itertools import combinations

import numpy as np
from numpy.typing import NDArray

from gmem.config import MemoryConfig
from gmem.embedding import TextEmbedder, cached
from gmem.llm.lessons import Thresholds, mine
from gmem.llm.protocol import (
    InsightOp,
    InsightRequest,
    InsightResult,
    InsightView,
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
    StepView,
    TrajectoryView,
    UsageLedger,
)
from gmem.procedure import skeleton
from gmem.rules import scope_similarity, sentence

# The default no-op phrases (``MemoryConfig.no_op_markers``), kept for importers.
NO_OP_OBSERVATION_MARKERS: tuple[str, ...] = MemoryConfig.model_fields["no_op_markers"].default
_SPACES = re.compile(r"\s+")


def _no_op_pattern(markers: Sequence[str]) -> re.Pattern[str]:
    if not markers:
        return re.compile(r"(?!)")  # matches nothing
    return re.compile("|".join(rf"\b{re.escape(m)}\b" for m in markers), re.IGNORECASE)


# ---- normalisation -------------------------------------------------------------------
def _collapse(text: str | None) -> str:
    return _SPACES.sub(" ", (text or "").strip().lower())


def _task_phrase(task: str, limit: int) -> str:
    """The task as written (digits and all), whitespace collapsed, clipped to ``limit``."""
    text = " ".join(task.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


# ---- step verdicts -------------------------------------------------------------------
def _is_no_op(step: StepView, no_op: re.Pattern[str]) -> bool:
    if not (step.action or "").strip() and not step.content.strip():
        return True
    return bool(step.observation and no_op.search(step.observation))


def step_verdicts(
    steps: Sequence[StepView],
    loop_window: int,
    markers: Sequence[str] = NO_OP_OBSERVATION_MARKERS,
) -> list[str | None]:
    """Why each step is dropped ("no-op", "penalised", "loop") or None when it counts.

    A loop is an action repeated from the last ``loop_window`` actions with the same
    observation: the agent asked again and the world answered the same. A no-op is a
    step whose observation contains one of ``markers``.
    """
    no_op = _no_op_pattern(markers)
    recent: deque[tuple[str, str]] = deque(maxlen=loop_window)
    verdicts: list[str | None] = []
    for step in steps:
        action = _collapse(step.action)
        observation = _collapse(step.observation)
        verdict: str | None = None
        if _is_no_op(step, no_op):
            verdict = "no-op"
        elif step.reward is not None and step.reward < 0:
            verdict = "penalised"
        elif action and (action, observation) in recent:
            verdict = "loop"
        if action:
            recent.append((action, observation))
        verdicts.append(verdict)
    return verdicts


class HeuristicLLM:
    """The offline stand-in for an LLM: deterministic algorithms, no language model.

    ``embedder`` supplies the similarities (any :class:`~gmem.embedding.TextEmbedder`);
    ``config`` the thresholds (``loop_window``, ``pattern_min_support``,
    ``insight_match_similarity``, ``merge_similarity``). Usage counts calls per
    operation with zero tokens, so reports can compare runs with and without an LLM.
    """

    name = "heuristic"

    def __init__(self, embedder: TextEmbedder, config: MemoryConfig | None = None) -> None:
        # Merging and projection embed the same insight texts over and over: behind a
        # cache each is encoded once while it stays among the recent ones.
        self.embedder = cached(embedder)
        self.config = config or MemoryConfig()
        self.usage = UsageLedger()

    def __repr__(self) -> str:
        return f"HeuristicLLM(embedder={self.embedder.name!r})"

    def _cosines(self, queries: Sequence[str], keys: Sequence[str]) -> NDArray[np.float32]:
        if not queries or not keys:
            return np.zeros((len(queries), len(keys)), dtype=np.float32)
        vectors = self.embedder.embed([*queries, *keys])
        return np.asarray(vectors[: len(queries)] @ vectors[len(queries) :].T)

    # ---- relevance --------------------------------------------------------------------
    def score_relevance(self, request: RelevanceRequest) -> RelevanceResult:
        """``max(0, cos)``; a candidate's precomputed ``similarity`` saves re-embedding."""
        self.usage.add("score_relevance")
        missing = [c.task for c in request.candidates if c.similarity is None]
        fresh = iter(self._cosines([request.task], missing)[0].tolist() if missing else [])
        scores = []
        for candidate in request.candidates:
            cos = candidate.similarity if candidate.similarity is not None else next(fresh)
            scores.append(min(1.0, max(0.0, float(cos))))
        return RelevanceResult(scores=scores)

    # ---- key steps --------------------------------------------------------------------
    def extract_key_steps(self, request: KeyStepsRequest) -> KeyStepsResult:
        self.usage.add("extract_key_steps")
        verdicts = step_verdicts(request.steps, self.config.loop_window, self.config.no_op_markers)
        keep = [s.index for s, v in zip(request.steps, verdicts, strict=True) if v is None]
        if request.outcome == "success" and request.steps:
            final = request.steps[-1].index
            if final not in keep:
                keep.append(final)
        return KeyStepsResult(keep=keep)

    # ---- insights ---------------------------------------------------------------------
    def _procedure(self, t: TrajectoryView) -> TrajectoryView:
        """``t`` with its procedure filled in from its effective steps when the caller
        (a test, a tool) sent none; the engine always sends it."""
        if t.procedure:
            return t
        cfg = self.config
        verdicts = step_verdicts(t.steps, cfg.loop_window, cfg.no_op_markers)
        actions = [s.action for s, v in zip(t.steps, verdicts, strict=True) if v is None]
        return t.model_copy(update={"procedure": list(skeleton(t.task, actions).steps)})

    def derive_insights(self, request: InsightRequest) -> InsightResult:
        """Mine procedural lessons (:mod:`gmem.llm.lessons`) and match them to existing
        insights by rule; a lesson already held is agreed with, not added again."""
        self.usage.add("derive_insights")
        cfg = self.config
        this = self._procedure(request.trajectory)
        lessons = mine(
            this,
            [self._procedure(t) for t in request.successes],
            [self._procedure(t) for t in request.failures],
            [self._procedure(t) for t in request.others],
            Thresholds(
                min_support=cfg.pattern_min_support,
                min_contrast=cfg.lesson_min_contrast,
                min_successes=cfg.lesson_min_successes,
                avoid_min_attempts=cfg.avoid_min_attempts,
            ),
        )
        operations: list[InsightOp] = []
        agreed: set[str] = set()
        for lesson in lessons:
            roles = [r for r in lesson.roles if not request.roles or r in request.roles]
            match = next(
                (
                    i.id
                    for i in request.existing
                    if i.rule is not None
                    and i.rule.kind == lesson.rule.kind
                    and i.rule.actions == lesson.rule.actions
                ),
                None,
            )
            if match is not None:
                if match not in agreed:
                    agreed.add(match)
                    operations.append(InsightOp(op="agree", insight_id=match, roles=roles))
                continue
            who = " and ".join(roles) or "the team"
            operations.append(
                InsightOp(
                    op="add",
                    text=sentence(
                        lesson.rule, who, _task_phrase(lesson.example, cfg.insight_task_chars)
                    ),
                    roles=roles,
                    rule=lesson.view(),
                )
            )
        return InsightResult(operations=operations)

    # ---- projection -------------------------------------------------------------------
    def project_insights(self, request: ProjectionRequest) -> ProjectionResult:
        self.usage.add("project_insights")
        role = request.role.casefold()
        shown = [
            i for i in request.insights if not i.roles or role in {r.casefold() for r in i.roles}
        ]
        cos = self._cosines([f"{request.role} {request.task}"], [i.text for i in shown])
        scored = []
        for pos, insight in enumerate(shown):
            similarity = max(0.0, float(cos[0, pos]))
            # A logistic of the score keeps relevance in [0, 1]: a fresh insight (score 2)
            # keeps most of its similarity, a discredited one (score < 0) little.
            weight = 1.0 / (1.0 + math.exp(-insight.score))
            relevance = min(1.0, similarity * weight)
            scored.append(
                (
                    -relevance,
                    pos,
                    ProjectedInsight(id=insight.id, text=insight.text, relevance=relevance),
                )
            )
        scored.sort(key=lambda item: (item[0], item[1]))
        return ProjectionResult(insights=[item for _, _, item in scored])

    # ---- merge ------------------------------------------------------------------------
    def merge_insights(self, request: MergeRequest) -> MergeResult:
        """Union-find over the pairs that say the same thing: the same rule kind and
        actions over overlapping scopes, or, for two insights without a rule, texts whose
        embeddings nearly coincide."""
        self.usage.add("merge_insights")
        insights = request.insights
        texts = [i.text for i in insights]
        groups = []
        for group in _components(len(insights), self._same_pairs(insights)):
            if len(group) < 2:
                continue
            keeper = min(group, key=lambda i: (-insights[i].score, -len(texts[i]), i))
            groups.append(
                MergedInsight(source_ids=[insights[i].id for i in group], text=texts[keeper])
            )
        return MergeResult(groups=groups)

    def _same_pairs(self, insights: Sequence[InsightView]) -> Iterator[tuple[int, int]]:
        """The pairs (i < j) of insights that say the same thing.

        Only pairs that can match are compared: insights are bucketed by rule kind and
        actions first, and only the rule-less ones are embedded. A pass over a full live
        tier (``max_live_insights``) thus encodes no text when every insight has a rule,
        where embedding all of them made a process's first pass cost seconds.
        """
        cfg = self.config
        buckets: dict[tuple[str, ...] | None, list[int]] = {}
        for n, ins in enumerate(insights):
            key = None if ins.rule is None else (ins.rule.kind, *ins.rule.actions)
            buckets.setdefault(key, []).append(n)
        for key, bucket in buckets.items():
            if len(bucket) < 2:
                continue
            if key is None:
                texts = [insights[i].text for i in bucket]
                close = np.triu(self._cosines(texts, texts) >= cfg.merge_similarity, k=1)
                for a, b in zip(*np.nonzero(close), strict=True):
                    yield bucket[int(a)], bucket[int(b)]
                continue
            scopes = [r.scope for i in bucket if (r := insights[i].rule) is not None]
            for a, b in combinations(range(len(bucket)), 2):
                if scope_similarity(scopes[a], scopes[b]) >= cfg.merge_scope_overlap:
                    yield bucket[a], bucket[b]


def _components(size: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """The connected components of ``pairs`` over ``0..size-1``, each in ascending order,
    ordered by their first member."""
    parent = list(range(size))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        a, b = root(i), root(j)
        parent[max(a, b)] = min(a, b)
    members: dict[int, list[int]] = {}
    for i in range(size):
        members.setdefault(root(i), []).append(i)
    return sorted(members.values(), key=lambda g: g[0])
