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
- insights: contrast ordered action patterns (verbs and "X before Y" verb pairs) that
  most similar successes share and failures lack, and the reverse for a failure; fall
  back to who spoke in which order when the trajectories hold no actions;
- projection: role filter, then similarity to "role task" weighted by the insight score;
- merge: union-find over pairs of insights whose embeddings are near-identical.
"""

from __future__ import annotations

import math
import re
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from gmem.config import MemoryConfig
from gmem.embedding import TextEmbedder
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

# The default no-op phrases (``MemoryConfig.no_op_markers``), kept for importers.
NO_OP_OBSERVATION_MARKERS: tuple[str, ...] = MemoryConfig.model_fields["no_op_markers"].default
_NON_WORD = re.compile(r"[^a-z\s]+")
_SPACES = re.compile(r"\s+")


def _no_op_pattern(markers: Sequence[str]) -> re.Pattern[str]:
    if not markers:
        return re.compile(r"(?!)")  # matches nothing
    return re.compile("|".join(rf"\b{re.escape(m)}\b" for m in markers), re.IGNORECASE)


# ---- normalisation -------------------------------------------------------------------
def _collapse(text: str | None) -> str:
    return _SPACES.sub(" ", (text or "").strip().lower())


def action_skeleton(action: str) -> str:
    """The action without numbers and punctuation: "take mug 1 from shelf 2." -> "take mug
    from shelf". Object ids differ between episodes of the same task; verbs and object
    kinds do not."""
    return _SPACES.sub(" ", _NON_WORD.sub(" ", action.lower())).strip()


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


# ---- patterns ------------------------------------------------------------------------
Pattern = tuple[str, ...]  # one unit key, or two in order ("open", "take")


@dataclass(frozen=True)
class _Unit:
    """One effective action (key: its verb) or one speaker turn (key: the role)."""

    key: str
    phrase: str
    role: str


@dataclass
class _Trace:
    outcome: str
    units: list[_Unit]
    patterns: frozenset[Pattern] = field(init=False)
    adjacent: frozenset[Pattern] = field(init=False)

    def __post_init__(self) -> None:
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for i, unit in enumerate(self.units):
            first.setdefault(unit.key, i)
            last[unit.key] = i
        found: set[Pattern] = {(key,) for key in first}
        found.update((a, b) for a in first for b in last if a != b and first[a] < last[b])
        self.patterns = frozenset(found)
        self.adjacent = frozenset(
            (u.key, v.key)
            for u, v in zip(self.units, self.units[1:], strict=False)
            if u.key != v.key
        )


def _action_units(
    trajectory: TrajectoryView, loop_window: int, markers: Sequence[str]
) -> list[_Unit]:
    verdicts = step_verdicts(trajectory.steps, loop_window, markers)
    units = []
    for step, verdict in zip(trajectory.steps, verdicts, strict=True):
        skeleton = action_skeleton(step.action or "")
        if verdict is None and skeleton:
            units.append(_Unit(skeleton.split()[0], skeleton, step.role))
    return units


def _flow_units(trajectory: TrajectoryView) -> list[_Unit]:
    return [
        _Unit(step.role, step.role, step.role)
        for step in trajectory.steps
        if step.content.strip() or (step.action or "").strip()
    ]


@dataclass(frozen=True)
class _Wording:
    """How patterns of one kind of unit are put into words."""

    do_one: str
    do_pair: str
    avoid_one: str
    avoid_pair: str
    skipped: str
    reversed: str
    unordered: str


_ACTION_WORDS = _Wording(
    do_one='{who} should "{a}"',
    do_pair='{who} should "{a}" before "{b}"',
    avoid_one='{who} should avoid "{a}"',
    avoid_pair='{who} should not "{a}" before "{b}"',
    skipped='failed attempts skipped "{a}"',
    reversed='failed attempts did "{b}" before "{a}"',
    unordered='failed attempts rarely did "{a}" before "{b}"',
)
_FLOW_WORDS = _Wording(
    do_one='"{a}" should take part',
    do_pair='"{a}" should speak before "{b}"',
    avoid_one='the team should not involve "{a}"',
    avoid_pair='"{a}" should not speak before "{b}"',
    skipped='failed attempts left out "{a}"',
    reversed='in failed attempts "{b}" spoke before "{a}"',
    unordered='in failed attempts "{a}" rarely spoke before "{b}"',
)

# Our own rule sentences, read back to decide whether a success contradicts them.
_DO_PAIR = re.compile(r'should "([^"]+)" before "([^"]+)"')
_DO_ONE = re.compile(r'should "([^"]+)"(?! before)')
_AVOID_PAIR = re.compile(r'should not "([^"]+)" before "([^"]+)"')
_AVOID_ONE = re.compile(r'should avoid "([^"]+)"')


@dataclass
class _Evidence:
    """This trajectory and the similar ones, reduced to patterns of one kind of unit."""

    this: _Trace
    successes: list[_Trace]
    failures: list[_Trace]
    words: _Wording
    min_support: float
    team_roles: list[str]

    @staticmethod
    def share(pattern: Pattern, traces: Sequence[_Trace]) -> float:
        if not traces:
            return 0.0
        return sum(pattern in t.patterns for t in traces) / len(traces)

    @staticmethod
    def phrases(pattern: Pattern, traces: Iterable[_Trace]) -> list[str]:
        """The most common action skeleton at each position of the pattern.

        Voting per occurrence (the first ``a``, then the first ``b`` after it) rather than
        per verb keeps "go to safe" before "open safe" from becoming "go to box" before
        "open safe" when the same verb occurs twice.
        """
        votes: list[Counter[str]] = [Counter() for _ in pattern]
        for trace in traces:
            keys = [u.key for u in trace.units]
            if pattern[0] not in keys:
                continue
            start = keys.index(pattern[0])
            votes[0][trace.units[start].phrase] += 1
            if len(pattern) == 2:
                after = [j for j in range(start + 1, len(keys)) if keys[j] == pattern[1]]
                if after:
                    votes[1][trace.units[after[0]].phrase] += 1
        return [
            min(count, key=lambda phrase: (-count[phrase], phrase)) if count else key
            for count, key in zip(votes, pattern, strict=True)
        ]

    def roles(self, pattern: Pattern, traces: Iterable[_Trace]) -> list[str]:
        counts = Counter(u.role for t in traces for u in t.units if u.key in pattern)
        ranked = sorted(counts, key=lambda role: (-counts[role], role))
        if self.team_roles:
            ranked = [role for role in ranked if role in self.team_roles]
        return ranked

    def render(self, template: str, pattern: Pattern, traces: list[_Trace]) -> str:
        phrases = self.phrases(pattern, traces)
        who = " and ".join(self.roles(pattern, traces)) or "the team"
        return template.format(who=who, a=phrases[0], b=phrases[-1])

    # -- what successes do and failures lack --------------------------------------------
    def success_pattern(self) -> Pattern | None:
        s_all, f_all = self.successes, self.failures
        if not f_all and len(s_all) < 2:
            return None  # one success alone shows no regularity; describe_alone covers it
        ranked = []
        for pattern in set().union(*(t.patterns for t in s_all)):
            s, f = self.share(pattern, s_all), self.share(pattern, f_all)
            if s < self.min_support or s <= f or (f_all and f > 1 - self.min_support):
                continue
            if self.this.outcome == "success" and pattern not in self.this.patterns:
                continue
            if self.this.outcome == "failure" and pattern in self.this.patterns:
                continue
            first_missing = len(pattern) == 2 and self.share(pattern[:1], f_all) <= self.share(
                pattern[1:], f_all
            )
            adjacency = sum(pattern in t.adjacent for t in s_all)
            ranked.append((-(s - f), -len(pattern), not first_missing, -adjacency, pattern))
        return min(ranked)[-1] if ranked else None

    def describe_success(self, pattern: Pattern) -> str:
        support = [t for t in self.successes if pattern in t.patterns]
        main = self.words.do_pair if len(pattern) == 2 else self.words.do_one
        text = self.render(main, pattern, support)
        if self.failures:
            text += "; " + self._contrast(pattern, support)
        return text

    def _contrast(self, pattern: Pattern, support: list[_Trace]) -> str:
        s = self.share(pattern, self.successes)
        shares = [self.share((key,), self.failures) for key in pattern]
        missing = [key for key, f in zip(pattern, shares, strict=True) if f < s]
        phrases = dict(zip(pattern, self.phrases(pattern, support), strict=True))
        if missing:
            skipped = min(missing, key=lambda key: (shares[pattern.index(key)], pattern.index(key)))
            return self.words.skipped.format(a=phrases[skipped])
        a, b = phrases[pattern[0]], phrases[pattern[-1]]
        if self.share(pattern[::-1], self.failures) > 0:
            return self.words.reversed.format(a=a, b=b)
        return self.words.unordered.format(a=a, b=b)

    # -- what this failure did and successes did not ------------------------------------
    def failure_pattern(self) -> Pattern | None:
        if self.this.outcome != "failure" or not self.successes:
            return None
        ranked = []
        for pattern in self.this.patterns:
            s, f = self.share(pattern, self.successes), self.share(pattern, self.failures)
            if s >= f or s > 1 - self.min_support:
                continue
            ranked.append((-(f - s), len(pattern), -f, pattern))
        return min(ranked)[-1] if ranked else None

    def describe_failure(self, pattern: Pattern) -> str:
        main = self.words.avoid_pair if len(pattern) == 2 else self.words.avoid_one
        text = self.render(main, pattern, [self.this])
        s = self.share(pattern, self.successes)
        return text + (
            "; failed attempts did, successful ones did not"
            if s == 0
            else "; failed attempts did, few successful ones did"
        )

    # -- this trajectory alone ----------------------------------------------------------
    def describe_alone(self) -> tuple[str, list[str]] | None:
        """This trajectory's first and last distinct steps, when no contrast exists."""
        units = self.this.units
        if not units:
            return None
        first = units[0]
        last = next((u for u in reversed(units) if u.key != first.key), None)
        pattern: Pattern = (first.key,) if last is None else (first.key, last.key)
        roles = self.roles(pattern, [self.this])
        if self.this.outcome == "success":
            main = self.words.do_pair if len(pattern) == 2 else self.words.do_one
            text = self.render(main, pattern, [self.this]) + ", as a successful attempt did"
            return text, roles
        steps = " then ".join(f'"{phrase}"' for phrase in self.phrases(pattern, [self.this]))
        who = " and ".join(roles) or "the team"
        if self.this.outcome == "failure":
            return f"a failed attempt by {who} went {steps} and did not finish the task", roles
        return f"an attempt by {who} with unknown outcome went {steps}", roles

    # -- existing rules a success contradicts -------------------------------------------
    def contradicted(self, insight: InsightView) -> bool:
        """True when this success breaks one of our own rule sentences and most shown
        successes do not back the rule either; rules worded by a model are left alone."""
        if self.words is not _ACTION_WORDS:
            return False  # our rule sentences are about actions; a chat-only run can't judge
        if self.this.outcome != "success" or len(self.successes) < 2:
            return False
        for regex, avoid in (
            (_AVOID_PAIR, True),
            (_AVOID_ONE, True),
            (_DO_PAIR, False),
            (_DO_ONE, False),
        ):
            match = regex.search(insight.text)
            if match is None:
                continue
            pattern = tuple(phrase.split()[0] for phrase in match.groups() if phrase.split())
            if not pattern:
                return False
            present = pattern in self.this.patterns
            support = self.share(pattern, self.successes)
            if avoid:
                return present and 1 - support < self.min_support
            return not present and support < self.min_support
        return False


