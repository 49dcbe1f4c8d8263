"""Insight rules as data: where a lesson applies, whether an attempt shows it, and its words.

A rule (:class:`~graph_store.model.InsightRule`) is stated over procedure steps, the
abstraction of :mod:`gmem.procedure`, so one rule covers every task of one procedure
whatever its objects and numbers. Everything that needs to know what a lesson says reads
the rule, never the sentence: evolution checks new attempts against it (evidence), recall
shows it only to tasks of its procedure (scope), and the picture labels it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from gmem.procedure import OBJECT, Skeleton, skeleton
from graph_store.model import InsightRule, Outcome

Verdict = Literal["supports", "contradicts"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt reduced to what rules are checked against."""

    id: str
    outcome: Outcome
    steps: tuple[str, ...]

    @classmethod
    def of(cls, id: str, outcome: Outcome, task: str, actions: Iterable[str | None]) -> Attempt:
        return cls(id, outcome, skeleton(task, list(actions)).steps)


def in_scope(scope: Sequence[str], steps: Sequence[str], min_share: float) -> bool:
    """True when at least ``min_share`` of the procedure's signature steps occur in
    ``steps``; a rule without a scope applies everywhere."""
    if not scope:
        return True
    present = set(steps)
    return sum(s in present for s in scope) / len(scope) >= min_share


def shows(rule: InsightRule, steps: Sequence[str]) -> bool:
    """Whether an attempt's steps show the rule's pattern (a note has none)."""
    if rule.kind == "note" or not rule.actions:
        return False
    if rule.kind == "order":
        first, then = rule.actions[0], rule.actions[-1]
        if first not in steps or then not in steps:
            return False
        last_then = len(steps) - 1 - list(reversed(steps)).index(then)
        return steps.index(first) < last_then
    if rule.kind == "require":
        return all(a in steps for a in rule.actions)
    return rule.actions[0] in steps


def verdict(rule: InsightRule, attempt: Attempt, min_share: float) -> Verdict | None:
    """What one attempt of the rule's procedure says about it, or None.

    A task supports a rule only when its own trajectory shows the pattern with the
    outcome the rule predicts: a success doing what ``require``/``order`` asks, a
    failure doing what ``avoid`` forbids. It contradicts it when its outcome breaks the
    rule: a success without the required pattern, or a success doing the forbidden step.
    A failure that skipped a required step agrees but shows nothing, so it counts for
    neither; attempts outside the rule's scope say nothing. Whether an attempt lies in
    the scope is judged by the scope's steps other than the rule's own.
    """
    if rule.kind == "note" or attempt.outcome == Outcome.UNKNOWN:
        return None
    # Whether the attempt followed the procedure is judged by the scope's other steps:
    # the rule's own steps are what is in question.
    context = [s for s in rule.scope if s not in rule.actions] or rule.scope
    if not in_scope(context, attempt.steps, min_share):
        return None
    present = shows(rule, attempt.steps)
    success = attempt.outcome == Outcome.SUCCESS
    if rule.kind == "avoid":
        if present:
            return "contradicts" if success else "supports"
        return None
    if present:
        return "supports" if success else None
    return "contradicts" if success else None


def signature(procedures: Sequence[Sequence[str]], min_support: float) -> list[str]:
    """The steps at least ``min_support`` of the procedures share, in first-seen order."""
    if not procedures:
        return []
    counts: dict[str, int] = {}
    for steps in procedures:
        for step in dict.fromkeys(steps):
            counts[step] = counts.get(step, 0) + 1
    need = min_support * len(procedures)
    return [s for s, n in counts.items() if n >= need]


def distinctive(
    steps: Sequence[str],
    procedures: Sequence[Sequence[str]],
    others: Sequence[Sequence[str]],
    min_contrast: float,
) -> list[str]:
    """The ``steps`` that ``procedures`` take markedly more often than ``others`` do.

    Steps every task takes (walking to a room, looking around) say nothing about which
    procedure an attempt follows; a scope made of them would take in every task. With no
    other procedure to compare with, all steps are kept; when nothing stands out the
    result is empty: the procedure cannot be told from the others, and a lesson scoped
    to it would be shown everywhere.
    """
    if not others or not procedures:
        return list(steps)

    def share(step: str, group: Sequence[Sequence[str]]) -> float:
        return sum(step in p for p in group) / len(group)

    return [s for s in steps if share(s, procedures) - share(s, others) >= min_contrast]


def step_weights(procedures: Sequence[Sequence[str]]) -> dict[str, float]:
    """Inverse document frequency of each step over a set of procedures.

    A step most attempts take (walking somewhere, looking around) weighs little; a step
    few take (cleaning at the sink) weighs much, so two procedures that share it are
    alike even when their searches differ.
    """
    n = len(procedures)
    df: dict[str, int] = {}
    for steps in procedures:
        for step in set(steps):
            df[step] = df.get(step, 0) + 1
    return {step: math.log((n + 1) / (count + 0.5)) for step, count in df.items()}


def weighted_similarity(a: Sequence[str], b: Sequence[str], weights: dict[str, float]) -> float:
    """Weighted Jaccard overlap of two procedures' steps, in [0, 1]."""
    sa, sb = set(a), set(b)
    union = sum(weights.get(s, 1.0) for s in sa | sb)
    if not union:
        return 0.0
    return sum(weights.get(s, 1.0) for s in sa & sb) / union


def describe_step(step: str) -> str:
    """A procedure step in words: ``clean <obj> with sinkbasin`` -> ``clean the object with
    sinkbasin``."""
    return step.replace(OBJECT, "the object")


def sentence(rule: InsightRule, who: str, example_task: str) -> str:
    """The sentence a heuristic insight states: the lesson, then what it rests on."""
    ev = rule.evidence
    acts = [f'"{describe_step(a)}"' for a in rule.actions]
    if rule.kind == "order":
        lesson = f"{who} should {acts[0]} before {acts[-1]}"
    elif rule.kind == "require":
        lesson = f"{who} should " + ", then ".join(acts)
    elif rule.kind == "avoid":
        lesson = f"{who} should not {acts[0]}"
    else:
        return f'For tasks like "{example_task}": {who} should follow the recalled procedure.'
    basis = f"{ev.successes_with} of {ev.successes} successes did"
    if ev.failures:
        basis += f", {ev.failures_with} of {ev.failures} failures of the same procedure did"
    return f'For tasks like "{example_task}": {lesson} ({basis}).'


def scope_similarity(a: Sequence[str], b: Sequence[str]) -> float:
    """Jaccard overlap of two scopes (1.0 when both are empty: both apply everywhere)."""
    sa, sb = set(a), set(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def same_rule(a: InsightRule, b: InsightRule, min_scope_overlap: float) -> bool:
    """Two rules say the same thing about the same procedure."""
    return (
        a.kind == b.kind
        and a.actions == b.actions
        and scope_similarity(a.scope, b.scope) >= min_scope_overlap
    )


def skeleton_steps(task: str, actions: Iterable[str | None]) -> tuple[str, ...]:
    return skeleton(task, list(actions)).steps


__all__ = [
    "Attempt",
    "Skeleton",
    "Verdict",
    "describe_step",
    "distinctive",
    "in_scope",
    "same_rule",
    "scope_similarity",
    "sentence",
    "shows",
    "signature",
    "skeleton_steps",
    "step_weights",
    "verdict",
    "weighted_similarity",
]
