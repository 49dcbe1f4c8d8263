"""Procedural lessons mined offline: what successes of one procedure do and its failures don't.

The heuristic reasoner's insight derivation. It compares the procedures (action
skeletons, :mod:`gmem.procedure`) of several successful attempts of one procedure with
failed attempts of the same procedure, which the engine selected, and states the
clearest difference as a typed rule:

- ``require``: steps most successes take and most failures skip;
- ``order``: two steps successes take in one order and failures take in the other;
- ``avoid``: a step several failures take and no success does.

One success alone, or successes with no failure to contrast them with, teach nothing
yet: every common step would look essential, including the ones every task shares.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from gmem.llm.protocol import RuleView, TrajectoryView
from gmem.procedure import abstract_action, task_objects
from gmem.rules import shows, signature
from graph_store.model import MAX_RULE_ACTIONS, InsightRule, RuleEvidence

MAX_REQUIRED = MAX_RULE_ACTIONS


@dataclass(frozen=True)
class Lesson:
    """One mined rule, with the roles that perform its steps and its evidence counts.

    ``example`` is the task of an attempt that shows the rule (this attempt when it does):
    the insight's sentence names it, so the task it cites is one the lesson was learned
    from, not merely the one whose finish triggered the mining.
    """

    rule: InsightRule
    roles: list[str]
    example: str

    def view(self) -> RuleView:
        return RuleView(kind=self.rule.kind, actions=list(self.rule.actions))


def _share(rule: InsightRule, procedures: Sequence[tuple[str, ...]]) -> float:
    if not procedures:
        return 0.0
    return sum(shows(rule, p) for p in procedures) / len(procedures)


def evidence(
    rule: InsightRule, successes: Sequence[tuple[str, ...]], failures: Sequence[tuple[str, ...]]
) -> RuleEvidence:
    return RuleEvidence(
        successes_with=sum(shows(rule, p) for p in successes),
        successes=len(successes),
        failures_with=sum(shows(rule, p) for p in failures),
        failures=len(failures),
    )


def roles_of(steps: Sequence[str], trajectories: Sequence[TrajectoryView]) -> list[str]:
    """The roles that performed ``steps`` in these trajectories, most frequent first."""
    counts: Counter[str] = Counter()
    for t in trajectories:
        objects = task_objects(t.task)
        for s in t.steps:
            if s.action and abstract_action(s.action, objects) in steps:
                counts[s.role] += 1
    return sorted(counts, key=lambda role: (-counts[role], role))


@dataclass(frozen=True)
class Thresholds:
    """How strong a contrast must be to become a lesson (from ``MemoryConfig``)."""

    min_support: float
    min_contrast: float
    min_successes: int
    avoid_min_attempts: int


Ranked = list[tuple[float, int, int, InsightRule]]  # (contrast, kind rank, position, rule)


@dataclass(frozen=True)
class _Contrast:
    """The procedures compared for one lesson, and the attempt it is derived for."""

    this: tuple[str, ...]
    success: bool
    s_proc: list[tuple[str, ...]]
    f_proc: list[tuple[str, ...]]
    o_proc: list[tuple[str, ...]]
    limits: Thresholds

    @property
    def many(self) -> bool:
        """Enough successes and failures for rules that chance alone produces often."""
        return min(len(self.f_proc), len(self.s_proc)) >= self.limits.avoid_min_attempts

    def required(self, common: list[str]) -> Ranked:
        c = self.limits.min_contrast
        out: Ranked = []
        for pos, step in enumerate(common):
            rule = InsightRule(kind="require", actions=[step])
            s, f = _share(rule, self.s_proc), _share(rule, self.f_proc)
            # The step must also tell this procedure from the others: a step every task
            # takes is not what this one needs.
            stands_out = not self.o_proc or s - _share(rule, self.o_proc) >= c
            if s - f >= c and stands_out and shows(rule, self.this) == self.success:
                out.append((s - f, 1, pos, rule))
        return out

    def ordered(self, common: list[str]) -> Ranked:
        c = self.limits.min_contrast
        out: Ranked = []
        for i, first in enumerate(common if self.many else []):
            for then in common[i + 1 :]:
                rule = InsightRule(kind="order", actions=[first, then])
                s, f = _share(rule, self.s_proc), _share(rule, self.f_proc)
                both = sum(first in p and then in p for p in self.f_proc) / len(self.f_proc)
                # An order is a lesson only where failures took both steps the other way.
                contrasted = s >= self.limits.min_support and s - f >= c and both - f >= c
                if contrasted and shows(rule, self.this) == self.success:
                    out.append((s - f, 0, i, rule))
        return out

    def avoided(self) -> Ranked:
        # Failures are long and take many steps by chance; a step no success took is a
        # lesson only when several successes and several failures say so.
        out: Ranked = []
        if not self.many:
            return out
        seen = list(dict.fromkeys(step for p in self.f_proc for step in p))
        for pos, step in enumerate(seen):
            rule = InsightRule(kind="avoid", actions=[step])
            s, f = _share(rule, self.s_proc), _share(rule, self.f_proc)
            contrasted = (
                s == 0 and f >= self.limits.min_support and f - s >= self.limits.min_contrast
            )
            if contrasted and shows(rule, self.this) != self.success:
                out.append((f - s, 0, pos, rule))
        return out


def _best(ranked: Ranked) -> InsightRule:
    best = min(ranked, key=lambda r: (-r[0], r[1], r[2]))[3]
    if best.kind != "require":
        return best
    # Steps that tell successes from failures equally well go together: "go to the sink"
    # and "clean the object with the sink" are one lesson.
    top = max(r[0] for r in ranked)
    tied = [r[3].actions[0] for r in ranked if r[3].kind == "require" and r[0] == top]
    return InsightRule(kind="require", actions=tied[:MAX_REQUIRED])


def mine(
    this: TrajectoryView,
    successes: Sequence[TrajectoryView],
    failures: Sequence[TrajectoryView],
    others: Sequence[TrajectoryView],
    limits: Thresholds,
) -> list[Lesson]:
    """The best positive lesson (require/order) and the best avoid lesson this attempt,
    with its procedure's other attempts, supports; possibly none.

    ``others`` are successes of another procedure: a required step must tell this
    procedure from them.
    """
    s_traj = [*successes, *([this] if this.outcome == "success" else [])]
    f_traj = [*failures, *([this] if this.outcome == "failure" else [])]
    contrast = _Contrast(
        this=tuple(this.procedure),
        success=this.outcome == "success",
        s_proc=[tuple(t.procedure) for t in s_traj if t.procedure],
        f_proc=[tuple(t.procedure) for t in f_traj if t.procedure],
        o_proc=[tuple(t.procedure) for t in others if t.procedure],
        limits=limits,
    )
    if len(contrast.s_proc) < limits.min_successes or not contrast.f_proc or not this.procedure:
        return []
    common = signature(contrast.s_proc, limits.min_support)
    out = []
    for ranked, source in (
        (contrast.required(common) + contrast.ordered(common), s_traj),
        (contrast.avoided(), f_traj),
    ):
        if ranked:
            best = _best(ranked)
            best = best.model_copy(
                update={"evidence": evidence(best, contrast.s_proc, contrast.f_proc)}
            )
            showing = [t for t in source if shows(best, t.procedure)]
            example = this if this in showing else (showing[0] if showing else this)
            out.append(Lesson(best, roles_of(best.actions, source), example.task))
    return out