class HeuristicLLM:
    """The offline stand-in for an LLM: deterministic algorithms, no language model.

    ``embedder`` supplies the similarities (any :class:`~gmem.embedding.TextEmbedder`);
    ``config`` the thresholds (``loop_window``, ``pattern_min_support``,
    ``insight_match_similarity``, ``merge_similarity``). Usage counts calls per
    operation with zero tokens, so reports can compare runs with and without an LLM.
    """

    name = "heuristic"

    def __init__(self, embedder: TextEmbedder, config: MemoryConfig | None = None) -> None:
        self.embedder = embedder
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
    def _evidence(self, request: InsightRequest) -> _Evidence:
        window = self.config.loop_window
        by_actions = any((s.action or "").strip() for s in request.trajectory.steps)

        def trace(t: TrajectoryView) -> _Trace:
            units = (
                _action_units(t, window, self.config.no_op_markers)
                if by_actions
                else _flow_units(t)
            )
            return _Trace(t.outcome, units)

        this = trace(request.trajectory)
        successes = [trace(t) for t in request.successes]
        failures = [trace(t) for t in request.failures]
        if this.outcome == "success":
            successes.append(this)
        elif this.outcome == "failure":
            failures.append(this)
        return _Evidence(
            this=this,
            successes=successes,
            failures=failures,
            words=_ACTION_WORDS if by_actions else _FLOW_WORDS,
            min_support=self.config.pattern_min_support,
            team_roles=list(request.roles),
        )

    def _wasted_step(
        self, request: InsightRequest, evidence: _Evidence
    ) -> tuple[str, list[str]] | None:
        """A failure's most repeated wasted action, as a rule against it."""
        steps = request.trajectory.steps
        verdicts = step_verdicts(steps, self.config.loop_window, self.config.no_op_markers)
        wasted = [
            (verdict, action_skeleton(step.action or ""), step.role)
            for step, verdict in zip(steps, verdicts, strict=True)
            if verdict is not None and action_skeleton(step.action or "")
        ]
        if not wasted:
            return None
        counts = Counter(wasted)
        verdict, phrase, role = min(counts, key=lambda w: (-counts[w], w))
        roles = [role] if not evidence.team_roles or role in evidence.team_roles else []
        who = roles[0] if roles else "the team"
        if verdict == "loop":
            text = (
                f'{who} should not repeat "{phrase}" when nothing changes; '
                "a failed attempt looped on it"
            )
        elif verdict == "penalised":
            text = f'{who} should avoid "{phrase}"; a failed attempt was penalised for it'
        else:
            text = f'{who} should not rely on "{phrase}"; in a failed attempt it had no effect'
        return text, roles

    def _derived(self, request: InsightRequest, evidence: _Evidence) -> list[tuple[str, list[str]]]:
        """The lessons this request supports, as (text, roles), before matching."""
        task = _task_phrase(request.trajectory.task, self.config.insight_task_chars)
        prefix = f'For tasks like "{task}": '
        derived: list[tuple[str, list[str]]] = []
        success = evidence.success_pattern()
        if success is not None:
            support = [t for t in evidence.successes if success in t.patterns]
            derived.append((evidence.describe_success(success), evidence.roles(success, support)))
        failure = evidence.failure_pattern()
        if failure is not None:
            roles = evidence.roles(failure, [evidence.this])
            derived.append((evidence.describe_failure(failure), roles))
        if not derived and evidence.words is _ACTION_WORDS and evidence.this.outcome == "failure":
            wasted = self._wasted_step(request, evidence)
            if wasted is not None:
                derived.append(wasted)
        if not derived:
            alone = evidence.describe_alone()
            if alone is not None:
                derived.append(alone)
        return [(prefix + text + ".", roles) for text, roles in derived]

    def derive_insights(self, request: InsightRequest) -> InsightResult:
        self.usage.add("derive_insights")
        evidence = self._evidence(request)
        derived = self._derived(request, evidence)
        existing = request.existing
        cos = self._cosines([text for text, _ in derived], [i.text for i in existing])
        operations: list[InsightOp] = []
        agreed: set[str] = set()
        for row, (text, roles) in enumerate(derived):
            best = int(np.argmax(cos[row])) if existing else -1
            if best >= 0 and cos[row, best] >= self.config.insight_match_similarity:
                match = existing[best].id
                if match not in agreed:
                    agreed.add(match)
                    operations.append(InsightOp(op="agree", insight_id=match, roles=roles))
            else:
                operations.append(InsightOp(op="add", text=text, roles=roles))
        operations.extend(
            InsightOp(op="remove", insight_id=insight.id)
            for insight in existing
            if insight.id not in agreed and evidence.contradicted(insight)
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
        self.usage.add("merge_insights")
        insights = request.insights
        texts = [i.text for i in insights]
        cos = self._cosines(texts, texts)
        parent = list(range(len(insights)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        rows, cols = np.nonzero(cos >= self.config.merge_similarity)
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
            if i < j:
                parent[max(root(i), root(j))] = min(root(i), root(j))
        members: dict[int, list[int]] = {}
        for i in range(len(insights)):
            members.setdefault(root(i), []).append(i)
        groups = []
        for group in sorted(members.values(), key=lambda g: g[0]):
            if len(group) < 2:
                continue
            keeper = min(group, key=lambda i: (-insights[i].score, -len(texts[i]), i))
            groups.append(
                MergedInsight(source_ids=[insights[i].id for i in group], text=texts[keeper])
            )
        return MergeResult(groups=groups)

    # ---- async twins: the work is CPU-bound and quick, so they simply call through -----
    async def ascore_relevance(self, request: RelevanceRequest) -> RelevanceResult:
        return self.score_relevance(request)

    async def aextract_key_steps(self, request: KeyStepsRequest) -> KeyStepsResult:
        return self.extract_key_steps(request)

    async def aderive_insights(self, request: InsightRequest) -> InsightResult:
        return self.derive_insights(request)

    async def aproject_insights(self, request: ProjectionRequest) -> ProjectionResult:
        return self.project_insights(request)

    async def amerge_insights(self, request: MergeRequest) -> MergeResult:
        return self.merge_insights(request)
